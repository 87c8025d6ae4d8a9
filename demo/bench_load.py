"""How the app holds up under load: concurrent API clients, then a long sequential run for leaks.

    python demo/bench_load.py [--checkpoint DIR] [--clients 16] [--requests 20] [--timeout 600]
                              [--memory-requests 500] [--client-processes P]

Starts demo/app.py in a subprocess on 127.0.0.1 (as demo/bench_ui.py does) and calls its
`/analyze` endpoint with gradio_client, each request one shipped example clip and its transcript.
First a few requests one after another give the single-request latency; then `--clients` clients
send `--requests` requests each at once (throughput, p50/p95 latency, errors); then
`--memory-requests` requests one after another show whether the server's memory grows. The
server's resident memory (its process and children) is sampled throughout, and the CPU time the
server and the clients spend per request during the load is printed with the bound it sets: on
C cores, N clients that wait for each answer cannot see a mean latency below N × (CPU per
request) / C. Prints figures only; asserts nothing (tests/test_load.py runs a short load with
`drive_load`).

The clients share one TLS context: gradio_client opens a fresh httpx client per request, and
httpx would otherwise parse the CA bundle every time (half of a client's CPU, measured with
py-spy), which a loopback benchmark must not charge to the server. The clients run as threads of
`--client-processes` processes (default: half the cores), so that on a machine with many cores
the clients' own interpreter lock does not set the throughput.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import queue
import shlex
import ssl
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `demo` from a checkout

from demo.bench_ui import ASSETS, _examples, free_port, machine, start_app  # noqa: E402

SINGLE_RUNS = 5  # sequential requests timed before the load (after one warm-up)
MEMORY_WARMUP = 20  # requests before the "before" reading: caches and allocator pools settle
SAMPLE_INTERVAL_S = 0.05
MiB = 1024 * 1024


@dataclass
class LoadResult:
    """What a run of requests gave: latencies of the successes and the errors' messages."""

    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_sent: int = 0  # requests skipped because the time limit had passed
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0  # CPU the clients' processes spent during the run

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_s(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) if self.latencies_s else float("nan")


