"""Dynamic batching of concurrent requests: shared forward passes, per-request results."""

import threading

import numpy as np
import pytest

from demo.batcher import Batcher
from mgcma.analysis import Analyzer


def _call_all(batcher: Batcher, items: list) -> list:
    """Call the batcher from one thread per item, all at once; each thread's result or error."""
    results: list = [None] * len(items)
    start = threading.Barrier(len(items))

    def call(index: int) -> None:
        start.wait()
        try:
            results[index] = batcher(items[index], timeout=30)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            results[index] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_concurrent_callers_share_batches_and_get_their_own_results():
    calls, running, release = [], threading.Event(), threading.Event()

    def run_batch(items):
        calls.append(list(items))
        if len(calls) == 1:  # the first batch holds the model until the others wait behind it
            running.set()
            assert release.wait(30)
        return [item * 10 for item in items]

    batcher = Batcher(run_batch, max_batch=4)
    results = {}

    def call(item: int) -> None:
        results[item] = batcher(item, timeout=30)

    threads = [threading.Thread(target=call, args=(item,)) for item in range(12)]
    threads[0].start()
    assert running.wait(30)  # item 0 is in the model, alone: nothing waited for company
    for thread in threads[1:]:
        thread.start()
    assert batcher.wait_until_waiting(11, timeout=30)  # the other 11 queue up behind it
    release.set()
    for thread in threads:
        thread.join(30)
    assert results == {item: item * 10 for item in range(12)}  # each caller its own result
    assert sorted(item for batch in calls for item in batch) == list(range(12))  # each once
    # whoever waits goes in the next batch, max_batch at a time: 1, then 4 + 4 + 3
    assert [len(batch) for batch in calls] == batcher.batch_sizes == [1, 4, 4, 3]
    assert batcher(5) == 50  # a lone request runs at once, in a batch of one
    assert batcher.batch_sizes[-1] == 1
    assert not batcher.wait_until_waiting(1, timeout=0.01)  # nothing is left waiting


def test_an_item_error_reaches_only_its_caller_and_a_crash_reaches_the_whole_batch():
    def run_batch(items):
        if "crash" in items:
            raise RuntimeError("the model fell over")
        return [
            ValueError(f"bad {item}") if item.startswith("bad") else item.upper() for item in items
        ]

    batcher = Batcher(run_batch, max_batch=8)
    results = _call_all(batcher, ["a", "bad-1", "b", "c"])
    assert [r if isinstance(r, str) else str(r) for r in results] == ["A", "bad bad-1", "B", "C"]
    with pytest.raises(RuntimeError, match="fell over"):
        batcher("crash")
    assert batcher("still serving") == "STILL SERVING"


def test_analyze_many_can_return_each_items_error_in_its_place(tiny_model):
    analyzer = Analyzer(tiny_model, device="cpu")
    rng = np.random.default_rng(0)
    good = (rng.standard_normal(16000).astype(np.float32) * 0.1, 16000, "i am so happy")
    other = (rng.standard_normal(9000).astype(np.float32) * 0.1, 16000, "get out of my room")
    nan_clip = np.full(8000, np.nan, dtype=np.float32)
    items = [good, (nan_clip, 16000, "hello"), other, (np.zeros(0, np.float32), 16000, "hello")]
    results = analyzer.analyze_many(items, errors="return")
    assert isinstance(results[1], Exception) and "NaN" in str(results[1])
    assert isinstance(results[3], Exception)
    for index in (0, 2):
        alone = analyzer.analyze(*items[index])
        assert results[index].probs == pytest.approx(alone.probs, abs=1e-5)
    with pytest.raises(Exception, match="NaN"):
        analyzer.analyze_many(items)  # the default still stops at the first bad item
