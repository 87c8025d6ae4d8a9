"""How the app holds up under load: concurrent API clients, then a long sequential run for leaks.

    python benchmarks/load.py [--checkpoint DIR] [--clients 16] [--requests 20] [--timeout 600]
                              [--memory-requests 500] [--client-processes P]

Starts demo/app.py in a subprocess on 127.0.0.1 (demo/harness.py, as the tests do) and calls its
`/analyze` endpoint with gradio_client, each request one shipped example clip and its transcript.
First a few requests one after another give the single-request latency; then `--clients` clients
send `--requests` requests each at once (throughput, p50/p95 latency, errors); then
`--memory-requests` requests one after another show whether the server's memory grows. The
server's resident memory (its process and children) is sampled throughout, and the CPU time the
server and the clients spend per request during the load is printed with the bound it sets: on
C cores, N clients that wait for each answer cannot see a mean latency below N × (CPU per
request) / C. Prints figures only; asserts nothing.

The clients (demo/harness.py `drive_load`, which tests/test_load.py runs too) connect first,
then start at once; they run as threads of `--client-processes` processes (default: half the
cores), so that on a machine with many cores their own interpreter lock does not set the pace.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import (
    add_asset_arguments,
    command_line,
    cpu_seconds,
    machine,
    read_examples,
    server_rss,
)
from demo.harness import LoadResult, drive_load, free_port, start_app

SINGLE_RUNS = 5  # sequential requests timed before the load (after one warm-up)
MEMORY_WARMUP = 20  # requests before the "before" reading: caches and allocator pools settle
SAMPLE_INTERVAL_S = 0.05
MiB = 1024 * 1024


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
    add_asset_arguments(parser)
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
    inputs = [(row["audio"], row["text"]) for row in read_examples(Path(args.examples))]
    if not inputs:
        print(f"no examples.jsonl in {args.examples}: pass --examples DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mgcma-load-") as folder:
        port = args.port or free_port()
        process, start_s = start_app(
            args.checkpoint, port, Path(folder) / "app.log", bank=args.bank, examples=args.examples
        )
        url = f"http://127.0.0.1:{port}/"
        sampler = PeakMemory(process.pid)
        sampler.start()
        try:
            figures = run_phases(args, url, inputs, process.pid)
        finally:
            peak_rss = sampler.stop()
            process.terminate()
            process.wait(timeout=30)
    figures["peak_rss"] = peak_rss
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
    single, load = figures["single"], figures["load"]
    single_s = statistics.median(single.latencies_s) if single.latencies_s else float("nan")
    total = args.clients * args.requests
    print(f"command:     {command_line(__file__, argv)}")
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
