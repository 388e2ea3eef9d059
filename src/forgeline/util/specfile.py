"""Reading a YAML spec: the file (or a dict), ``--set key=value`` overrides, errors that
name the key and its line.

Shared by every spec (training's, labelling's): each validates the mapping with its own
pydantic model and turns a ``ValidationError`` into one :class:`InvalidSpec` line through
:func:`spec_error`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from forgeline.errors import InvalidSpec

__all__ = ["Lines", "merge", "parse_overrides", "read_spec", "spec_error", "yaml_lines"]

Lines = dict[tuple[str | int, ...], int]


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["tuning.trials=5", "models=[lightgbm]"]`` -> a nested dict (values parsed as YAML)."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidSpec(f"Invalid override {item!r}: expected key=value.",
                              hint="For example tuning.trials=5.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise InvalidSpec(f"Invalid override {item!r}: the value is not valid YAML ({e})."
                              ) from None
        node = result
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidSpec(f"Invalid override {item!r}: {part!r} is not a section.")
        node[leaf] = value
    return result


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it, section by section."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def yaml_lines(node: yaml.Node, path: tuple[str | int, ...] = ()) -> Lines:
    """Every key path in a YAML document -> its 1-based line."""
    found: Lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, key.value)
            found[sub] = key.start_mark.line + 1
            found.update({k: v for k, v in yaml_lines(value, sub).items() if k != sub})
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found.update(yaml_lines(item, (*path, i)))
    return found


def spec_error(e: ValidationError, source: str, lines: Lines, hint: str) -> InvalidSpec:
    """One InvalidSpec naming up to five problems, each with its key and line."""
    problems = []
    for err in e.errors()[:5]:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(
            ("function-", "literal["))))
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        where = f" (line {line})" if line else ""
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r}{where}")
        elif err["type"] == "missing":
            problems.append(f"missing required key {key!r}")
        else:
            message = err["msg"].removeprefix("Value error, ").rstrip(".")
            problems.append(f"{key}{where}: {message}")
    more = f" (and {len(e.errors()) - 5} more)" if len(e.errors()) > 5 else ""
    return InvalidSpec(f"Invalid spec {source}: " + "; ".join(problems) + more + ".",
                       hint=hint)


def read_spec(source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...],
              required: str) -> tuple[dict[str, Any], Lines, Path, str]:
    """The spec's mapping with the overrides applied, its key lines, the folder relative
    paths are taken from (the file's, else the working directory) and a label for errors.

    ``required`` names the keys a spec must have, for the message when it is not a mapping.
    """
    lines: Lines = {}
    base = Path.cwd()
    label = "(dict)"
    if isinstance(source, dict):
        raw: Any = source
    else:
        path = Path(source)
        label = str(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise InvalidSpec(f"Cannot read spec {label}: {e.strerror or e}.",
                              hint="Check the path to the YAML file.") from None
        try:
            raw = yaml.safe_load(text)
            node = yaml.compose(text)
        except yaml.YAMLError as e:
            raise InvalidSpec(f"Spec {label} is not valid YAML: {e}".replace("\n", " ")
                              ) from None
        if node is not None:
            lines = yaml_lines(node)
        base = path.parent
    if not isinstance(raw, dict):
        raise InvalidSpec(f"Spec {label} must be a mapping with at least {required}.")
    return merge(raw, parse_overrides(overrides)), lines, base, label
