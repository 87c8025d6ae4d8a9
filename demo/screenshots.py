"""Screenshots of every tab and walkthrough step, for a person to look at (issue #14).

    python demo/screenshots.py [--out test-artifacts] [--widths 1366,820] [--checkpoint DIR]

Starts demo/app.py twice on the shipped assets (demo/harness.py, as the tests do): once with its
Whisper, once with a Whisper that cannot be loaded (`--whisper base` with downloads allowed, on
a closed network, or offline where it is not cached). Headless Chromium then saves, at each
window width, full-page PNGs of: an analysis with a typed transcript, one with the transcript
left to Whisper, the Transcribe button, every walkthrough step, Compare and About, and prints
what overlaps or is cut off in each (tests/test_browser.py asserts the same checks). The files
are named `<width>-<server>-<view>.png`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `demo` from a checkout

from demo.harness import ASSETS, CHROMIUM_ARGS, free_port, start_app, upload  # noqa: E402
from demo.texts import STEPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ("prediction-plot", "token-plot", "instance-plot", "distribution-plot")
CLIP = "10-angry-conflict"  # voice and words disagree: every view has something to show
TIMEOUT_MS = 120_000
SETTLED = "!document.querySelector('.pending, .generating')"
DRAWN = """(ids) => ids.every((id) => {
    const plot = document.querySelector('#' + id + ' .js-plotly-plot');
    return plot && plot.querySelector('.main-svg');
})"""


# What overlaps or is cut off in one plotly figure: its title, axis titles, legend, colour bars,
# and the annotations outside its plot areas (subplot titles, captions), each against the
# others and against the figure's own rectangle. Returns a list of plain-words problems.
LAYOUT_PROBLEMS = """(id) => {
    const root = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!root) return [];
    const svg = root.querySelector('.main-svg').getBoundingClientRect();
    const areas = [...root.querySelectorAll('.bglayer rect')].map((r) => r.getBoundingClientRect());
    const inside = (r) => areas.some((a) => {
        const x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
        return x > a.left && x < a.right && y > a.top && y < a.bottom;
    });
    const items = [];
    const add = (selector, kind) => root.querySelectorAll(selector).forEach((node) => {
        const r = node.getBoundingClientRect();
        if (r.width > 0 && r.height > 0) items.push({kind, text: node.textContent.slice(0, 40), r});
    });
    add('.g-gtitle', 'title');
    add('[class^="g-x"][class$="title"], [class^="g-y"][class$="title"]', 'axis title');
    add('.legend', 'legend');
    add('.colorbar', 'colour bar');
    root.querySelectorAll('.annotation').forEach((node) => {
        const r = node.getBoundingClientRect();
        const text = node.textContent.slice(0, 40);
        if (r.width > 0 && !inside(r)) items.push({kind: 'annotation', text, r});
    });
    const problems = [];
    const slack = 1;
    for (const item of items) {
        const r = item.r;
        if (r.left < svg.left - slack || r.right > svg.right + slack ||
            r.top < svg.top - slack || r.bottom > svg.bottom + slack)
            problems.push(`${item.kind} "${item.text}" is cut off`);
    }
    for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
        const a = items[i].r, b = items[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        const [p, q] = [items[i], items[j]];
        if (w > 2 && h > 2) problems.push(`${p.kind} "${p.text}" overlaps ${q.kind} "${q.text}"`);
    }
    return problems;
}"""

# Header cells of a table whose words break across lines ("emo/tio/n").
BROKEN_HEADERS = """(id) => [...document.querySelectorAll('#' + id + ' th')].filter((th) => {
    const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const match of node.textContent.matchAll(/\\S+/g)) {
            const range = document.createRange();
            range.setStart(node, match.index);
            range.setEnd(node, match.index + match[0].length);
            const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            if (lines.size > 1) return true;
        }
    }
    return false;
}).map((th) => th.textContent.trim())"""


def problems(page, plot_ids) -> list[str]:
    """Layout problems of the plots named (and of the neighbours table) on the page now."""
    found = [f"#{i}: {p}" for i in plot_ids for p in page.evaluate(LAYOUT_PROBLEMS, i)]
    return found + [
        f"header breaks mid-word: {h}" for h in page.evaluate(BROKEN_HEADERS, "neighbours-table")
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "test-artifacts"))
    parser.add_argument("--widths", default="1366,820", help="window widths in px")
    parser.add_argument("--checkpoint", default=str(ASSETS / "checkpoints" / "whisper_minilm"))
    parser.add_argument("--bank", default=str(ASSETS / "bank"))
    parser.add_argument("--examples", default=str(ASSETS / "examples"))
    parser.add_argument("--clip", default=CLIP, help="the example analysed on the Analyze tab")
    return parser.parse_args(argv)


def _example(directory: Path, name: str) -> tuple[str, str]:
    for line in (directory / "examples.jsonl").read_text().splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("name") == name:
            return str(directory / row["audio"]), row["text"]
    raise SystemExit(f"no example named {name} in {directory}")


def _settle(page) -> None:
    page.wait_for_function(SETTLED, timeout=TIMEOUT_MS)
    page.wait_for_timeout(800)  # plotly's transitions and Gradio's fades


def _analyze(page, transcript: str) -> None:
    page.get_by_label("Transcript", exact=False).fill(transcript)
    page.click("#analyze-button")
    page.wait_for_function(DRAWN, arg=list(PLOTS), timeout=TIMEOUT_MS)
    _settle(page)


def shoot(page, out: Path, prefix: str, clip: tuple[str, str]) -> list[Path]:
    """Every view of one server at one width; returns the files written."""
    written = []

    def save(view: str, plots=PLOTS) -> None:
        path = out / f"{prefix}-{view}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)
        for problem in problems(page, plots):
            print(f"{path.name}: {problem}")

    page.wait_for_selector("#analyze-button")
    _settle(page)
    save("start")
    upload(page, Path(clip[0]))
    _analyze(page, clip[1])
    save("analyze-typed")
    _analyze(page, "")
    save("analyze-whisper")
    page.get_by_role("button", name="Transcribe").click()
    _settle(page)
    save("transcribe")
    page.get_by_role("tab", name="Walkthrough").click()
    page.wait_for_function(DRAWN, arg=["walkthrough-plot"], timeout=TIMEOUT_MS)
    for index, (title, _) in enumerate(STEPS):
        page.get_by_role("radio", name=title).check()
        _settle(page)
        save(f"walkthrough-{index + 1}", ["walkthrough-plot"])
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Compare", exact=False).click()
    page.wait_for_function(DRAWN, arg=["compare-plot"], timeout=TIMEOUT_MS)
    _settle(page)
    save("compare", ["compare-plot"])
    page.get_by_role("tab", name="About").click()
    _settle(page)
    save("about", [])
    return written


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = _example(Path(args.examples), args.clip)
    widths = [int(w) for w in args.widths.split(",")]
    servers = {"whisper": {}, "nowhisper": {"whisper": "base", "offline": False}}
    written = []
    with tempfile.TemporaryDirectory(prefix="mgcma-shots-") as folder:
        for server, options in servers.items():
            port = free_port()
            log = Path(folder) / f"{server}.log"
            process, _ = start_app(
                args.checkpoint, port, log, bank=args.bank, examples=args.examples, **options
            )
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(
                        executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                        headless=True,
                        args=CHROMIUM_ARGS,
                    )
                    for width in widths:
                        page = browser.new_page(viewport={"width": width, "height": 900})
                        page.set_default_timeout(TIMEOUT_MS)
                        page.goto(f"http://127.0.0.1:{port}/")
                        written += shoot(page, out, f"{width}-{server}", clip)
                        page.close()
                    browser.close()
            finally:
                process.terminate()
                process.wait(timeout=30)
            (out / f"{server}-server.log").write_text((Path(folder) / f"{server}.log").read_text())
    print("\n".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