def drive_load(
    url: str,
    inputs: list[tuple[str, str]],
    clients: int,
    requests: int,
    timeout_s: float,
    processes: int = 1,
) -> LoadResult:
    """`clients` gradio_client clients each calling `/analyze` `requests` times, all at once.

    Parameters
    ----------
    url : the app's address (loopback).
    inputs : (audio path, transcript) pairs, used in turn.
    clients, requests : how many clients, and requests per client.
    timeout_s : the whole run's time limit; a request still running then counts as an error and
        no new one is sent.
    processes : client processes the clients are spread over (1: threads of this process).
        A gradio_client request costs tens of milliseconds of Python CPU, and threads of one
        process share one interpreter lock: on a machine with many cores, clients in one
        process would measure themselves rather than the server.
    """
    deadline = time.monotonic() + timeout_s  # CLOCK_MONOTONIC: the same clock in every process
    processes = max(1, min(processes, clients))
    if processes == 1:
        return _drive_threads(url, inputs, range(clients), requests, deadline, None)
    context = multiprocessing.get_context("spawn")  # no fork of a process running threads
    start, answers = context.Barrier(processes + 1), context.Queue()
    workers = [
        context.Process(
            target=_client_process,
            args=(answers, url, inputs, range(i, clients, processes), requests, deadline, start),
            daemon=True,
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        start.wait(timeout_s)  # the clock starts once every client everywhere has connected
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    parts = []
    for _ in workers:
        try:
            parts.append(answers.get(timeout=max(0.0, deadline - time.monotonic()) + 60))
        except queue.Empty:
            break
    accounted = sum(len(p.latencies_s) + len(p.errors) + p.not_sent for p in parts)
    if accounted < clients * requests:  # a client process died or hung: its requests failed
        lost = ["a client process gave no answer"] * (clients * requests - accounted)
        parts.append(LoadResult(errors=lost))
    elapsed_s = time.perf_counter() - started
    for worker in workers:
        worker.join(10)
        if worker.is_alive():
            worker.kill()
    return LoadResult(
        latencies_s=[t for part in parts for t in part.latencies_s],
        errors=[e for part in parts for e in part.errors],
        not_sent=sum(part.not_sent for part in parts),
        elapsed_s=elapsed_s,
        client_cpu_s=sum(part.client_cpu_s for part in parts),
    )


def _client_process(answers, *args) -> None:
    answers.put(_drive_threads(*args))


def _drive_threads(url, inputs, indices, requests: int, deadline: float, start) -> LoadResult:
    """One thread per client index; `start` (a barrier shared with other processes) or None."""
    from gradio_client import Client, handle_file

    result, lock = LoadResult(), threading.Lock()
    tls = ssl.create_default_context()  # built once: see the module docstring
    ready = threading.Barrier(len(indices) + 1)

    def client_loop(index: int) -> None:
        try:
            # ssl_verify goes to httpx's `verify`, which takes a ready SSLContext as well
            client = Client(url, verbose=False, download_files=False, ssl_verify=tls)
        except Exception as error:  # noqa: BLE001 - a failed connect is one of the figures
            client, failure = None, f"connect: {type(error).__name__}: {error}"
        try:
            ready.wait(max(0.0, deadline - time.monotonic()))
        except threading.BrokenBarrierError:
            pass  # another client never connected: start anyway
        for number in range(requests):
            remaining = deadline - time.monotonic()
            if client is None or remaining <= 0:
                with lock:
                    if client is None:
                        result.errors.append(failure)
                    else:
                        result.not_sent += 1
                continue
            audio, text = inputs[(index + number) % len(inputs)]
            started = time.perf_counter()
            try:
                job = client.submit(handle_file(audio), text, api_name="/analyze")
                job.result(timeout=remaining)
            except Exception as error:  # noqa: BLE001 - every failure is reported, none raised
                with lock:
                    result.errors.append(f"{type(error).__name__}: {error}".strip())
                continue
            with lock:
                result.latencies_s.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in indices]
    for thread in threads:
        thread.start()
    for barrier in (ready, start):  # this process's clients, then everyone's
        try:
            if barrier is not None:
                barrier.wait(max(0.0, deadline - time.monotonic()))
        except threading.BrokenBarrierError:
            pass
    started, cpu_started = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 30)
    result.elapsed_s = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - cpu_started
    return result


def _family_total(pid: int, measure) -> float:
    """Sum of `measure(process)` over a process and all its children (0 once it has gone)."""
    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in family:
        try:
            total += measure(member)
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (0 once it has gone)."""
    return float(_family_total(pid, lambda p: sum(p.cpu_times()[:2])))


def server_rss(pid: int) -> int:
    """Resident bytes of a process and all its children (0 once it has gone)."""
    return int(_family_total(pid, lambda p: p.memory_info().rss))


class PeakMemory(threading.Thread):
    """Samples `server_rss(pid)` every SAMPLE_INTERVAL_S until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop_event = pid, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, server_rss(self.pid))
            self._stop_event.wait(SAMPLE_INTERVAL_S)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ASSETS / "checkpoints" / "compact"))
    parser.add_argument("--bank", default=str(ASSETS / "bank"))
    parser.add_argument("--examples", default=str(ASSETS / "examples"))
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds the load and the memory run may each take",
    )
    parser.add_argument(
        "--memory-requests",
        type=int,
        default=500,
        help="sequential requests for the leak check (0: skip)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=max(1, len(os.sched_getaffinity(0)) // 2),
        help="processes the clients are spread over (default: half the cores; see drive_load)",
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(args.checkpoint) / "config.json").is_file():
        print(f"no checkpoint at {args.checkpoint}: pass --checkpoint DIR", file=sys.stderr)
        return 2
    inputs = [(row["audio"], row["text"]) for row in _examples(Path(args.examples))]
    if not inputs:
        print(f"no examples.jsonl in {args.examples}: pass --examples DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mgcma-load-") as folder:
        port = args.port or free_port()
        process, start_s = start_app(args, port, Path(folder) / "app.log")
        url = f"http://127.0.0.1:{port}/"
        sampler = PeakMemory(process.pid)
        sampler.start()
        try:
            figures = run_phases(args, url, inputs, process.pid)
        finally:
            figures["peak_rss"] = sampler.stop()
            process.terminate()
            process.wait(timeout=30)
    report(args, argv, start_s, figures)
    return 0


