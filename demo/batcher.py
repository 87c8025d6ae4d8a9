"""Dynamic batching: requests that arrive together share one forward pass.

Gradio runs each request's callback in its own worker thread. Each thread hands its item to a
`Batcher` and waits; one model thread takes every item waiting (up to `max_batch`), runs them as
one padded batch and hands each thread its own result or its own exception. A lone request runs
at once (nothing waits for company), so single-request latency does not grow; under load the
per-item cost of the model falls with the batch size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

RunBatch = Callable[[list[Any]], Sequence[Any]]


class Batcher:
    """Callable `batcher(item) -> result`, safe to call from many threads at once.

    Parameters
    ----------
    run_batch : items → one result per item, in order; a result that is an Exception is raised
        in the caller of that item only (e.g. `Analyzer.analyze_many(..., errors="return")`)
    max_batch : most items per call of `run_batch`
    """

    def __init__(self, run_batch: RunBatch, max_batch: int = 16) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run_batch, self.max_batch = run_batch, max_batch
        self._waiting: queue.SimpleQueue = queue.SimpleQueue()
        self._arrival = threading.Condition()  # notified whenever an item joins the queue
        self.batch_sizes: list[int] = []  # one entry per call of run_batch (for benchmarks)
        threading.Thread(target=self._serve, name="batcher", daemon=True).start()

    def __call__(self, item: Any, timeout: float | None = None) -> Any:
        future: Future = Future()
        with self._arrival:
            self._waiting.put((item, future))
            self._arrival.notify_all()
        return future.result(timeout)  # raises the item's own exception

    def wait_until_waiting(self, count: int, timeout: float | None = None) -> bool:
        """Block until `count` items wait for the model; False on timeout (tests, benchmarks)."""
        with self._arrival:
            return self._arrival.wait_for(lambda: self._waiting.qsize() >= count, timeout)

    def _serve(self) -> None:
        while True:
            batch = [self._waiting.get()]  # block until there is work
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._waiting.get_nowait())  # whoever else is already waiting
                except queue.Empty:
                    break
            self._run(batch)

    def _run(self, batch: list[tuple[Any, Future]]) -> None:
        self.batch_sizes = (self.batch_sizes + [len(batch)])[-10_000:]
        try:
            results = self.run_batch([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch gave {len(results)} results for {len(batch)} items")
        except BaseException as error:  # noqa: BLE001 - every waiting caller must be answered
            for _, future in batch:
                future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
