"""The served app under concurrent clients, and when its queue overflows: errors, never a crash."""

from __future__ import annotations

import json

import pytest

from conftest import free_port, start_app
from demo.harness import drive_load


def _inputs(app_assets) -> list[tuple[str, str]]:
    folder = app_assets / "examples"
    rows = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    return [(str(folder / row["audio"]), row["text"]) for row in rows]


def test_eight_clients_at_once_all_get_their_analysis(app_url, app_assets):
    result = drive_load(app_url, _inputs(app_assets), clients=8, requests=5, timeout_s=300)
    assert result.errors == []
    assert len(result.latencies_s) == 40 and result.not_sent == 0


def test_clients_spread_over_processes_are_all_counted(app_url, app_assets):
    result = drive_load(
        app_url, _inputs(app_assets), clients=4, requests=3, timeout_s=300, processes=2
    )
    assert result.errors == []
    assert len(result.latencies_s) == 12 and result.not_sent == 0
    assert result.client_cpu_s > 0 and result.elapsed_s > 0


def test_a_full_queue_says_busy_and_the_server_keeps_answering(app_assets):
    from gradio_client import Client, handle_file

    port = free_port()
    process = start_app(app_assets, port, MGCMA_QUEUE_SIZE="1", MGCMA_CONCURRENCY="1")
    url = f"http://127.0.0.1:{port}/"
    inputs = _inputs(app_assets)
    try:
        flood = drive_load(url, inputs, clients=16, requests=3, timeout_s=300)
        assert flood.errors, "16 clients against a queue of 1 should overflow it"
        assert all("Queue is full! Please try again." in e for e in flood.errors), flood.errors
        assert flood.latencies_s, "the requests that got in are answered"
        assert process.poll() is None
        audio, text = inputs[0]
        answer = Client(url, verbose=False).predict(handle_file(audio), text, api_name="/analyze")
        assert sum(answer["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        log = process.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        process.terminate()
        process.wait(timeout=30)
