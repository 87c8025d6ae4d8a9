"""The app in a real headless Chromium: upload, type, click, and look at what is drawn.

Playwright drives the Debian chromium (never a downloaded browser). The server is the session's
`app_url` (tests/conftest.py): a tiny checkpoint, its examples and bank, served for real.
Screenshots go to test-artifacts/ (gitignored) for a person to look at after a CI run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, require_tool
from demo.harness import CHROMIUM_ARGS  # the flags for a closed network, one place

ARTIFACTS = ROOT / "test-artifacts"
ANALYSIS_PLOTS = ("prediction-plot", "token-plot", "instance-plot", "distribution-plot")
RENDER_TIMEOUT_MS = 60_000

# Marks drawn by plotly: heatmap images, bars, scatter markers and lines. A plot that only has
# its axes (an empty figure) has none of them.
COUNT_MARKS = """(id) => {
    const root = document.getElementById(id);
    const plot = root && root.querySelector('.js-plotly-plot');
    if (!plot) return {svg: 0, marks: 0};
    const marks = plot.querySelectorAll(
        'g.hm image, .barlayer path, .scatterlayer path.point, .scatterlayer path.js-line'
    ).length;
    return {svg: plot.querySelectorAll('.main-svg').length, marks: marks};
}"""

ALL_DRAWN = """(ids) => ids.every((id) => {
    const plot = document.querySelector('#' + id + ' .js-plotly-plot');
    return plot && plot.querySelector('.main-svg') && plot.querySelector(
        'g.hm image, .barlayer path, .scatterlayer path.point, .scatterlayer path.js-line');
})"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One Chromium for the module, with a fresh profile directory."""
    executable = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=shutil.which("chromium") or executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1800},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    page.goto(app_url)
    page.wait_for_selector("#analyze-button")
    yield page
    page.close()


def _examples(app_assets) -> list[tuple[str, str]]:
    index = app_assets / "examples" / "examples.jsonl"
    rows = [json.loads(line) for line in index.read_text().splitlines() if line.strip()]
    return [(str(app_assets / "examples" / row["audio"]), row["text"]) for row in rows]


def _audio_block(page):
    """The Analyze tab's Audio block (its test id carries the component's label)."""
    return page.locator("div.block", has=page.locator('[data-testid^="waveform-Speech"]')).first


def _upload(page, path: str) -> None:
    block = _audio_block(page)
    # the microphone is the first source, so the file input appears once "Upload file" is chosen
    block.get_by_role("button", name="Upload file").click()
    block.locator("input[type=file]").set_input_files(path)
    # uploaded: the block now offers to clear it
    block.get_by_role("button", name="Clear").wait_for(state="visible")


def _analyze(page, audio: str, transcript: str) -> None:
    _upload(page, audio)
    page.get_by_label("Transcript", exact=False).fill(transcript)
    page.click("#analyze-button")


def _error_toasts(page):
    return page.locator('[data-testid="toast-body"].error')


def _assert_drawn(page, plot_id: str) -> None:
    counts = page.evaluate(COUNT_MARKS, plot_id)
    assert counts["svg"] > 0, f"#{plot_id} has no plotly SVG"
    assert counts["marks"] > 0, f"#{plot_id} draws nothing: {counts}"


def test_analysis_draws_the_three_views(page, app_assets):
    audio, text = _examples(app_assets)[0]
    _analyze(page, audio, text)
    page.wait_for_function(ALL_DRAWN, arg=list(ANALYSIS_PLOTS), timeout=RENDER_TIMEOUT_MS)
    for plot_id in ANALYSIS_PLOTS:
        _assert_drawn(page, plot_id)
    assert page.locator("#token-plot g.hm image").count() > 0  # the attention heatmap
    assert page.locator("#instance-plot .scatterlayer path.point").count() > 0  # the bank
    assert "Prediction:" in page.locator("#message").inner_text()
    assert _error_toasts(page).count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "analyze.png"), full_page=True)


def test_walkthrough_first_step_shows_two_views(page):
    page.get_by_role("tab", name="Walkthrough").click()
    page.wait_for_function(ALL_DRAWN, arg=["walkthrough-plot"], timeout=RENDER_TIMEOUT_MS)
    _assert_drawn(page, "walkthrough-plot")
    assert page.locator("#walkthrough-plot g.hm image").count() > 0  # the spectrogram
    assert "Two views" in page.locator("#walkthrough-plot .gtitle").text_content()
    # the step's prose (the Markdown shows the body; its title is the selected Step radio)
    text = page.locator('#walkthrough-text [data-testid="markdown"]')
    assert "reaches the model twice" in text.inner_text()
    assert "Two views" in text.inner_text()  # the step title heads its explanation
    assert page.get_by_role("radio", name="Two views", exact=False).is_checked()
    assert _error_toasts(page).count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "walkthrough.png"), full_page=True)


