"""The LLM source of a labelling run: ask, count what failed, summarise for the report.

The answers go to the :class:`~forgeline.llm.cache.AnswerCache` of the home's cache folder
as they arrive, so a run stopped by an endpoint that went down asks, next time, only for
the rows still missing. An endpoint that cannot be reached (or does not serve the model)
before the first question, or that labels no row at all, stops the run with one line;
one that fails on some rows leaves them to the other sources.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeline.errors import UpstreamError
from forgeline.labeling.llm import LLMConfig, LLMLabeller, LLMLabels
from forgeline.labeling.matrix import ABSTAIN
from forgeline.labeling.spec import LabelSpec, load_prompt
from forgeline.llm.cache import AnswerCache
from forgeline.llm.client import api_key_from_env
from forgeline.util.progress import Progress
from forgeline.workflows import label_summary as summary

__all__ = ["LLMRun", "ask_llm"]


@dataclass(frozen=True)
class LLMRun:
    """The LLM's labels (class indices into the spec's classes) and what the run cost."""

    labels: LLMLabels
    codes: np.ndarray
    model: str
    url: str
    mode: str
    prompt_digest: str
    ids: pd.Index

    @property
    def examples(self) -> list[str]:
        """Up to three distinct failure messages, each with its row id."""
        seen: dict[str, str] = {}
        for e in self.labels.errors:
            if e.kind != "no_text" and e.message not in seen:
                seen[e.message] = f"row {self.ids[e.row]}: {e.kind}: {e.message}"
        return list(seen.values())[:3]

    def error_text(self) -> str:
        kinds = Counter(e.kind for e in self.labels.errors)
        return ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())

    def summary(self, gold: np.ndarray) -> dict[str, Any]:
        st = self.labels.stats
        kappa, kappa_rows = summary.kappa(self.codes, gold)
        kinds = Counter(e.kind for e in self.labels.errors)
        return {"model": self.model, "url": self.url, "mode": self.mode,
                "prompt_digest": self.prompt_digest, "rows": st.rows,
                "requests": st.requests, "cache_hits": st.cache_hits,
                "prompt_tokens": st.prompt_tokens, "completion_tokens": st.completion_tokens,
                "seconds": float(st.seconds),
                "rows_per_s": float(st.rows_per_s) if np.isfinite(st.rows_per_s) else None,
                "errors": dict(kinds), "kappa": kappa, "kappa_rows": kappa_rows}


def ask_llm(spec: LabelSpec, texts: pd.Series, cache_dir: Path, progress: Progress) -> LLMRun:
    """The LLM's label for every row of ``texts`` (indexed by row id)."""
    cfg = spec.llm
    assert cfg is not None
    template = load_prompt(cfg.prompt, spec.classes)
    config = LLMConfig(base_url=cfg.url, model=cfg.model, mode=cfg.mode,
                       concurrency=cfg.concurrency, requests_per_s=cfg.rate_limit,
                       max_retries=cfg.max_retries, timeout_s=cfg.timeout_s,
                       api_key=api_key_from_env(cfg.api_key_env))
    last: list[int] = []  # rows done at the previous call; empty before the first

    def advance(done: int, total: int) -> None:
        if not last:
            progress.task(f"Asking {cfg.model}", total, "texts")
            last.append(0)
        progress.advance(done - last[0])
        last[0] = done

    cache = AnswerCache.in_folder(cache_dir)
    try:
        with LLMLabeller(config, template, cache=cache, name=cfg.name,
                         calibrate=cfg.calibrate) as labeller:
            result = labeller.label(texts.tolist(), progress=advance)
    finally:
        progress.done()
        cache.close()
    # the template's classes are the spec's, in the spec's order: indices carry over
    codes = np.where(result.labels >= 0, result.labels, ABSTAIN).astype(np.int64)
    st = result.stats
    asked = st.rows - st.no_text
    if asked and st.failed - st.no_text >= asked:
        kinds = Counter(e.kind for e in result.errors if e.kind != "no_text")
        first = next(e for e in result.errors if e.kind != "no_text")
        raise UpstreamError(
            f"The LLM {cfg.model} at {config.base_url} labelled none of {asked} rows "
            f"({', '.join(f'{n} {k}' for k, n in kinds.items())}; first: {first.message}).",
            hint="Check the endpoint and the prompt; answers received so far are cached.")
    return LLMRun(result, codes, cfg.model, config.base_url, cfg.mode, template.digest,
                  texts.index)
