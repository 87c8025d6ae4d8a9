"""The app from the outside: served in a subprocess, driven by clients (tests, benchmarks, shots).

tests/ (the served-app, load and browser tests), benchmarks/ and demo/screenshots.py all start
demo/app.py the same way and talk to it the same way; this is that one way. It is not a
benchmark: it times nothing but the start, and asserts nothing. It lives beside the app rather
than under tests/ so that the benchmarks need not import the test suite.

`drive_load` sends requests from many gradio_client clients at once. The clients share one TLS
context: gradio_client opens a fresh httpx client per request, and httpx would otherwise parse
the CA bundle every time (half of a client's CPU, measured with py-spy), which a loopback run
must not charge to the server. The clients can run as threads of several processes, so that on
a machine with many cores their own interpreter lock does not set the pace.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
START_TIMEOUT_S = 180
# Headless Chromium on a closed network: no sandbox (containers), no GPU, nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class AppStartError(RuntimeError):
    """The app exited, or did not serve its page in time; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(
    checkpoint: str | Path,
    port: int,
    log: Path,
    *,
    bank: str | Path = ASSETS / "bank",
    examples: str | Path = ASSETS / "examples",
    whisper: str | None = None,
    offline: bool = True,
    env: dict[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> tuple[subprocess.Popen, float]:
    """demo/app.py on 127.0.0.1:`port`, and the seconds from launch to its first page served.

    Parameters
    ----------
    checkpoint, bank, examples : what the app loads (MGCMA_BANK, MGCMA_EXAMPLES).
    log : the file its output goes to (a file, not a pipe: a chatty server never blocks on it).
    whisper : passed as --whisper (None: the app's default).
    offline : False lets a named Whisper try its download (on a closed network: the app's
        message for an unloadable Whisper).
    env : more environment variables (MGCMA_QUEUE_SIZE, MGCMA_WHISPER, ...).
    """
    environment = {
        **os.environ,
        "MGCMA_BANK": str(bank),
        "MGCMA_EXAMPLES": str(examples),
        "MGCMA_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **(env or {}),
    }
    if not offline:
        for name in ("MGCMA_OFFLINE", "HF_HUB_OFFLINE"):
            environment.pop(name)
    command = [sys.executable, str(ROOT / "demo" / "app.py"), "--checkpoint", str(checkpoint)]
    if whisper is not None:
        command += ["--whisper", whisper]
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=environment, stdout=output, stderr=output
        )
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise AppStartError(f"the app exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                if response.status == 200:
                    return process, time.perf_counter() - started
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AppStartError(f"the app did not serve its page within {timeout_s:.0f} s")


def upload(page, clip: Path) -> None:
    """Upload `clip` into the Analyze tab's audio block of a Playwright page."""
    block = page.locator("div.block", has=page.locator('[data-testid^="waveform-Speech"]')).first
    block.get_by_role("button", name="Upload file").click()  # the microphone is the default
    block.locator("input[type=file]").set_input_files(str(clip))
    block.get_by_role("button", name="Clear").wait_for(state="visible")


# -- many clients at once -------------------------------------------------------------------


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
    inputs: Sequence[Sequence],
    clients: int,
    requests: int,
    timeout_s: float,
    processes: int = 1,
    api_name: str = "/analyze",
) -> LoadResult:
    """`clients` gradio_client clients each calling `api_name` `requests` times, all at once.

    Parameters
    ----------
    url : the app's address (loopback).
    inputs : one request's arguments each, used in turn: an audio path (uploaded with
        handle_file), then the endpoint's other arguments: (clip, transcript) for /analyze.
    clients, requests : how many clients, and requests per client. Every client connects
        first; the clock starts once all have.
    timeout_s : the whole run's time limit; a request still running then counts as an error and
        no new one is sent.
    processes : client processes the clients are spread over (1: threads of this process).
        A gradio_client request costs tens of milliseconds of Python CPU, and threads of one
        process share one interpreter lock: on a machine with many cores, clients in one
        process would measure themselves rather than the server.
    api_name : the endpoint: "/analyze" (the JSON API) or "/analyze_ui" (the Analyze button's
        event, figures included), say.
    """
    deadline = time.monotonic() + timeout_s  # CLOCK_MONOTONIC: the same clock in every process
    inputs = [tuple(arguments) for arguments in inputs]
    processes = max(1, min(processes, clients))
    if processes == 1:
        return _drive_threads(url, inputs, api_name, range(clients), requests, deadline, None)
    context = multiprocessing.get_context("spawn")  # no fork of a process running threads
    start, answers = context.Barrier(processes + 1), context.Queue()
    workers = [
        context.Process(
            target=_client_process,
            args=(answers, url, inputs, api_name, range(i, clients, processes), requests),
            kwargs={"deadline": deadline, "start": start},
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


def _client_process(answers, *args, **kwargs) -> None:
    answers.put(_drive_threads(*args, **kwargs))


def _drive_threads(
    url, inputs, api_name: str, indices, requests: int, deadline: float, start
) -> LoadResult:
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
            audio, *others = inputs[(index + number) % len(inputs)]
            started = time.perf_counter()
            try:
                job = client.submit(handle_file(audio), *others, api_name=api_name)
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
