"""How fast the app feels: server start, then click-on-Analyze → the three views drawn in Chromium.

    python benchmarks/ui.py [--checkpoint DIR] [--runs 10] [--transcribe-runs 5] [--screenshot]

Starts demo/app.py in a subprocess (demo/harness.py, as the tests do), drives a headless
Chromium with Playwright, uploads a ~5-s clip (shipped examples joined, or espeak-ng), types
its transcript, and times each analysis until every figure has been redrawn with new data;
then, with the transcript left empty, the same click with Whisper transcribing first (the app's
default Whisper: the shipped tiny.en). Prints figures only; asserts nothing. `--screenshot`
also saves docs/screenshot-analyze.png (1400×1800).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import (
    ROOT,
    add_asset_arguments,
    command_line,
    machine,
    make_clip,
    percentile,
    read_examples,
)
from demo.harness import CHROMIUM_ARGS, free_port, start_app, upload

RENDER_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1400, "height": 1800}
PLOTS = ("prediction-plot", "token-plot", "instance-plot", "distribution-plot")
VARIATIONS = ["", "really", "today", "again", "now", "then", "still", "indeed", "too", "there"]

# Before a click: remember each figure's plotly div and its data array. Gradio either draws
# into a new div or hands the old one new data, so "redrawn" means either identity changed.
REMEMBER_AND_CLICK = """(ids) => {
    window.__benchBefore = {};
    for (const id of ids) {
        const plot = document.querySelector('#' + id + ' .js-plotly-plot');
        window.__benchBefore[id] = {plot: plot, data: plot ? plot.data : null};
    }
    window.__benchDone = null;
    window.__benchStart = performance.now();
    document.querySelector('#analyze-button').click();
}"""

ALL_REDRAWN = """(ids) => {
    const redrawn = ids.every((id) => {
        const plot = document.querySelector('#' + id + ' .js-plotly-plot');
        const before = window.__benchBefore[id];
        return plot && (plot !== before.plot || plot.data !== before.data) && plot._fullLayout &&
            plot.querySelector('.main-svg') && plot.querySelector(
                'g.hm image, .barlayer path, .scatterlayer path.point, .scatterlayer path.js-line');
    });
    if (redrawn && window.__benchDone === null) window.__benchDone = performance.now();
    return redrawn;
}"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_asset_arguments(parser)
    parser.add_argument("--clip", default="", help="time this clip instead (with --transcript)")
    parser.add_argument("--transcript", default="", help="what is said in --clip")
    parser.add_argument("--runs", type=int, default=10, help="timed analyses")
    parser.add_argument(
        "--transcribe-runs", type=int, default=5, help="timed analyses with Whisper first"
    )
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--screenshot", action="store_true", help="save docs/screenshot-analyze.png"
    )
    return parser.parse_args(argv)


# -- the browser ------------------------------------------------------------------------------


def time_analysis(page, transcript: str) -> float:
    """Milliseconds from the click on Analyze to all four figures redrawn, timed in the page."""
    page.get_by_label("Transcript", exact=False).fill(transcript)
    page.evaluate(REMEMBER_AND_CLICK, list(PLOTS))
    page.wait_for_function(ALL_REDRAWN, arg=list(PLOTS), polling="raf", timeout=RENDER_TIMEOUT_MS)
    return page.evaluate("window.__benchDone - window.__benchStart")


def run_browser(url: str, clip: Path, transcript: str, args, shot: tuple | None) -> dict:
    from playwright.sync_api import sync_playwright

    figures = {}
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        page = context.new_page()
        opened = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("#analyze-button", state="visible")
        figures["page_ready_s"] = time.perf_counter() - opened
        upload(page, clip)
        figures["first_ms"] = time_analysis(page, transcript)  # untimed warm-up of the path
        runs = []
        for run in range(args.runs):
            extra = VARIATIONS[(run + 1) % len(VARIATIONS)] or "truly"
            runs.append(time_analysis(page, f"{transcript} {extra}"))
        figures["runs_ms"] = runs
        transcribed = []
        for run in range(args.transcribe_runs):
            # an untimed typed analysis first: the same clip transcribed twice would draw the
            # same figures, which the page need not redraw
            time_analysis(page, f"{transcript} {VARIATIONS[run % len(VARIATIONS)]}")
            transcribed.append(time_analysis(page, ""))  # empty: Whisper transcribes first
        figures["transcribe_runs_ms"] = transcribed
        if shot is not None:
            upload(page, Path(shot[0]))
            time_analysis(page, shot[1])
            # the figures are drawn; let Gradio finish fading its progress overlays out too
            page.wait_for_function("!document.querySelector('.pending, .generating')")
            page.wait_for_timeout(1000)
            page.evaluate("window.scrollTo(0, 0)")
            target = ROOT / "docs" / "screenshot-analyze.png"
            target.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(target))
            figures["screenshot"] = str(target.relative_to(ROOT))
        context.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (Path(args.checkpoint) / "config.json").is_file():
        print(
            f"no checkpoint at {args.checkpoint}: train one (python -m train fit "
            "train/configs/whisper_minilm.yaml) or pass --checkpoint DIR",
            file=sys.stderr,
        )
        return 2
    if shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists():
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    examples = read_examples(Path(args.examples))
    with tempfile.TemporaryDirectory(prefix="mgcma-bench-") as folder:
        if args.clip:
            clip, transcript = Path(args.clip), args.transcript
        else:
            clip, transcript = make_clip(examples, Path(folder))
        clip_s = sf.info(clip).duration
        port = args.port or free_port()
        process, start_s = start_app(
            args.checkpoint, port, Path(folder) / "app.log", bank=args.bank, examples=args.examples
        )
        shot = None
        if args.screenshot:
            shot = (examples[0]["audio"], examples[0]["text"]) if examples else (clip, transcript)
        try:
            figures = run_browser(f"http://127.0.0.1:{port}/", clip, transcript, args, shot)
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(args, argv, f"{clip_s:.1f} s, {len(transcript.split())} words", start_s, figures)
    return 0


def report(args, argv, clip: str, start_s: float, figures: dict) -> None:
    runs = figures["runs_ms"]
    print(f"command:     {command_line(__file__, argv)}")
    print(f"machine:     {machine()}")
    print(f"checkpoint:  {args.checkpoint}")
    print(f"clip:        {clip}")
    print(f"server start → first page served: {start_s:.1f} s")
    print(f"page load → Analyze button shown: {figures['page_ready_s']:.2f} s")
    print(f"first analysis (not counted):     {figures['first_ms']:.0f} ms")
    print(
        f"click on Analyze → 4 figures drawn, {len(runs)} runs: "
        f"median {statistics.median(runs):.0f} ms, p90 {percentile(runs, 90):.0f} ms "
        f"(min {min(runs):.0f}, max {max(runs):.0f})"
    )
    transcribed = figures.get("transcribe_runs_ms")
    if transcribed:
        print(
            f"the same, transcript left empty (Whisper first), {len(transcribed)} runs: "
            f"median {statistics.median(transcribed):.0f} ms, p90 "
            f"{percentile(transcribed, 90):.0f} ms"
        )
    if "screenshot" in figures:
        print(f"screenshot:  {figures['screenshot']}")


if __name__ == "__main__":
    sys.exit(main())
