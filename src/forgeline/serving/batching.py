"""Adaptive micro-batching: concurrent requests share one model call.

Each request puts its validated input (a frame, or the columns the signature coerced
it to) on the batcher's queue and awaits a future. One task per model forms batches and
hands each to a single worker thread, one call at a time; the thread joins the inputs
into one frame (column by column: far cheaper than a frame per request) and scores it:

- the first request of a batch waits at most ``max_wait_s`` for others to join, and only
  while they keep arriving: once the event loop has no request on its way to the queue,
  waiting longer would only leave the CPU idle (a closed-loop client sends its next
  request only after this answer);
- while the model is busy with the previous batch the next one keeps filling (the wait
  ends only when both the deadline has passed and the model is free), so under load a
  batch grows to ``max_batch_size`` rows and throughput approaches the model's batch
  throughput, while a lone request pays at most ``max_wait_s`` extra;
- a request with more rows than ``max_batch_size`` is scored alone;
- a model whose calls take a millisecond or two (ONNX Runtime on a tree ensemble) is
  called on the event loop itself: handing it to the thread would cost more than the call;
- when a batch call fails, its requests are scored one by one, so one bad request
  fails alone and the others still get their answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd

from forgeline.packaging.coercion import Part, rows_of
from forgeline.serving.runtime_base import Prediction

__all__ = ["INLINE_S", "BatchHook", "MicroBatcher", "Part", "rows_of"]

log = logging.getLogger("forgeline.serving")

INLINE_S = 0.002  # model calls faster than this (on average) run on the event loop

#: ``hook(frame, prediction, tags, rows)``: one model call, with each request's tag and
#: row count in the frame's order
BatchHook = Callable[[pd.DataFrame, Prediction, list[Any], list[int]], None]


def _concat(parts: Sequence[Part]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


@dataclass(slots=True)
class _Item:
    part: Part
    rows: int
    tag: Any
    future: asyncio.Future[Prediction]


class MicroBatcher:
    """Groups the inputs of concurrent requests into one call of ``predict``.

    Args:
        predict: scores a frame; called from one worker thread, one call at a time.
        combine: joins the parts of a batch into one frame (``Signature.combine``);
            frames are concatenated when None.
        inline_s: model calls that take less than this on average run on the event loop.
        max_batch_size: the most rows in one call (a larger request is scored alone).
        max_wait_s: how long the first request of a batch waits for more.
        on_batch: a :data:`BatchHook` called on the event loop for each successful model
            call, after the requests have their answers; it must not block (metrics and
            the prediction log hand the work to a thread); its errors are logged.
        name: names the worker thread.
    """

    def __init__(self, predict: Callable[[pd.DataFrame], Prediction], *, max_batch_size: int,
                 max_wait_s: float, on_batch: BatchHook | None = None,
                 combine: Callable[[Sequence[Part]], pd.DataFrame] | None = None,
                 inline_s: float = INLINE_S, name: str = "model") -> None:
        self._predict = predict
        self._combine = combine or _concat
        self._inline_s = inline_s
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
        self._call_s: float | None = None  # moving average of a model call's duration

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

    async def predict(self, part: Part, tag: Any = None) -> Prediction:
        """The prediction for ``part`` (rows in order), scored with whatever else is queued.

        ``tag`` (a request id) is handed to ``on_batch`` with the rows.

        Raises:
            RuntimeError: the batcher is not running.
            Exception: whatever the model raised for these rows.
        """
        if self._task is None or self._task.done() or self._wakeup is None:
            raise RuntimeError(f"the batcher of {self._name} is not running")
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        rows = rows_of(part)
        self._pending.append(_Item(part, rows, tag, future))
        self._pending_rows += rows
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
        """Wait until the batch is full, ``max_wait_s`` has passed, we are closing, or no
        request is on its way: two passes of the event loop (one reads the sockets with
        data, the next runs those requests up to this queue) brought nothing new."""
        if self._max_wait <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        quiet = 0
        while self._pending_rows < self._max_rows and not self._closing and quiet < 2:
            if loop.time() >= deadline:
                return
            before = self._pending_rows
            await asyncio.sleep(0)
            quiet = quiet + 1 if self._pending_rows == before else 0

    def _take(self) -> list[_Item]:
        items: list[_Item] = []
        rows = 0
        while self._pending:
            size = self._pending[0].rows
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
        scored: list[tuple[pd.DataFrame, Prediction, list[_Item]]] = []
        try:
            if self._call_s is not None and self._call_s < self._inline_s:
                results = self._compute(items, scored)
            else:
                results = await loop.run_in_executor(self._executor, self._compute, items,
                                                     scored)
        except Exception as e:  # the executor itself failed
            results = [e] * len(items)
        for item, result in zip(items, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
        if self._on_batch is not None:  # after the answers: never delays one
            for frame, prediction, group in scored:
                try:
                    self._on_batch(frame, prediction, [i.tag for i in group],
                                   [i.rows for i in group])
                except Exception:
                    log.exception("recording a batch of %s failed", self._name)

    # -- in the worker thread -----------------------------------------------------------
    def _compute(self, items: list[_Item],
                 scored: list[tuple[pd.DataFrame, Prediction, list[_Item]]]
                 ) -> list[Prediction | Exception]:
        """Score the items as one batch; ``scored`` collects each successful model call."""
        if len(items) == 1:
            return [self._score(items, scored)]
        result = self._score(items, scored)
        if isinstance(result, Exception):
            return [self._score([i], scored) for i in items]  # so only the bad one fails
        out: list[Prediction | Exception] = []
        start = 0
        for item in items:
            stop = start + item.rows
            proba = None if result.proba is None else result.proba[start:stop]
            out.append(Prediction(result.labels[start:stop], proba))
            start = stop
        return out

    def _score(self, items: list[_Item],
               scored: list[tuple[pd.DataFrame, Prediction, list[_Item]]]
               ) -> Prediction | Exception:
        start = time.perf_counter()
        try:
            frame = self._combine([i.part for i in items])
            prediction = self._predict(frame)
        except Exception as e:
            return e
        took = time.perf_counter() - start
        self._call_s = took if self._call_s is None else 0.9 * self._call_s + 0.1 * took
        scored.append((frame, prediction, items))
        return prediction
