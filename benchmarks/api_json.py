"""The `/analyze` answer, per request: the app's `gr.api` endpoint against other ways to send it.

    python benchmarks/api_json.py [--checkpoint DIR] [--requests 300] [--http-requests 100]

One process, one Blocks, endpoints that all return the same analysis (the shipped default's, of
a ≈ 5-s clip of joined examples, computed once: the model's time is in none of the figures):
`api_plain`, as demo/app.py builds it (a typed function for gr.api returning `PlainJSON`);
`api_dict`, the same returning the bare dict (which Gradio walks, looking for files); and
`json`, the component shape: hidden gr.Audio + gr.Textbox inputs and a gr.JSON output.
Interleaved, so drift on a shared machine hits all alike:

1. Gradio's own work per request, no HTTP: `Blocks.process_api` (the upload's FileData in and
   moved to the cache, the function, the output) and the queue's final message as the orjson
   bytes it sends; the process's CPU seconds (`time.process_time`, all threads) and wall time.
2. Over loopback HTTP: the Blocks launched in this process, gradio_client requests alternating
   between the endpoints; wall latency and the CPU of the process (server and client together).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no outbound calls
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import gradio as gr  # noqa: E402
import orjson  # noqa: E402
from gradio.server_messages import ProcessCompletedMessage  # noqa: E402
from gradio.state_holder import SessionState  # noqa: E402

from benchmarks.common import (  # noqa: E402
    add_asset_arguments,
    command_line,
    machine,
    make_clip,
    read_examples,
)
from demo.callbacks import PlainJSON, uploaded_path  # noqa: E402
from demo.harness import free_port  # noqa: E402

# api name → the output component of a component-shaped endpoint (gr.api has none)
COMPONENT_OUTPUTS: dict[str, Callable[..., gr.Component]] = {"json": gr.JSON}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_asset_arguments(parser)
    parser.add_argument("--requests", type=int, default=300, help="process_api calls each")
    parser.add_argument("--http-requests", type=int, default=100, help="0 skips part 2")
    return parser.parse_args(argv)


def real_analysis(args, folder: Path) -> tuple[Path, str, dict]:
    """(clip, transcript, the analysis as the API sends it) from the shipped default."""
    import mgcma
    from mgcma.analysis import Analyzer
    from mgcma.audio import load_audio
    from mgcma.bank import ReferenceBank

    clip, text = make_clip(read_examples(Path(args.examples)), folder)
    model = mgcma.load_model(args.checkpoint)
    analyzer = Analyzer(model, ReferenceBank.load(args.bank) if args.bank else None)
    return clip, text, analyzer.analyze(load_audio(str(clip)), text=text).to_dict()


def build(answer: dict, outputs: dict[str, Callable[..., gr.Component]]) -> gr.Blocks:
    """Endpoints that return `answer`: api_plain, api_dict and one per entry of `outputs`."""

    def plain(audio: gr.FileData | None, transcript: str = "") -> PlainJSON:
        uploaded_path(audio)  # as demo/callbacks.py does
        return PlainJSON(answer)

    def bare(audio: gr.FileData | None, transcript: str = "") -> dict:
        uploaded_path(audio)
        return answer

    def through_components(audio, transcript):
        return answer

    with gr.Blocks() as blocks:
        gr.api(plain, api_name="api_plain")
        gr.api(bare, api_name="api_dict")
        for name, output in outputs.items():
            audio, text = gr.Audio(type="filepath", visible=False), gr.Textbox(visible=False)
            text.submit(through_components, [audio, text], output(visible=False), api_name=name)
    return blocks


def endpoint(blocks: gr.Blocks, name: str):
    (fn,) = [f for f in blocks.fns.values() if f.api_name == name]
    return fn


async def serve_once(blocks: gr.Blocks, fn, inputs: list) -> bytes:
    """One request's work in Gradio, up to the bytes of its final queue message."""
    output = await blocks.process_api(fn, list(inputs), state=SessionState(blocks))
    message = ProcessCompletedMessage(output=output, success=True)
    return orjson.dumps(message.model_dump(), default=str)


