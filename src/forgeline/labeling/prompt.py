"""The prompt an LLM labeller sends: an instruction, the classes, few-shot examples.

One :class:`PromptTemplate` renders both shapes the client speaks: a plain few-shot text
for a base model's completions (``Text: ...`` / ``Label: ...`` blocks, the answer scored by
the log-probability of each label's first token after ``Label:``), and chat messages with a
JSON schema for an instruction model. Its :attr:`~PromptTemplate.digest` is part of the LLM
source's version and of every cache key, so changing a word of it asks the model again.

A row's text is put on one line (runs of whitespace become one space) and cut to
``max_chars``: a newline inside a row would let it end its own block and forge a label.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forgeline.errors import InvalidSpec
from forgeline.llm.answers import one_line

__all__ = ["PromptTemplate"]

_FORMAT = 1  # bump when the rendering below changes: the digest (and cache keys) follow


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """How rows are asked about.

    Attributes:
        instruction: the task in a sentence or two ("Is this SMS spam or ham?").
        classes: the labels, in the order of the label matrix's class indices.
        examples: few-shot ``(text, label)`` pairs; each label must be one of ``classes``.
        input_prefix: what starts a row's line in the completion prompt.
        label_prefix: what starts the answer's line (the model continues after it).
        max_chars: a row's text is cut to this many characters.
    """

    instruction: str
    classes: tuple[str, ...]
    examples: tuple[tuple[str, str], ...] = ()
    input_prefix: str = "Text:"
    label_prefix: str = "Label:"
    max_chars: int = 1000
    _digest: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        classes = tuple(str(c) for c in self.classes)
        examples = tuple((str(t), str(lab)) for t, lab in self.examples)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "examples", examples)
        if len(classes) < 2:
            raise InvalidSpec(f"A prompt needs at least two classes, got {list(classes)}.",
                              hint="List every label the model may answer in `classes`.")
        if len(set(classes)) != len(classes):
            raise InvalidSpec(f"The classes {list(classes)} repeat a label.",
                              hint="Give each label once.")
        if any(not c.strip() or c != c.strip() for c in classes):
            raise InvalidSpec(f"The classes {list(classes)} hold an empty label or one with "
                              "spaces around it.", hint="Use labels such as 'spam', 'ham'.")
        unknown = sorted({lab for _, lab in examples} - set(classes))
        if unknown:
            raise InvalidSpec(f"Few-shot examples use the label(s) {unknown}, not among the "
                              f"classes {list(classes)}.",
                              hint="Fix the examples' labels or add the class.")
        if not self.instruction.strip():
            raise InvalidSpec("The prompt's instruction is empty.",
                              hint="Say in a sentence what the model should decide.")
        payload = json.dumps({"format": _FORMAT, "instruction": self.instruction,
                              "classes": classes, "examples": examples,
                              "input_prefix": self.input_prefix,
                              "label_prefix": self.label_prefix,
                              "max_chars": self.max_chars}, sort_keys=True)
        object.__setattr__(self, "_digest", hashlib.sha256(payload.encode()).hexdigest())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptTemplate:
        """From a spec's mapping: ``instruction``, ``classes``, ``examples`` (a list of
        ``{text, label}`` mappings or ``[text, label]`` pairs), and the optional fields."""
        known = {"instruction", "classes", "examples", "input_prefix", "label_prefix",
                 "max_chars"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidSpec(f"Unknown prompt field {unknown[0]!r}.",
                              hint=f"Known: {', '.join(sorted(known))}.")
        missing = sorted({"instruction", "classes"} - set(data))
        if missing:
            raise InvalidSpec(f"The prompt misses {missing[0]!r}.",
                              hint="A prompt needs an instruction and its classes.")
        examples = []
        for item in data.get("examples") or ():
            if isinstance(item, Mapping):
                examples.append((item["text"], item["label"]))
            else:
                text, label = item
                examples.append((text, label))
        rest = {k: data[k] for k in ("input_prefix", "label_prefix", "max_chars") if k in data}
        return cls(instruction=str(data["instruction"]), classes=tuple(data["classes"]),
                   examples=tuple(examples), **rest)

    @property
    def digest(self) -> str:
        """sha256 of everything that shapes the prompt (part of the source's version)."""
        return self._digest

    def completion_prompt(self, text: str) -> str:
        """The few-shot prompt for a base model; the answer is the next token."""
        blocks = [self.instruction.strip(), "Labels: " + ", ".join(self.classes) + "."]
        blocks += [f"{self.input_prefix} {one_line(t, self.max_chars)}\n"
                   f"{self.label_prefix} {label}" for t, label in self.examples]
        blocks.append(f"{self.input_prefix} {one_line(text, self.max_chars)}\n"
                      f"{self.label_prefix}")
        return "\n\n".join(blocks)

    def json_schema(self) -> dict[str, Any]:
        """The schema a chat answer must follow: ``{"label": <one of the classes>}``."""
        return {"type": "object",
                "properties": {"label": {"type": "string", "enum": list(self.classes)}},
                "required": ["label"], "additionalProperties": False}

    def chat_messages(self, text: str) -> list[dict[str, str]]:
        """System instruction, the examples as earlier turns, then the row."""
        system = (f"{self.instruction.strip()}\nAnswer with JSON: "
                  f'{{"label": one of {json.dumps(list(self.classes))}}}.')
        messages = [{"role": "system", "content": system}]
        for t, label in self.examples:
            messages.append({"role": "user", "content": one_line(t, self.max_chars)})
            messages.append({"role": "assistant", "content": json.dumps({"label": label})})
        messages.append({"role": "user", "content": one_line(text, self.max_chars)})
        return messages