def test_bad_input_shows_a_message_and_the_page_keeps_working(page, app_assets, tmp_path):
    page.click("#analyze-button")  # nothing uploaded yet
    toast = _error_toasts(page).filter(has_text="No audio")
    toast.first.wait_for(state="visible")

    bogus = tmp_path / "shopping-list.wav"
    bogus.write_text("this is a shopping list, not audio\n" * 20)
    _analyze(page, str(bogus), "hello there")
    _error_toasts(page).filter(has_text="could not decode").first.wait_for(state="visible")

    _audio_block(page).get_by_role("button", name="Clear").first.click()
    audio, text = _examples(app_assets)[1]
    _analyze(page, audio, text)
    page.wait_for_function(ALL_DRAWN, arg=list(ANALYSIS_PLOTS), timeout=RENDER_TIMEOUT_MS)
    for plot_id in ANALYSIS_PLOTS:
        _assert_drawn(page, plot_id)
    assert "Prediction:" in page.locator("#message").inner_text()


def _settle(page) -> None:
    page.wait_for_function("!document.querySelector('.pending, .generating')")
    page.wait_for_timeout(300)  # plotly's relayout after the last data arrived


def test_without_whisper_the_voice_is_analysed_and_the_reason_stands_beside_it(
    page, app_assets, app_url
):
    """The session's server cannot load its Whisper (offline, not cached)."""
    audio, _ = _examples(app_assets)[0]
    _analyze(page, audio, "")  # an empty transcript: Whisper is asked first, and fails
    drawn = [plot for plot in ANALYSIS_PLOTS if plot != "token-plot"]  # no words: a note there
    page.wait_for_function(ALL_DRAWN, arg=drawn, timeout=RENDER_TIMEOUT_MS)
    _settle(page)
    message = page.locator("#message").inner_text()
    assert "Whisper is not available here" in message and "Prediction:" in message
    assert "&lt;" not in message and "&#x27;" not in message
    assert page.get_by_text("Error", exact=True).count() == 0  # no panel badge, no toast
    assert "No words to align" in page.locator("#token-plot").inner_text()
    header = page.locator("#whisper-status").inner_text()
    assert "could not be loaded here" in header and "will be downloaded" not in header
    port = app_url.rstrip("/").rsplit(":", 1)[1]
    assert "Whisper tiny could not transcribe" in (app_assets / f"app-{port}.log").read_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "analyze-without-whisper.png"), full_page=True)


@pytest.mark.parametrize("width", [1366, 820])
def test_nothing_overlaps_or_is_cut_off(page, app_assets, width):
    """Every figure's titles, legend, colour bars and captions, on every tab and step."""
    from demo.screenshots import problems
    from demo.texts import STEPS

    page.set_viewport_size({"width": width, "height": 900})
    ARTIFACTS.mkdir(exist_ok=True)
    audio, text = _examples(app_assets)[0]
    _analyze(page, audio, text)
    page.wait_for_function(ALL_DRAWN, arg=list(ANALYSIS_PLOTS), timeout=RENDER_TIMEOUT_MS)
    _settle(page)
    page.screenshot(path=str(ARTIFACTS / f"layout-{width}-analyze.png"), full_page=True)
    found = problems(page, ANALYSIS_PLOTS)
    page.get_by_role("tab", name="Walkthrough").click()
    for index, (title, _) in enumerate(STEPS):
        page.get_by_role("radio", name=title).check()
        page.locator("#walkthrough-text").filter(has_text=title).wait_for()
        page.wait_for_function(ALL_DRAWN, arg=["walkthrough-plot"], timeout=RENDER_TIMEOUT_MS)
        _settle(page)
        page.screenshot(path=str(ARTIFACTS / f"layout-{width}-step-{index + 1}.png"))
        found += [f"step {index + 1}: {p}" for p in problems(page, ["walkthrough-plot"])]
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Compare the Analyze tab's input").click()
    page.wait_for_function(ALL_DRAWN, arg=["compare-plot"], timeout=RENDER_TIMEOUT_MS)
    _settle(page)
    found += problems(page, ["compare-plot"])
    said = page.locator("#compare-input").inner_text()
    assert Path(audio).name in said and text in said and "True label:" in said
    assert not found, "\n".join(found)