def time_process_api(blocks, names: list[str], clip: Path, text: str, runs: int) -> dict:
    """Per endpoint: CPU and wall seconds of each call, and the answer's bytes as sent."""
    upload = {"path": str(clip), "orig_name": clip.name, "meta": {"_type": "gradio.FileData"}}
    fns = {name: endpoint(blocks, name) for name in names}
    times = {name: {"cpu": [], "wall": [], "bytes": b""} for name in names}

    async def run() -> None:
        for name in names:  # warm-up
            await serve_once(blocks, fns[name], [upload, text])
        for _ in range(runs):
            for name in names:
                cpu, wall = time.process_time(), time.perf_counter()
                sent = await serve_once(blocks, fns[name], [upload, text])
                times[name]["cpu"].append(time.process_time() - cpu)
                times[name]["wall"].append(time.perf_counter() - wall)
                times[name]["bytes"] = sent

    asyncio.run(run())
    for name in names:  # the answer itself, past the message's timings
        times[name]["bytes"] = orjson.dumps(orjson.loads(times[name]["bytes"])["output"]["data"])
    return times


def time_http(blocks, names: list[str], clip: Path, text: str, runs: int) -> dict:
    """Per endpoint: wall and process-CPU seconds of each gradio_client request."""
    from gradio_client import Client, handle_file

    port = free_port()
    blocks.queue(default_concurrency_limit=1)
    blocks.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    times = {name: {"cpu": [], "wall": []} for name in names}
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        for name in names:  # warm-up
            client.predict(handle_file(str(clip)), text, api_name=f"/{name}")
        for _ in range(runs):
            for name in names:
                cpu, wall = time.process_time(), time.perf_counter()
                client.predict(handle_file(str(clip)), text, api_name=f"/{name}")
                times[name]["cpu"].append(time.process_time() - cpu)
                times[name]["wall"].append(time.perf_counter() - wall)
    finally:
        blocks.close()
    return times


def numbers_in(value) -> int:
    if isinstance(value, dict):
        return sum(numbers_in(v) for v in value.values())
    if isinstance(value, list):
        return sum(numbers_in(v) for v in value)
    return int(isinstance(value, float | int) and not isinstance(value, bool))


def ms(values: list[float]) -> str:
    """Median (and mean) in milliseconds."""
    median, mean = statistics.median(values) * 1000, statistics.mean(values) * 1000
    return f"median {median:6.2f} (mean {mean:6.2f}) ms"


def main(argv: list[str] | None = None, outputs: dict | None = None) -> int:
    """`outputs`: component-shaped endpoints to compare (default COMPONENT_OUTPUTS)."""
    args = parse_args(argv)
    outputs = COMPONENT_OUTPUTS if outputs is None else outputs
    names = ["api_plain", "api_dict", *outputs]
    with tempfile.TemporaryDirectory(prefix="mgcma-api-json-") as folder:
        clip, text, answer = real_analysis(args, Path(folder))
        blocks = build(answer, outputs)
        served = time_process_api(blocks, names, clip, text, args.requests)
        http = {}
        if args.http_requests:
            http = time_http(blocks, names, clip, text, args.http_requests)
    print(f"command: {command_line(__file__, argv)}")
    print(f"machine: {machine()}; gradio {gr.__version__}")
    print(
        f"answer:  the analysis of a {len(text.split())}-word clip: {numbers_in(answer):,} "
        f"numbers, {len(orjson.dumps(answer)):,} bytes of JSON"
    )
    print(f"\n1. Blocks.process_api + the message's bytes, {args.requests} calls each:")
    for name in names:
        same = served[name]["bytes"] == served["api_plain"]["bytes"]
        print(
            f"  {name:<10} CPU {ms(served[name]['cpu'])}, wall {ms(served[name]['wall'])}; "
            f"answer {'the same bytes as' if same else 'DIFFERS from'} api_plain's"
        )
    plain_cpu = statistics.median(served["api_plain"]["cpu"])
    for name in names[1:]:
        extra = statistics.median(served[name]["cpu"]) - plain_cpu
        print(f"  {name} − api_plain: {extra * 1000:+.2f} ms of CPU per request (medians)")
    if http:
        print(f"\n2. gradio_client over loopback, {args.http_requests} requests each:")
        for name in names:
            wall, cpu = ms(http[name]["wall"]), ms(http[name]["cpu"])
            print(f"  {name:<10} wall {wall}, process CPU {cpu}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