def run_phases(args, url: str, inputs: list[tuple[str, str]], pid: int) -> dict:
    """Single-request latency, the concurrent load, then the sequential memory run."""
    figures = {"idle_rss": server_rss(pid)}
    single = drive_load(url, inputs, 1, 1 + SINGLE_RUNS, args.timeout)
    figures["single"] = LoadResult(single.latencies_s[1:], single.errors, single.not_sent)
    cpu_before = cpu_seconds(pid)
    figures["load"] = load = drive_load(
        url, inputs, args.clients, args.requests, args.timeout, args.client_processes
    )
    served = max(len(load.latencies_s), 1)
    figures["server_cpu_s"] = (cpu_seconds(pid) - cpu_before) / served
    figures["client_cpu_s"] = load.client_cpu_s / served
    figures["after_load_rss"] = server_rss(pid)
    if args.memory_requests > 0:
        drive_load(url, inputs, 1, MEMORY_WARMUP, args.timeout)
        figures["rss_before"] = server_rss(pid)
        figures["memory"] = drive_load(url, inputs, 1, args.memory_requests, args.timeout)
        figures["rss_after"] = server_rss(pid)
    return figures


def report(args, argv, start_s: float, figures: dict) -> None:
    command = shlex.join(
        ["python", "demo/bench_load.py", *(sys.argv[1:] if argv is None else argv)]
    )
    single, load = figures["single"], figures["load"]
    single_s = statistics.median(single.latencies_s) if single.latencies_s else float("nan")
    total = args.clients * args.requests
    print(f"command:     {command}")
    print(f"machine:     {machine()}")
    print(f"checkpoint:  {args.checkpoint}")
    print(f"server start → first page served: {start_s:.1f} s")
    print(
        f"single request (sequential, median of {len(single.latencies_s)} after 1 warm-up): "
        f"{single_s * 1000:.0f} ms"
    )
    print(
        f"load: {args.clients} clients × {args.requests} requests = {total}; "
        f"{len(load.latencies_s)} ok, {len(load.errors)} errors, {load.not_sent} not sent "
        f"(time limit {args.timeout:.0f} s), {load.elapsed_s:.1f} s; clients in "
        f"{min(args.client_processes, args.clients)} process(es)"
    )
    print(f"throughput:  {load.throughput:.2f} req/s")
    p50, p95 = load.percentile_s(50), load.percentile_s(95)
    print(
        f"latency:     p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"p95 / single {p95 / single_s:.1f}×"
    )
    cores = len(os.sched_getaffinity(0))
    cpu = figures["server_cpu_s"] + figures["client_cpu_s"]
    floor_s = args.clients * cpu / cores
    print(
        f"CPU per request under load: server {figures['server_cpu_s'] * 1000:.0f} ms, clients "
        f"{figures['client_cpu_s'] * 1000:.0f} ms; on {cores} cores {args.clients} clients "
        f"cannot see a mean latency below {floor_s * 1000:.0f} ms ({floor_s / single_s:.1f}× "
        "single)"
    )
    for message, count in collections.Counter(single.errors + load.errors).most_common(5):
        print(f"  error ×{count}: {message[:300]}")
    print(
        f"server RSS:  idle {figures['idle_rss'] / MiB:.0f} MiB, after load "
        f"{figures['after_load_rss'] / MiB:.0f} MiB, peak {figures['peak_rss'] / MiB:.0f} MiB"
    )
    if "memory" in figures:
        memory, before, after = figures["memory"], figures["rss_before"], figures["rss_after"]
        print(
            f"memory run:  {len(memory.latencies_s)} sequential requests ok, "
            f"{len(memory.errors)} errors, {memory.not_sent} not sent, {memory.elapsed_s:.1f} s "
            f"(after {MEMORY_WARMUP} warm-up)"
        )
        for message, count in collections.Counter(memory.errors).most_common(3):
            print(f"  error ×{count}: {message[:300]}")
        print(
            f"RSS before {before / MiB:.1f} MiB → after {after / MiB:.1f} MiB: "
            f"growth {100 * (after - before) / before:+.1f} % (target ≤ 10 %)"
        )


if __name__ == "__main__":
    sys.exit(main())
