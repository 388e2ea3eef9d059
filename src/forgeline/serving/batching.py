"""Adaptive micro-batching: concurrent requests share one model call.

Each request puts its validated frame on the batcher's queue and awaits a future. One
task per model forms batches and hands each to a single worker thread, one call at a time:

- the first request of a batch waits at most ``max_wait_s`` for others to join;
- while the model is busy with the previous batch the next one keeps filling (the wait
  ends only when both the deadline has passed and the model is free), so under load a
  batch grows to ``max_batch_size`` rows and throughput approaches the model's batch
  throughput, while a lone request pays at most ``max_wait_s`` extra;
- a request with more rows than ``max_batch_size`` is scored alone;
- when a batch call fails, its requests are scored one by one, so one bad request
  fails alone and the others still get their answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from forgeline.serving.runtime import Prediction

__all__ = ["MicroBatcher"]

log = logging.getLogger("forgeline.serving")

BatchHook = Callable[[pd.DataFrame, Prediction], None]


@dataclass(slots=True)
class _Item:
    frame: pd.DataFrame
    future: asyncio.Future[Prediction]


class MicroBatcher:
    """Groups the frames of concurrent requests into one call of ``predict``.

    Args:
        predict: scores a frame; called from one worker thread, one call at a time.
        max_batch_size: the most rows in one call (a larger request is scored alone).
        max_wait_s: how long the first request of a batch waits for more.
        on_batch: called on the event loop with the frame and prediction of each
            successful model call, after the requests have their answers; it must not
            block (metrics hand the work to a thread); its errors are logged.
        name: names the worker thread.
    """

    def __init__(self, predict: Callable[[pd.DataFrame], Prediction], *, max_batch_size: int,
                 max_wait_s: float, on_batch: BatchHook | None = None,
                 name: str = "model") -> None:
        self._predict = predict
        self._max_rows = max_batch_size
        self._max_wait = max_wait_s
        self._on_batch = on_batch
        self._name = name
        self._pending: deque[_Item] = deque()
        self._pending_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    @property
    def backlog_rows(self) -> int:
        """Rows waiting for a model call."""
        return self._pending_rows

    def start(self) -> None:
        """Start the batching task on the running event loop."""
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"forgeline-{self._name}")
        self._task = asyncio.get_running_loop().create_task(self._loop(),
                                                            name=f"batcher-{self._name}")

    async def predict(self, frame: pd.DataFrame) -> Prediction:
        """The prediction for ``frame`` (rows in order), scored with whatever else is queued.

        Raises:
            RuntimeError: the batcher is not running.
            Exception: whatever the model raised for this frame.
        """
        if self._task is None or self._task.done() or self._wakeup is None:
            raise RuntimeError(f"the batcher of {self._name} is not running")
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._pending.append(_Item(frame, future))
        self._pending_rows += len(frame)
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Score everything queued, then stop the task and the worker thread."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # -- the batching task --------------------------------------------------------------
    async def _loop(self) -> None:
        assert self._wakeup is not None
        running: asyncio.Task[None] | None = None
        while True:
            while not self._pending:
                if self._closing:
                    if running is not None:
                        await running
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._fill()
            if running is not None:
                await running  # the model is busy; requests keep joining the next batch
            running = asyncio.get_running_loop().create_task(self._execute(self._take()))

    async def _fill(self) -> None:
        """Wait until the batch is full, ``max_wait_s`` has passed, or we are closing."""
        assert self._wakeup is not None
        if self._max_wait <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        while self._pending_rows < self._max_rows and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            timer = loop.call_later(remaining, self._wakeup.set)
            try:
                await self._wakeup.wait()
            finally:
                timer.cancel()

    def _take(self) -> list[_Item]:
        items: list[_Item] = []
        rows = 0
        while self._pending:
            size = len(self._pending[0].frame)
            if items and rows + size > self._max_rows:
                break
            item = self._pending.popleft()
            self._pending_rows -= size
            if item.future.done():  # its request went away
                continue
            items.append(item)
            rows += size
            if rows >= self._max_rows:
                break
        return items

    async def _execute(self, items: list[_Item]) -> None:
        if not items:
            return
        loop = asyncio.get_running_loop()
        scored: list[tuple[pd.DataFrame, Prediction]] = []
        try:
            results = await loop.run_in_executor(self._executor, self._compute,
                                                 [i.frame for i in items], scored)
        except Exception as e:  # the executor itself failed
            results = [e] * len(items)
        for item, result in zip(items, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
        if self._on_batch is not None:  # after the answers: metrics never delay one
            for frame, prediction in scored:
                try:
                    self._on_batch(frame, prediction)
                except Exception:
                    log.exception("recording a batch of %s failed", self._name)

    # -- in the worker thread -----------------------------------------------------------
    def _compute(self, frames: list[pd.DataFrame], scored: list[tuple[pd.DataFrame, Prediction]]
                 ) -> list[Prediction | Exception]:
        """Score the frames as one batch; ``scored`` collects each successful model call."""
        if len(frames) == 1:
            return [self._score(frames[0], scored)]
        frame = pd.concat(frames, ignore_index=True)
        result = self._score(frame, scored)
        if isinstance(result, Exception):
            return [self._score(f, scored) for f in frames]  # so only the bad request fails
        out: list[Prediction | Exception] = []
        start = 0
        for f in frames:
            stop = start + len(f)
            proba = None if result.proba is None else result.proba[start:stop]
            out.append(Prediction(result.labels[start:stop], proba))
            start = stop
        return out

    def _score(self, frame: pd.DataFrame, scored: list[tuple[pd.DataFrame, Prediction]]
               ) -> Prediction | Exception:
        try:
            prediction = self._predict(frame)
        except Exception as e:
            return e
        scored.append((frame, prediction))
        return prediction
