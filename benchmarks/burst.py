"""A classroom burst: 30 clients press Analyze at the same moment, figures included.

    python benchmarks/burst.py [--checkpoint DIR] [--clients 30] [--rounds 1] [--timeout 600]
                               [--client-processes 1]

Starts demo/app.py on the shipped assets (demo/harness.py, as the tests do) and connects
`--clients` gradio_client clients. Once all have connected, each sends `--rounds` requests to
`/analyze_ui`, the event the Analyze button triggers, with what the page would send: an
uploaded example clip (each client its own, in turn), its transcript (so Whisper does not run),
and the page's defaults for the Whisper menu, the head, the direction and the map, read from
the app's config. The answer is the button's: the four figures, the neighbours table, the
notes, the analysis file. The browser's drawing is not in the figures (benchmarks/ui.py times
that), nor is the JSON API (benchmarks/load.py).

Prints whether every request was answered, how many, the burst's wall time, throughput, latency
p50 / p95 / max, the server's CPU per analysis and its resident memory. Asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
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
from demo.harness import drive_load, free_port, start_app

API_NAME = "/analyze_ui"  # the Analyze button's event (undocumented, callable by clients)
SINGLE_RUNS = 3  # sequential requests before the burst, after one warm-up


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_asset_arguments(parser)
    parser.add_argument("--clients", type=int, default=30, help="clients pressing at once")
    parser.add_argument("--rounds", type=int, default=1, help="requests per client")
    parser.add_argument("--timeout", type=float, default=600, help="seconds the burst may take")
    parser.add_argument(
        "--client-processes", type=int, default=1, help="processes the clients run in"
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    return parser.parse_args(argv)


def page_defaults(url: str) -> list:
    """The Analyze event's inputs after audio and transcript, as the page starts: the values
    of its Whisper, head, direction and map controls (the session state is the client's)."""
    import httpx

    config = httpx.get(f"{url}config", timeout=30).json()
    (event,) = [d for d in config["dependencies"] if d.get("api_name") == API_NAME.strip("/")]
    values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
    types = {c["id"]: c["type"] for c in config["components"]}
    return [values[i] for i in event["inputs"][2:] if types[i] != "state"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(args.checkpoint) / "config.json").is_file():
        print(f"no checkpoint at {args.checkpoint}: pass --checkpoint DIR", file=sys.stderr)
        return 2
    examples = read_examples(Path(args.examples))
    if not examples:
        print(f"no examples.jsonl in {args.examples}: pass --examples DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mgcma-burst-") as folder:
        port = args.port or free_port()
        process, start_s = start_app(
            args.checkpoint, port, Path(folder) / "app.log", bank=args.bank, examples=args.examples
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            defaults = page_defaults(url)
            inputs = [(row["audio"], row["text"], *defaults) for row in examples]
            single = drive_load(url, inputs, 1, 1 + SINGLE_RUNS, args.timeout, api_name=API_NAME)
            cpu_before = cpu_seconds(process.pid)
            burst = drive_load(
                url,
                inputs,
                args.clients,
                args.rounds,
                args.timeout,
                processes=args.client_processes,
                api_name=API_NAME,
            )
            server_cpu_s = cpu_seconds(process.pid) - cpu_before
            rss = server_rss(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(args, argv, start_s, single, burst, server_cpu_s, rss)
    return 0


def report(args, argv, start_s: float, single, burst, server_cpu_s: float, rss: int) -> None:
    total = args.clients * args.rounds
    answered = len(burst.latencies_s)
    single_s = statistics.median(single.latencies_s[1:]) if single.latencies_s[1:] else 0.0
    print(f"command:     {command_line(__file__, argv)}")
    print(f"machine:     {machine()}")
    print(f"checkpoint:  {args.checkpoint}")
    print(f"server start → first page served: {start_s:.1f} s")
    print(
        f"one analysis alone ({API_NAME}, figures included; median of {SINGLE_RUNS} after 1 "
        f"warm-up): {single_s * 1000:.0f} ms"
    )
    verdict = "all answered" if answered == total else "NOT all answered"
    print(
        f"burst:       {args.clients} clients × {args.rounds} at once = {total} requests: "
        f"{verdict} ({answered} ok, {len(burst.errors)} errors, {burst.not_sent} not sent)"
    )
    print(f"wall time:   {burst.elapsed_s:.2f} s (first request sent → last answer received)")
    print(f"throughput:  {burst.throughput:.2f} analyses/s")
    print(
        f"latency:     p50 {burst.percentile_s(50):.2f} s, p95 {burst.percentile_s(95):.2f} s, "
        f"max {max(burst.latencies_s, default=float('nan')):.2f} s"
    )
    if answered:
        print(f"server CPU:  {server_cpu_s / answered * 1000:.0f} ms per analysis in the burst")
    print(f"server RSS:  {rss / 2**20:.0f} MiB after the burst (its process and children)")
    for message, count in collections.Counter(single.errors + burst.errors).most_common(5):
        print(f"  error ×{count}: {message[:300]}")


if __name__ == "__main__":
    sys.exit(main())
