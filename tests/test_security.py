"""The served app exposes only its own files, calls no one, and refuses oversized uploads.

The no-unpickling rule is checked in tests/test_style.py.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # demo/app.py MAX_UPLOAD, in the larger reading of "20mb"
REFUSED = {400, 403, 404, 405}


def _port(app_url: str) -> int:
    return urlsplit(app_url).port


def _get(app_url: str, raw_path: str) -> tuple[int, bytes]:
    """GET a path exactly as written: http.client, unlike httpx, does not collapse `../`."""
    connection = http.client.HTTPConnection("127.0.0.1", _port(app_url), timeout=30)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _server(app_url: str):
    """The app's process: the child of this test run that listens on app_url's port."""
    import psutil

    port = str(_port(app_url))
    for child in psutil.Process().children(recursive=True):
        command = child.cmdline()
        if "--port" in command and command[command.index("--port") + 1] == port:
            return child
    pytest.fail(f"no app process serving port {port} among this run's children")


def _clip(app_assets) -> Path:
    row = json.loads((app_assets / "examples" / "examples.jsonl").read_text().splitlines()[0])
    return app_assets / "examples" / row["audio"]


def _upload(app_url: str, path: Path, timeout: float = 60):
    import httpx

    with path.open("rb") as stream:
        return httpx.post(
            f"{app_url}gradio_api/upload",
            files=[("files", (path.name, stream, "application/octet-stream"))],
            timeout=timeout,
        )


def test_only_the_apps_own_files_are_served(app_url, app_assets):
    weights = app_assets / "checkpoints" / "compact" / "model.safetensors"
    secrets = {
        "/etc/passwd": b"root:",
        str(ROOT / "pyproject.toml"): b"[tool.ruff]",
        str(weights): weights.read_bytes()[:64],
        str(ROOT / "demo" / "app.py"): b"def build(",
    }
    paths = [
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=/proc/self/environ",
        "/file=/etc/passwd",
        "/gradio_api/file=../../pyproject.toml",
        "/gradio_api/file=../../../../../../../../etc/passwd",
        "/gradio_api/file=%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/gradio_api/file=%2fetc%2fpasswd",
        "/gradio_api/file=pyproject.toml",
        "/gradio_api/file=demo/app.py",
        f"/gradio_api/file={ROOT / 'pyproject.toml'}",
        f"/gradio_api/file={quote(str(ROOT / 'demo' / 'app.py'), safe='')}",
        f"/gradio_api/file={weights}",
        f"/gradio_api/file={ROOT / 'assets' / 'checkpoints' / 'compact' / 'model.safetensors'}",
        "/assets/../../pyproject.toml",
        "/assets/..%2f..%2fpyproject.toml",
        "/static/..%2f..%2f..%2fpyproject.toml",
        "/gradio_api/static/..%2f..%2fpyproject.toml",
        f"/gradio_api/file=http://127.0.0.1:{_port(app_url)}/config",  # no proxying to loopback
    ]
    for path in paths:
        status, body = _get(app_url, path)
        assert status in REFUSED, f"{path} → {status}: {body[:200]!r}"
        for marker in secrets.values():
            assert marker not in body, f"{path} leaked a file"
        assert b"PATH=" not in body and b"MGCMA_" not in body, f"{path} leaked the environment"

    clip = _clip(app_assets)
    uploaded = _upload(app_url, clip)
    assert uploaded.status_code == 200, uploaded.text
    (served_path,) = uploaded.json()
    status, body = _get(app_url, f"/gradio_api/file={quote(served_path)}")
    assert status == 200 and body == clip.read_bytes()


def test_the_app_opens_no_outbound_connection(app_url, app_assets):
    import psutil
    from gradio_client import Client, handle_file

    server = _server(app_url)
    assert server.environ().get("GRADIO_ANALYTICS_ENABLED") == "False"
    seen, stop = [], threading.Event()

    def watch() -> None:  # sample during the requests too: a short-lived call would be missed
        while not stop.is_set():
            for process in [server, *server.children(recursive=True)]:
                try:
                    seen.extend(process.net_connections(kind="inet"))
                except psutil.NoSuchProcess:
                    pass
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        client = Client(app_url, verbose=False)
        text = json.loads((app_assets / "examples" / "examples.jsonl").read_text().split("\n")[0])
        for _ in range(3):
            client.predict(handle_file(str(_clip(app_assets))), text["text"], api_name="/analyze")
    finally:
        stop.set()
        watcher.join()
    assert seen, "psutil saw none of the server's sockets"
    outbound = {
        c.raddr for c in seen if c.raddr and not ipaddress.ip_address(c.raddr.ip).is_loopback
    }
    assert not outbound, f"the server talked to {outbound}"
    listening = {c.laddr.ip for c in seen if not c.raddr}
    assert listening <= {"127.0.0.1"}, f"the server listens beyond loopback: {listening}"


def test_an_upload_over_the_size_limit_is_refused(app_url, tmp_path):
    big = tmp_path / "huge.wav"
    with big.open("wb") as sparse:  # a hole, not 25 MB written to disk
        sparse.truncate(MAX_UPLOAD_BYTES + 5 * 1024 * 1024)
    response = _upload(app_url, big, timeout=120)
    assert response.status_code == 413, (response.status_code, response.text[:300])
    assert "maximum allowed size" in response.text
    small = tmp_path / "small.wav"
    small.write_bytes(b"\0" * 1024)
    assert _upload(app_url, small).status_code == 200  # the server still takes uploads


def _raw_call(app_url: str, api_name: str, data: list) -> dict:
    """The queue's final message for one call sent as raw JSON. gradio_client would upload a
    path it can read itself (the client runs on this machine), which is not the attack."""
    import uuid

    import httpx

    config = httpx.get(f"{app_url}config", timeout=30).json()
    (fn_index,) = [d["id"] for d in config["dependencies"] if d.get("api_name") == api_name]
    session = uuid.uuid4().hex
    joined = httpx.post(
        f"{app_url}gradio_api/queue/join",
        json={"data": data, "fn_index": fn_index, "session_hash": session, "trigger_id": None},
        timeout=30,
    )
    assert joined.status_code == 200, joined.text
    with httpx.stream(
        "GET", f"{app_url}gradio_api/queue/data", params={"session_hash": session}, timeout=120
    ) as events:
        for line in events.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return message
    pytest.fail(f"/{api_name} never completed")


def test_the_api_reads_only_files_the_client_uploaded(app_url, app_assets):
    """A path on the server, bare or dressed as an upload, is refused: no client can have the
    app read a file of the server's own (here a real clip, which would analyse fine)."""
    from gradio_client import Client, handle_file

    server_file = str(_clip(app_assets))
    dressed = {"path": server_file, "meta": {"_type": "gradio.FileData"}}
    for api_name, extra in (("analyze", ["hello there"]), ("transcribe", [])):
        for audio in (server_file, dressed):
            answer = _raw_call(app_url, api_name, [audio, *extra])
            assert answer["success"] is False, (api_name, audio, answer)
            assert "label" not in json.dumps(answer) and "Traceback" not in json.dumps(answer)
        bare = _raw_call(app_url, api_name, [server_file, *extra])
        assert "handle_file" in bare["output"]["error"]  # says how to send a file
    client = Client(app_url, verbose=False)
    uploaded = client.predict(handle_file(server_file), "hello there", api_name="/analyze")
    assert uploaded["transcript"] == "hello there"  # the same file, uploaded, is analysed
