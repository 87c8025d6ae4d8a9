"""The app's views in-process: every walkthrough step, compare, both maps, downloads."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from demo.callbacks import Callbacks
from demo.plots import VARIANT_NAMES
from demo.service import MAP_SPACES, write_html, write_json
from demo.walkthrough import TITLES, Walkthrough

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
    figure, table = Callbacks(explorer).compare(example.audio, example.text)
    assert len(figure.data) == len(explorer.model.emotions)
    # the table says what the chart says: the chart's checkpoint names, probabilities in %
    names = [VARIANT_NAMES[row["variant"]] for row in rows]
    assert [line[0] for line in table.value["data"]] == names == list(figure.data[0].x)
    assert table.value["headers"][2:] == [f"{e} %" for e in explorer.model.emotions]
    for line, row in zip(table.value["data"], rows, strict=True):
        assert line[1] == row["label"]
        assert line[2:] == pytest.approx([100 * row[e] for e in explorer.model.emotions], abs=0.05)


def test_both_maps_and_the_downloads(explorer, tmp_path):
    example = explorer.examples[1]
    analysis, clip = explorer.analyze(example.audio, example.text)
    assert analysis.word_times is not None  # an example's true timings are found by its name
    for space in MAP_SPACES:
        figure, rows = explorer.instance_view(analysis, space)
        assert figure is not None and rows and len(rows[0]) == 4
        # the example is one of the bank's utterances: its nearest neighbour is itself, said so
        assert rows[0][2] == 0 and rows[0][0] == f"{example.text} {THIS_CLIP}"
        assert [row[0].endswith(THIS_CLIP) for row in rows] == [row[2] == 0 for row in rows]
        assert sum(row[2] == 0 for row in rows) == 1
    document = json.loads(open(write_json(analysis)).read())
    assert document["label"] == analysis.label
    page = open(write_html(explorer.figures(analysis, clip))).read()
    assert page.count("plotly.js") >= 1 and page.count('class="plotly-graph-div"') == 4


def test_redrawing_tokens_for_a_head_and_direction(explorer):
    calls = Callbacks(explorer)
    example = explorer.examples[0]
    outputs = calls.analyze(
        example.audio, example.text, "tiny", "mean", "text→speech", MAP_SPACES[0], None
    )
    state = outputs[7]
    figure = calls.redraw_tokens(state, "2", "speech→text")
    heatmap = next(t for t in figure.data if t.name == "attention")
    expected = state["analysis"].attention_speech_to_text[1].T  # head 2, words × frames
    assert heatmap.z.shape == expected.shape
