"""Compilation: the teacher's LightGBM ensemble as native code, as a candidate.

The candidate is the teacher's pipeline with its final LightGBM estimator replaced by
:class:`~forgeline.packaging.compiled.CompiledLGBMClassifier` (or ``...Regressor``): the
same trees, the same predictions (to 1e-9), served natively (``serve_native``). It is
compiled here once, so that the workflow measures the compiled code and a missing
compiler shows now, as a skipped candidate with a log line, never as a crash.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from forgeline.optimization.candidate import Candidate, with_final
from forgeline.packaging.package import final_estimator

__all__ = ["compile_candidates"]

log = logging.getLogger("forgeline.optimization")


def compile_candidates(model: Any) -> list[Candidate]:
    """``[the compiled variant]`` of a pipeline ending in LightGBM; ``[]`` otherwise, or
    when the compiler (``forgeline[compile]``: tl2cgen, treelite, and gcc) is missing."""
    last = final_estimator(model)
    if not (type(last).__module__.startswith("lightgbm.") and hasattr(last, "booster_")):
        log.info("no compiled candidate: the final estimator (%s) is not LightGBM",
                 type(last).__name__)
        return []
    missing = [m for m in ("tl2cgen", "treelite") if importlib.util.find_spec(m) is None]
    if missing:
        log.warning("no compiled candidate: %s not installed (pip install "
                    "'forgeline[compile]')", " and ".join(missing))
        return []
    from forgeline.packaging.compiled import compile_lightgbm, library

    compiled = compile_lightgbm(last)
    try:
        library(compiled.model_text_)
    except Exception as e:  # no C compiler, a compiler error
        log.warning("no compiled candidate: compiling the LightGBM model failed (%s: %s)",
                    type(e).__name__, str(e)[:300])
        return []
    variant = with_final(model, compiled)
    trees = last.booster_.num_trees()
    return [Candidate("compiled", "compilation", variant, {"compiler": "tl2cgen"},
                      f"{trees} trees compiled to native code (treelite, tl2cgen, gcc); "
                      "served natively")]
