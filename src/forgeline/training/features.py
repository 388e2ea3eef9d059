"""Feature processing: one scikit-learn ColumnTransformer, fit on training folds only.

numeric      median imputation (+ missing indicators) and scaling
categorical  missing -> "__missing__", then one-hot (unseen categories ignored) or, above
             ``max_onehot`` categories with encoding "auto", cross-fitted target encoding;
             for trees that split on categories themselves (``native``), integer codes
             (unseen as missing) up to 254 values, target encoding above
boolean      as a two-value categorical
datetime     year, month, day, day of week, hour, weekend flag and the days elapsed since
             1970 (the position in time); then as numeric (imputed, scaled)
text         TF-IDF of words and word pairs; or, for the columns in ``embeddings``
             (``features.embeddings`` in the spec), a sentence-embedding model's
             384 dimensions (:mod:`forgeline.packaging.embeddings`, cached by content);
             both for those in ``tfidf_too`` (listed in ``features.text`` as well)
id           never a feature
llm          for the columns in ``llm`` (``features.llm``), whatever their kind, an LLM's
             answers to questions about each row (:mod:`forgeline.packaging.llm_features`,
             cached), median-imputed with missing indicators: an answer that names none
             of the allowed answers is a missing value

With ``native`` (boosted trees, encoding "auto"), numbers and dates' parts are passed on
as they are (the trees send missing values down their own branch; scaling changes
nothing), and the category codes come first, so the model is told columns
``0 .. n_categorical - 1`` are categories: scikit-learn's own HistGradientBoosting default
on a DataFrame with categories, the baseline a user tries first.

Forgeline's own transformers (:mod:`forgeline.packaging.transformers`) hold no learned
state beyond plain arrays, so the fitted pipeline round-trips through skops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from forgeline.data.schema import ColumnKind, Schema
from forgeline.packaging.embeddings import DEFAULT_MODEL, TextEmbeddings, as_texts, embed
from forgeline.packaging.llm_features import LLMFeatures, llm_stats
from forgeline.packaging.transformers import AsText, Categories, DatetimeParts
from forgeline.util.progress import Progress

# AsText, Categories and DatetimeParts are imported here too so that model packages written
# before they moved to forgeline.packaging.transformers (whose files name them
# forgeline.training.features.*) still load.
__all__ = ["build_preprocessor", "native_categories", "warm_embeddings", "warm_llm"]

_DENSE_TERMS = 300
_CATEGORY_KINDS = (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)  # booleans: two values
_NATIVE_CODES = 255  # HistGradientBoosting splits on at most max_bins (255) categories


def _folds(target_type: str, seed: int) -> KFold:
    """Target encoding is cross-fitted inside the training data: out-of-fold means only."""
    kind = StratifiedKFold if target_type in ("binary", "multiclass") else KFold
    return kind(n_splits=5, shuffle=True, random_state=seed)


def native_categories(schema: Schema, features: Sequence[str]) -> list[str]:
    """The features a ``native`` preprocessor passes as category codes: categories and
    booleans with fewer values than the trees split on (more are target-encoded)."""
    return [name for name in features
            if schema[name].kind in _CATEGORY_KINDS
            and schema[name].n_unique < _NATIVE_CODES]


def build_preprocessor(schema: Schema, features: Sequence[str], *, encoding: str = "auto",
                       max_onehot: int = 20, dense: bool = False, seed: int = 0,
                       target_type: str = "auto", native: bool = False,
                       embeddings: Sequence[str] = (), embedding_model: str = DEFAULT_MODEL,
                       tfidf_too: Sequence[str] = (),
                       llm: Sequence[tuple[str, Mapping[str, Any]]] = ()) -> ColumnTransformer:
    """The ColumnTransformer for ``features`` (a subset of the schema's columns).

    Args:
        dense: produce a dense matrix (for estimators that refuse sparse input).
        target_type: passed to TargetEncoder ("binary", "multiclass", "continuous").
        native: for a model that splits on categories itself (see the module's docstring);
            the categories' codes are the first ``len(native_categories(...))`` columns.
        embeddings: text columns encoded by ``embedding_model`` instead of TF-IDF...
        tfidf_too: ...or beside it: those of them that keep their TF-IDF terms too.
        llm: ``(column, LLMFeatures arguments)``: the LLM's answers about those columns.
    """
    picked = [schema[name] for name in features]
    numeric = [c.name for c in picked if c.kind is ColumnKind.NUMERIC]
    dates = [c.name for c in picked if c.kind is ColumnKind.DATETIME]
    texts = [c.name for c in picked if c.kind is ColumnKind.TEXT]
    categorical = [c for c in picked if c.kind in _CATEGORY_KINDS]
    codes = native_categories(schema, features) if native else []
    target_encoded = [c.name for c in categorical if c.name not in codes and (
        encoding == "target" or native or (encoding == "auto" and c.n_unique > max_onehot))]
    one_hot = [c.name for c in categorical if c.name not in target_encoded + codes]

    steps: list[tuple[str, object, object]] = []
    if codes:  # first: the model is told their positions
        steps.append(("categories", make_pipeline(
            Categories(), OrdinalEncoder(handle_unknown="use_encoded_value",
                                         unknown_value=np.nan,
                                         max_categories=_NATIVE_CODES)), codes))
    if native and numeric:
        steps.append(("numeric", "passthrough", numeric))
    elif numeric:
        steps.append(("numeric", make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler()), numeric))
    if native and dates:
        steps.append(("datetime", DatetimeParts(), dates))
    elif dates:
        steps.append(("datetime", make_pipeline(  # scaled: the days elapsed run to ~20,000
            DatetimeParts(), SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler()), dates))
    if one_hot:
        steps.append(("onehot", make_pipeline(
            Categories(), OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                        max_categories=max_onehot + 1,
                                        sparse_output=not dense)), one_hot))
    if target_encoded:
        steps.append(("target", make_pipeline(
            Categories(), TargetEncoder(target_type=target_type, cv=_folds(target_type, seed))),
            target_encoded))
    for name in texts:
        if name in embeddings:
            steps.append((f"embed_{name}", TextEmbeddings(embedding_model), name))
            if name not in tfidf_too:
                continue
        # a dense matrix (for estimators that refuse sparse input) keeps fewer terms
        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2,
                                max_features=_DENSE_TERMS if dense else 2000,
                                sublinear_tf=True)
        steps.append((f"text_{name}", Pipeline([("text", AsText()), ("tfidf", tfidf)]), name))
    for column, arguments in llm:
        steps.append((f"llm_{column}", make_pipeline(
            LLMFeatures(**arguments),
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            column))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0 if dense else 0.3,
                             verbose_feature_names_out=False)


def warm_embeddings(frame: pd.DataFrame, columns: Sequence[str], model: str = DEFAULT_MODEL,
                    progress: Progress | None = None) -> None:
    """Encode every text of ``columns`` once, up front, with a progress bar: the folds,
    trials and refit that follow (in any process of this machine) read the cache."""
    progress = progress or Progress()
    for column in columns:
        texts = as_texts(frame[column])
        progress.task(f"Embedding {column}", len(texts), "texts")
        try:
            embed(texts, model, on_progress=progress.advance)
        finally:
            progress.done()


def warm_llm(frame: pd.DataFrame, llm: Sequence[tuple[str, Mapping[str, Any]]],
             progress: Progress | None = None) -> dict[str, float]:
    """Ask every LLM question about every text once, up front, with a progress bar: the
    folds, trials and refit that follow read the answer cache. Returns what it took:
    ``llm_answers`` (distinct text and question pairs), ``llm_cache_hits``, ``llm_calls``,
    ``llm_invalid`` (answers that named no allowed answer), ``llm_seconds``."""
    progress = progress or Progress()
    before = llm_stats()
    for column, arguments in llm:
        step = LLMFeatures(**arguments).fit(frame[[column]])
        texts = list(dict.fromkeys(t for t in as_texts(frame[column]) if t.strip()))
        progress.task(f"Asking the LLM about {column}", len(texts) * len(step.questions_),
                      "answers")
        try:
            step.answer(texts, on_progress=progress.advance)
        finally:
            progress.done()
    after = llm_stats()
    return {"llm_answers": after.questions - before.questions,
            "llm_cache_hits": after.cache_hits - before.cache_hits,
            "llm_calls": after.calls - before.calls,
            "llm_invalid": after.invalid - before.invalid,
            "llm_seconds": after.seconds - before.seconds}
