"""The models a server holds, how requests are routed to them, and how they are swapped.

A :class:`ServedModel` is one loaded version: predictor, runtime and micro-batcher. A
:class:`Deployment` maps each served reference (primary, canary, shadow) to its current
``ServedModel``. A request picks its model once, at the start, and keeps it to the end, so
a swap never changes the model under a request: the watcher loads the new version next to
the old one, replaces the dict entry (one assignment), and retires the old version only
when its last request has finished.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from forgeline.errors import IntegrityError, InvalidInput
from forgeline.names import parse_model_ref
from forgeline.packaging import Predictor, load_model, manifest_digest
from forgeline.packaging.llm_features import llm_steps, probe_llm
from forgeline.serving.batching import INLINE_S, BatchHook, MicroBatcher, Part
from forgeline.serving.config import Batching, ServeConfig
from forgeline.serving.runtime import select_runtime
from forgeline.serving.runtime_base import Prediction

if TYPE_CHECKING:
    from forgeline.packaging.explain import Explainer, Explanation
    from forgeline.tracking.client import Client

__all__ = ["Deployment", "ServedModel", "canary_share"]

log = logging.getLogger("forgeline.serving")

PRIMARY, CANARY, SHADOW = "primary", "canary", "shadow"
SwapListener = Callable[[str, "ServedModel", "ServedModel"], None]


def canary_share(request_id: str) -> float:
    """Where a request id falls in [0, 100): the same id always falls in the same place.

    A stable hash (not Python's salted ``hash``), so every worker process and every
    retry of a request routes it the same way.
    """
    digest = hashlib.blake2b(request_id.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2.0 ** 64 * 100.0


class ServedModel:
    """One loaded model version ready to answer: predictor, runtime and micro-batcher.

    Args:
        ref: the reference it was loaded for (``fraud@champion``) or a directory.
        predictor: the loaded package.
        runtime_preference: passed to ``select_runtime``.
        llm_url: where its LLM features ask (None: ``FORGELINE_LLM_URL`` or the training
            URL); each feature step is probed once here, its latency in ``llm_probe``.
        llm_timeout_s: how long one prediction waits for its LLM answers.
    """

    def __init__(self, ref: str, predictor: Predictor, runtime_preference: str = "auto",
                 llm_url: str | None = None, llm_timeout_s: float | None = None):
        self.ref = ref
        self.predictor = predictor
        self.signature = predictor.signature
        mv = predictor.model_version
        self.name = mv.name if mv is not None else Path(predictor.path).name
        self.version: int | None = mv.version if mv is not None else None
        self.llm = [step.connect(llm_url, llm_timeout_s) for step in llm_steps(predictor.model)]
        self.runtime = select_runtime(predictor, runtime_preference)
        self.llm_probe = probe_llm(self.llm) if self.llm else None
        if self.llm_probe:
            log.info("%s: LLM features: %s", self.label, self.llm_probe)
        self.batcher: MicroBatcher | None = None
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        self._explainer: Explainer | None = None  # built on the first explanation asked
        self._explainer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ServedModel({self.label!r}, runtime={self.runtime.name!r})"

    @property
    def label(self) -> str:
        """``fraud/2`` (or the directory name for a package served from a folder)."""
        return self.name if self.version is None else f"{self.name}/{self.version}"

    def validate(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> Part:
        """The model's input (a frame, or its columns for a few records); InvalidInput
        naming every problem otherwise."""
        if isinstance(rows, pd.DataFrame):
            return self.signature.validate(rows)
        return self.signature.coerce_records(rows)

    def explain(self, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> Explanation:
        """Each input column's contribution to the native model's output for ``rows``.

        The explainer is built on the first call and kept, so a server that is never asked
        for explanations never pays for one, and plain predictions never wait for it.

        Raises:
            NotExplainable: a model Forgeline cannot explain.
            InvalidInput: rows that do not match the signature.
        """
        if self._explainer is None:
            with self._explainer_lock:
                if self._explainer is None:
                    from forgeline.serving.explaining import build_explainer

                    self._explainer = build_explainer(self.predictor, self.label)
        return self._explainer.explain(rows)

    @property
    def explains_inline(self) -> bool:
        """Whether an explanation is cheap enough to compute on the event loop (about what
        a prediction costs): the explainer is built and reads the model's own trees or
        coefficients, not Shapley values over a background."""
        return self._explainer is not None and self._explainer.reads_matrix

    def start(self, batching: Batching, on_batch: BatchHook | None) -> None:
        self.batcher = MicroBatcher(self.runtime.predict,
                                    max_batch_size=batching.max_batch_size,
                                    max_wait_s=batching.max_wait_s, on_batch=on_batch,
                                    combine=self.signature.combine,
                                    # LLM calls never run on the event loop, cached or not
                                    inline_s=0.0 if self.llm else INLINE_S,
                                    name=self.label.replace("/", "-"))
        self.batcher.start()

    async def predict(self, part: Part, tag: Any = None) -> Prediction:
        assert self.batcher is not None, "start() the model first"
        return await self.batcher.predict(part, tag)

    # -- lifetime: a model is retired only after its last request -----------------------
    def acquire(self) -> None:
        self._inflight += 1

    def release(self) -> None:
        self._inflight -= 1
        if self._inflight == 0 and self._idle is not None:
            self._idle.set()

    async def retire(self) -> None:
        """Wait for the requests using this version, then stop its batcher."""
        if self._inflight:
            self._idle = asyncio.Event()
            await self._idle.wait()
        if self.batcher is not None:
            await self.batcher.close()


def watchable(ref: str) -> bool:
    """Whether ``ref`` can move: an alias or ``name`` (latest), not ``name/3`` or a folder."""
    if (Path(ref).expanduser() / "MANIFEST.json").is_file():
        return False
    try:
        return parse_model_ref(ref).version is None
    except InvalidInput:
        return False


class Deployment:
    """The served references and their current versions; loads them on construction.

    Args:
        config: the serving settings (which references, runtime, batching, watching).
        client: the registry; ``Client(config.store_uri)`` when references need one.

    Raises:
        ForgelineError: a reference cannot be resolved or loaded (NotFound, ...).
    """

    def __init__(self, config: ServeConfig, client: Client | None = None) -> None:
        self.config = config
        self._client = client
        self._cache = Path(config.cache_dir).absolute() if config.cache_dir else None
        self.models: dict[str, ServedModel] = {ref: self._load(ref) for ref in config.refs}
        self._listeners: list[SwapListener] = []
        self._on_batch: Callable[[ServedModel], BatchHook | None] = lambda m: None
        self._loader: ThreadPoolExecutor | None = None
        self._failed: dict[str, str] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    # -- what serves a request ----------------------------------------------------------
    @property
    def primary(self) -> ServedModel:
        return self.models[self.config.model]

    @property
    def canary(self) -> ServedModel | None:
        return self.models[self.config.canary] if self.config.canary else None

    @property
    def shadow(self) -> ServedModel | None:
        return self.models[self.config.shadow] if self.config.shadow else None

    def route(self, request_id: str) -> tuple[ServedModel, str]:
        """The model that answers ``request_id`` and its role (``primary``/``canary``)."""
        canary = self.canary
        if canary is not None and canary_share(request_id) < self.config.canary_percent:
            return canary, CANARY
        return self.primary, PRIMARY

    def lookup(self, name: str, version: str | None = None) -> ServedModel | None:
        """A loaded model by OIP name (and version); None when there is none."""
        for model in self.models.values():
            if model.name == name and (version is None or version == str(model.version)):
                return model
        return None

    def versions(self, name: str) -> list[str]:
        return sorted({str(m.version) for m in self.models.values()
                       if m.name == name and m.version is not None}, key=int)

    # -- lifetime -----------------------------------------------------------------------
    def start(self, on_batch: Callable[[ServedModel], BatchHook | None]) -> None:
        """Start every model's batcher; ``on_batch(model)`` gives its batch hook."""
        self._on_batch = on_batch
        for model in self.models.values():
            model.start(self.config.batching, on_batch(model))

    def on_swap(self, listener: SwapListener) -> None:
        """Call ``listener(ref, old, new)`` on the event loop after each swap."""
        self._listeners.append(listener)

    async def stop(self) -> None:
        """Let every queued batch finish, then stop the batchers and the loader thread."""
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        await asyncio.gather(*(m.retire() for m in self.models.values()))
        if self._loader is not None:
            self._loader.shutdown(wait=False, cancel_futures=True)

    # -- watching the registry ----------------------------------------------------------
    async def watch(self, interval_s: float) -> None:
        """Poll the registry every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()

    async def refresh(self) -> list[str]:
        """Swap in the new version of every watched reference that moved.

        Never raises: a registry that cannot be read or a version that cannot be loaded
        is logged and the current version keeps serving.

        Returns:
            The references that were swapped.
        """
        loop = asyncio.get_running_loop()
        if self._loader is None:
            self._loader = ThreadPoolExecutor(1, thread_name_prefix="forgeline-loader")
        swapped = []
        for ref, current in list(self.models.items()):
            if not watchable(ref):
                continue
            try:
                version = await loop.run_in_executor(self._loader, self._resolve, ref)
                if version == current.version:
                    continue
                new = await loop.run_in_executor(self._loader, self._load, ref)
            except Exception as e:  # tried again at the next poll; said once
                if self._failed.get(ref) != str(e):
                    log.warning("watch: cannot refresh %s, still serving %s: %s", ref,
                                current.label, e)
                    self._failed[ref] = str(e)
                continue
            self._failed.pop(ref, None)
            new.start(self.config.batching, self._on_batch(new))
            self.models[ref] = new  # the swap: requests from now on get the new version
            log.info("%s moved: now serving %s (runtime %s), was %s", ref, new.label,
                     new.runtime.name, current.label)
            for listener in self._listeners:
                try:
                    listener(ref, current, new)
                except Exception:  # metrics or docs: never worth stopping the watch
                    log.exception("after swapping %s", ref)
            task = loop.create_task(current.retire(), name=f"retire-{current.label}")
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            swapped.append(ref)
        return swapped

    def _resolve(self, ref: str) -> int:
        return self.client.get_model_version(ref).version

    def _load(self, ref: str) -> ServedModel:
        local = (Path(ref).expanduser() / "MANIFEST.json").is_file()
        predictor = load_model(ref, None if local else self.client, self._cache)
        expected = self.config.manifest_sha256
        if expected is not None and ref == self.config.model and (
                actual := manifest_digest(predictor.path)) != expected:
            raise IntegrityError(f"The model package of {ref} has manifest sha256 "
                                 f"{actual[:12]}..., not the pinned {expected[:12]}....",
                                 hint="Serve the package the pin was taken from, or pin "
                                      "this one.")
        return ServedModel(ref, predictor, self.config.runtime, self.config.llm_url,
                           self.config.llm_timeout_s)

    @property
    def client(self) -> Client:
        if self._client is None:
            from forgeline.tracking.client import Client

            self._client = Client(self.config.store_uri)
        return self._client
