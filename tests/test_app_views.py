"""The app's views in-process: every walkthrough step, compare, both maps, downloads."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from colour_science import hue, lightness, scale_ends

from demo.callbacks import Callbacks, head_choices
from demo.downloads import write_html, write_json
from demo.plots import MODALITY_COLORS, VARIANT_NAMES
from demo.views import MAP_SPACES
from demo.walkthrough import TITLES, Walkthrough, own_words_first

THIS_CLIP = "(this very clip: it is in the bank)"


def test_every_walkthrough_step_draws_its_figure(explorer):
    with gr.Blocks():
        walkthrough = Walkthrough(explorer)
    name = walkthrough.example.value
    assert name in walkthrough.examples
    for step in TITLES:
        text, audio, transcript, figure = walkthrough.show(name, step)
        assert text.startswith(f"### {step}")
        assert audio.endswith(".wav") and "**Transcript:**" in transcript
        assert figure is not None and len(figure.data) > 0, step
    # step 3: the full model's speech × text similarities beside the no-instance checkpoint's
    similarities = walkthrough.show(name, TITLES[2])[3]
    heatmaps = [trace for trace in similarities.data if trace.type == "heatmap"]
    count = min(len(walkthrough.examples), 12)
    assert len(heatmaps) == 2 and all(len(h.z) == count for h in heatmaps)


def test_compare_runs_the_input_through_each_shipped_checkpoint(explorer):
    example = explorer.examples[0]
    rows = explorer.compare(example.audio, example.text)
    assert [row["variant"] for row in rows] == ["full", "no_instance"]
    for row in rows:
        assert sum(row[e] for e in explorer.model.emotions) == pytest.approx(1.0, abs=1e-5)
    described, figure, table = Callbacks(explorer).compare(example.audio, example.text)
    assert len(figure.data) == len(explorer.model.emotions)
    # it says what it ran: the clip, the transcript, and an example's true label
    assert f"`{Path(example.audio).name}`" in described and f"“{example.text}”" in described
    assert f"**True label:** {example.label} (the prepared example {example.name})" in described
    # the table says what the chart says: the chart's checkpoint names, probabilities in %
    names = [VARIANT_NAMES[row["variant"]] for row in rows]
    assert [line[0] for line in table.value["data"]] == names == list(figure.data[0].x)
    assert table.value["headers"][2:] == [f"{e} %" for e in explorer.model.emotions]
    for line, row in zip(table.value["data"], rows, strict=True):
        assert line[1] == row["label"]
        assert line[2:] == pytest.approx([100 * row[e] for e in explorer.model.emotions], abs=0.05)


def _asked_twice(*args, **kwargs):
    raise AssertionError("the bank was asked again for what the request already has")


def test_both_maps_and_the_downloads(explorer, tmp_path, monkeypatch):
    example = explorer.examples[1]
    analysis, clip = explorer.analyze(example.audio, example.text)
    assert analysis.word_times is not None  # an example's true timings are found by its name
    # the Analyzer's one search filled the neighbours; the views search and project nothing
    for name in ("search", "nearest", "place", "projected_means"):
        monkeypatch.setattr(explorer.bank, name, _asked_twice)
    assert explorer.views.distribution_figure(analysis) is not None
    for space in MAP_SPACES:
        figure, rows = explorer.views.instance_view(analysis, space)
        assert figure is not None and rows and len(rows[0]) == 4
        # the example is one of the bank's utterances: its nearest neighbour is itself, said so
        assert rows[0][2] == 0 and rows[0][0] == f"{example.text} {THIS_CLIP}"
        assert [row[0].endswith(THIS_CLIP) for row in rows] == [row[2] == 0 for row in rows]
        assert sum(row[2] == 0 for row in rows) == 1
    document = json.loads(open(write_json(analysis)).read())
    assert document["label"] == analysis.label
    page = open(write_html(explorer.views.figures(analysis, clip))).read()
    assert page.count("plotly.js") >= 1 and page.count('class="plotly-graph-div"') == 4


def test_compare_names_an_unknown_clip_and_a_missing_transcript(explorer, tmp_path):
    own = tmp_path / "my-recording.wav"
    shutil.copy(explorer.examples[0].audio, own)
    described = Callbacks(explorer).compare(str(own), "")[0]
    assert "`my-recording.wav`" in described and "unknown (not a prepared example)" in described
    assert "**Transcript:** none" in described


def test_redrawing_tokens_for_a_head_and_direction(explorer):
    calls = Callbacks(explorer)
    example = explorer.examples[0]
    outputs = calls.analyze(
        example.audio, example.text, "tiny", "mean", "text→speech", MAP_SPACES[0], None
    )
    state = outputs[7]
    analysis = state["analysis"]
    heads = explorer.model.config.alignment.heads
    assert heads >= 2
    words_by_frames = {  # (H, W, T_s) in each direction, as the heatmap draws it
        "text→speech": analysis.attention_text_to_speech,
        "speech→text": analysis.attention_speech_to_text.transpose(0, 2, 1),
    }
    drawn = {}
    for direction, attention in words_by_frames.items():
        for choice in head_choices(heads):
            figure = calls.redraw_tokens(state, choice, direction)
            heatmap = next(t for t in figure.data if t.name == "attention")
            # the values are the chosen head's (or the heads' mean), in the chosen direction
            expected = attention.mean(0) if choice == "mean" else attention[int(choice) - 1]
            assert np.allclose(heatmap.z, expected), (direction, choice)
            # and the title names that head and that direction
            title = figure.layout.title.text
            which = f"head {choice} of {heads}" if choice != "mean" else f"mean of {heads} heads"
            assert title.startswith(f"{direction.replace('→', ' → ').capitalize()} attention")
            assert which in title
            drawn[direction, choice] = np.asarray(heatmap.z, dtype=float)
    # different heads draw different maps: a redraw that ignored the head (or the direction)
    # would draw one map for all of them and fail here
    for direction in words_by_frames:
        maps = [drawn[direction, choice] for choice in head_choices(heads)]
        for i in range(len(maps)):
            for j in range(i + 1, len(maps)):
                assert np.abs(maps[i] - maps[j]).max() > 1e-3, (direction, i, j)
    assert np.abs(drawn["text→speech", "1"] - drawn["speech→text", "1"]).max() > 1e-3
    # one time axis: the spectrogram strip and the heatmap both span the clip
    clip = state["clip"]
    assert figure.layout.xaxis.matches == "x2"
    assert list(figure.layout.xaxis2.range) == pytest.approx([0.0, clip.seconds])


def _percent(text: str, name: str) -> str:
    return re.search(rf"{name} (\d+)%", text).group(1)


def test_every_walkthrough_text_says_what_its_figure_shows(explorer):
    with gr.Blocks():
        walkthrough = Walkthrough(explorer)
    name = walkthrough.example.value
    shown = {step: walkthrough.show(name, step) for step in TITLES}
    texts = {step: " ".join(shown[step][0].split()) for step in TITLES}
    figures = {step: shown[step][3] for step in TITLES}

    # 1: the grey spectrogram is darker where it is louder, and the text says so
    spectrogram = next(t for t in figures[TITLES[0]].data if t.name == "spectrogram")
    low, high = scale_ends(spectrogram.colorscale)
    assert lightness(high) < lightness(low)
    assert "the louder, the darker" in texts[TITLES[0]] and "bright" not in texts[TITLES[0]]

    # 2: the two overlaps the text quotes are the figure's caption's and legend's
    figure = figures[TITLES[1]]
    caption = figure.layout.annotations[-1].text
    legend = next(t.name for t in figure.data if t.name.startswith("shared area"))
    text = texts[TITLES[1]].replace(" %", "%")
    assert _percent(text, "overlap") == _percent(caption, "overlap")
    assert _percent(text, "shaded area") == re.search(r"(\d+)%", legend).group(1)

    # 3: blue is high similarity; the counts quoted are the matrices' own
    figure = figures[TITLES[2]]
    low, high = scale_ends(figure.layout.coloraxis.colorscale)
    assert (
        hue(high) == pytest.approx(hue("#0000FF"), abs=40)
        and "dark blue = similar" in (texts[TITLES[2]])
    )
    assert (
        hue(low) == pytest.approx(hue("#FF0000"), abs=40) and "red = opposite" in (texts[TITLES[2]])
    )
    assert "bright diagonal" not in texts[TITLES[2]]
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    titles = [a.text for a in figure.layout.annotations[: len(heatmaps)]]
    for heatmap, title in zip(heatmaps, titles, strict=True):
        count = own_words_first(np.asarray(heatmap.z))
        assert f"{count} of {len(heatmap.z)} clips in “{title}”" in texts[TITLES[2]]

    # 4: the attention is darker blue where it is larger
    attention = next(t for t in figures[TITLES[3]].data if t.name == "attention")
    low, high = scale_ends(attention.colorscale)
    assert (
        lightness(high) < lightness(low)
        and "The darker the blue, the more attention" in (texts[TITLES[3]])
    )

    # 5: the colours the text names are the bars' colours
    bars = {t.name: t.marker.color for t in figures[TITLES[4]].data}
    named = {"black": "#000000", "green": MODALITY_COLORS["speech"], "pink": "#CC79A7"}
    for source, colour in (("fused", "black"), ("speech", "green"), ("text", "pink")):
        trace = next(name for name in bars if name.startswith(source))
        assert f"({colour})" in texts[TITLES[4]] and bars[trace] == named[colour]
