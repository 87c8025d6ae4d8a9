"""Figures from toy arrays: the right traces, the right numbers in them, clear errors."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from demo import plots
from mgcma.constants import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]

RNG = np.random.default_rng(0)
PROBS = {"neutral": 0.1, "happy": 0.2, "angry": 0.6, "sad": 0.1}
WORDS = ["i", "am", "so", "so", "happy"]  # a repeated word must keep its own row


def _attention(heads: int, rows: int, cols: int) -> np.ndarray:
    weights = RNG.random((heads, rows, cols))
    return weights / weights.sum(-1, keepdims=True)  # rows are distributions


def _trace(fig, name: str):
    return next(trace for trace in fig.data if trace.name == name)


def test_colours_cover_every_emotion():
    assert set(EMOTIONS) <= set(plots.EMOTION_COLORS)
    assert len(set(plots.EMOTION_COLORS.values())) == len(plots.EMOTION_COLORS)


# ----------------------------------------------------------------------------- predictions


def test_prediction_bars_fused_only_and_with_modalities():
    fig = plots.prediction_bars(PROBS)
    assert len(fig.data) == 1
    assert list(fig.data[0].y) == list(EMOTIONS)
    assert np.allclose(fig.data[0].x, [10, 20, 60, 10])
    assert fig.layout.xaxis.title.text == "probability (%)"
    assert list(fig.layout.xaxis.range) == [0, 100]
    assert "angry" in fig.layout.title.text

    assert list(fig.data[0].marker.color) == [plots.EMOTION_COLORS[e] for e in EMOTIONS]

    speech = {"neutral": 0.7, "happy": 0.1, "angry": 0.1, "sad": 0.1}
    text = {"sad": 0.55, "happy": 0.05, "neutral": 0.25, "angry": 0.15}  # any key order
    fig = plots.prediction_bars(PROBS, speech_probs=speech, text_probs=text)
    assert [trace.name for trace in fig.data] == ["fused (MGCMA)", "speech only", "text only"]
    for trace, given in zip(fig.data, (PROBS, speech, text), strict=True):
        assert list(trace.y) == list(EMOTIONS)  # every source on the same emotion rows
        assert np.allclose(trace.x, [100 * given[e] for e in EMOTIONS])
        assert list(trace.text) == [f"{100 * given[e]:.0f}%" for e in EMOTIONS]
    assert "angry (60%)" in fig.layout.title.text  # the fused model's pick, not a head's
    # grouped: one colour per source (its legend swatch), a different one for each source
    colors = [trace.marker.color for trace in fig.data]
    assert all(isinstance(color, str) for color in colors) and len(set(colors)) == 3


def test_prediction_bars_rejects_mismatched_emotions():
    with pytest.raises(ValueError, match="speech_probs has emotions"):
        plots.prediction_bars(PROBS, speech_probs={"happy": 1.0})
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.prediction_bars({})


def test_variant_bars_show_each_checkpoints_probabilities_under_its_name():
    rows = [  # what the Compare tab passes: one row per checkpoint
        {"variant": "full", "label": "angry", **PROBS},
        {"variant": "no_token", "label": "sad", "neutral": 0.1, "happy": 0.1, "angry": 0.3,
         "sad": 0.5},
        {"variant": "custom", "label": "happy", "neutral": 0.0, "happy": 1.0, "angry": 0.0,
         "sad": 0.0},
    ]  # fmt: skip
    fig = plots.variant_bars(rows)
    assert [trace.name for trace in fig.data] == list(EMOTIONS)  # one bar group per emotion
    for trace in fig.data:
        assert list(trace.x) == ["MGCMA (full)", "without token", "custom"]
        assert np.allclose(trace.y, [100 * row[trace.name] for row in rows])
        assert trace.marker.color == plots.EMOTION_COLORS[trace.name]
    assert fig.layout.xaxis.title.text == "checkpoint"
    assert fig.layout.yaxis.title.text == "probability (%)"
    assert list(fig.layout.yaxis.range) == [0, 100]
    with pytest.raises(ValueError, match="at least one row"):
        plots.variant_bars([])


def test_placeholder_says_why_and_draws_nothing():
    fig = plots.placeholder("No words to align with the speech: type the transcript.")
    assert len(fig.data) == 0
    assert [a.text for a in fig.layout.annotations] == [
        "No words to align with the speech: type the transcript."
    ]
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


# ----------------------------------------------------------------------------- spectrogram


def _sine(frequency: float, seconds: float = 1.0, rate: int = 16_000) -> np.ndarray:
    return np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate).astype(np.float32)


def test_spectrogram_shape_time_axis_and_pitch():
    db, times = plots.spectrogram(_sine(440.0), 16_000, n_mels=64)
    assert db.shape == (64, 101) and times.shape == (101,)  # 10 ms hop, centred frames
    assert times[0] == 0.0 and times[-1] == pytest.approx(1.0)
    assert np.allclose(np.diff(times), 0.01)
    high, _ = plots.spectrogram(_sine(4000.0), 16_000, n_mels=64)
    assert db.mean(axis=1).argmax() < high.mean(axis=1).argmax()  # a higher tone, a higher band


def test_spectrogram_rejects_stereo_and_handles_tiny_input():
    with pytest.raises(ValueError, match="1-D mono"):
        plots.spectrogram(np.zeros((100, 2)))
    db, times = plots.spectrogram(np.zeros(10))
    assert db.shape[1] == times.shape[0] >= 1


# ----------------------------------------------------------------------------- attention


def test_token_heatmap_mean_and_single_head_text_to_speech():
    attention = _attention(4, len(WORDS), 50)  # (H, W, T_s)
    frame_times = 0.01 + 0.02 * np.arange(50)
    fig = plots.token_heatmap(WORDS, frame_times, attention)
    heatmap = _trace(fig, "attention")
    assert np.allclose(heatmap.z, attention.mean(axis=0))
    assert np.allclose(heatmap.x, frame_times)
    assert list(fig.layout.yaxis.ticktext) == WORDS
    assert fig.layout.xaxis.title.text == "time (s)"
    assert "mean of 4 heads" in fig.layout.title.text
    assert "each word's attention over the speech frames" in fig.layout.title.text

    fig = plots.token_heatmap(WORDS, frame_times, attention, head=2)
    assert np.allclose(_trace(fig, "attention").z, attention[2])
    assert "head 3 of 4" in fig.layout.title.text  # counted from 1, as the app's menu counts


def test_token_heatmap_speech_to_text_is_transposed():
    attention = _attention(2, 30, len(WORDS))  # (H, T_s, W)
    fig = plots.token_heatmap(
        WORDS, 0.02 * np.arange(30), attention, direction="speech→text", head=1
    )
    assert np.allclose(_trace(fig, "attention").z, attention[1].T)  # (W, T_s)
    assert "Speech → text" in fig.layout.title.text


def test_token_heatmap_with_spectrogram_and_word_spans():
    spectrogram = plots.spectrogram(_sine(300.0))
    word_times = [(0.0, 0.1), None, (0.2, 0.4), (0.4, 0.6), (0.6, 0.9)]
    fig = plots.token_heatmap(
        WORDS,
        0.02 * np.arange(50),
        _attention(2, len(WORDS), 50),
        spectrogram=spectrogram,
        word_times=word_times,
    )
    assert [trace.name for trace in fig.data] == ["spectrogram", "attention"]
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"  # shared time
    outlines = [s for s in fig.layout.shapes if s.yref == "y2"]
    bands = [s for s in fig.layout.shapes if s.xref == "x" and s.yref != "y2"]
    assert len(outlines) == len(bands) == 4  # one per word with a known span
    assert (outlines[1].x0, outlines[1].x1, outlines[1].y0, outlines[1].y1) == (0.2, 0.4, 1.5, 2.5)


def test_spectrogram_and_attention_share_one_time_span():
    """The strip above the heatmap and the heatmap start and end at the same instants."""
    seconds = 1.89
    spectrogram = plots.spectrogram(_sine(300.0, seconds))
    frame_times = 0.01 + 0.04 * np.arange(49)  # the encoder's last cell reaches 1.97 s
    fig = plots.token_heatmap(
        WORDS, frame_times, _attention(2, len(WORDS), 49), spectrogram=spectrogram,
        duration=seconds,
    )  # fmt: skip
    assert fig.layout.xaxis.matches == "x2" and list(fig.layout.xaxis2.range) == [0.0, seconds]
    for trace in fig.data:  # each image covers the whole span: cells reach past both ends
        x = np.asarray(trace.x)
        half = (x[1] - x[0]) / 2
        assert x[0] - half <= 0.0 and x[-1] + half >= seconds, trace.name
    views = plots.two_views(*spectrogram, WORDS, duration=seconds)
    assert list(views.layout.xaxis.range) == [0.0, seconds]


def test_two_views_lays_each_timed_word_on_its_span_over_the_spectrogram():
    db, times = plots.spectrogram(_sine(300.0))
    word_times = [(0.0, 0.1), None, (0.2, 0.4), (0.4, 0.6), (0.6, 0.9)]
    fig = plots.two_views(db, times, WORDS, word_times, duration=1.0)
    assert len(fig.data) == 1 and fig.data[0].name == "spectrogram"
    assert np.allclose(fig.data[0].z, db) and np.allclose(fig.data[0].x, times)
    boxes = [(shape.x0, shape.x1) for shape in fig.layout.shapes]
    assert boxes == [span for span in word_times if span is not None]  # "am" has no timing
    assert [a.text for a in fig.layout.annotations] == ["i", "so", "so", "happy"]
    assert fig.layout.xaxis.title.text == "time (s)" and list(fig.layout.xaxis.range) == [0, 1]
    assert "when it was spoken" in fig.layout.title.text
    untimed = plots.two_views(db, times, WORDS)
    assert not untimed.layout.shapes and "word timings unknown" in untimed.layout.title.text


def test_token_heatmap_outlines_each_timed_word_on_its_row_and_tints_it_on_the_spectrogram():
    seconds = 1.0
    spectrogram = plots.spectrogram(_sine(300.0, seconds))
    word_times = [(0.0, 0.1), None, (0.2, 0.4), (0.4, 0.6), (0.6, 0.9)]
    frame_times = np.arange(49) * 0.02
    fig = plots.token_heatmap(
        WORDS, frame_times, _attention(2, len(WORDS), 49), spectrogram=spectrogram,
        word_times=word_times, duration=seconds,
    )  # fmt: skip
    timed = [(row, span) for row, span in enumerate(word_times) if span is not None]
    outlines = [s for s in fig.layout.shapes if s.xref == "x2"]  # the attention row
    assert [(s.x0, s.x1, s.y0, s.y1, s.yref) for s in outlines] == [
        (start, end, row - 0.5, row + 0.5, "y2") for row, (start, end) in timed
    ]
    assert [s.name for s in outlines] == [f"span of {WORDS[row]}" for row, _ in timed]
    tints = [s for s in fig.layout.shapes if s.xref == "x"]  # the spectrogram above
    assert [(s.x0, s.x1, s.y0, s.y1, s.yref) for s in tints] == [
        (start, end, 0, 1, "y domain") for _, (start, end) in timed
    ]
    assert all(s.opacity == 0.08 and s.line.width == 0 for s in tints)
    labels = [a for a in fig.layout.annotations if a.xref == "x"]
    assert [(a.text, a.x, a.y, a.yanchor) for a in labels] == [
        (WORDS[row], start, 1 if row % 2 == 0 else 0, "top" if row % 2 == 0 else "bottom")
        for row, (start, _) in timed
    ]  # word by word, alternately at the top and the bottom: neighbours never collide


def test_token_heatmap_errors_say_what_to_pass():
    frame_times = np.arange(10) * 0.02
    attention = _attention(2, 4, 10)
    with pytest.raises(ValueError, match="attention has 4 word rows but 5 words were given"):
        plots.token_heatmap(WORDS, frame_times, attention)
    with pytest.raises(ValueError, match=r"must be 3-D \(heads, words, frames\)"):
        plots.token_heatmap(WORDS[:4], frame_times, attention[0])
    with pytest.raises(ValueError, match=r"head must be None .* 0\.\.1"):
        plots.token_heatmap(WORDS[:4], frame_times, attention, head=2)
    with pytest.raises(ValueError, match="frame_times has shape"):
        plots.token_heatmap(WORDS[:4], frame_times[:-1], attention)
    with pytest.raises(ValueError, match="direction must be"):
        plots.token_heatmap(WORDS[:4], frame_times, attention, direction="sideways")
    with pytest.raises(ValueError, match="word_times has 1 entries"):
        plots.token_heatmap(WORDS[:4], frame_times, attention, word_times=[(0.0, 1.0)])


# ----------------------------------------------------------------------------- instance map


def _neighbours(count: int) -> list[dict]:
    return [
        {
            "x": float(i),
            "y": 1.0,
            "text": f"line {i}",
            "label": EMOTIONS[i % 4],
            "distance": 0.1 * i,
            "speaker": "F01",
        }
        for i in range(count)
    ]


def test_instance_map_traces_and_links():
    labels = [EMOTIONS[i % 4] for i in range(40)]
    points = {"speech": (0.0, 0.0), "text": (1.0, 1.0), "fused": (0.5, 0.5)}
    fig = plots.instance_map(
        RNG.normal(size=(40, 2)), labels, points, _neighbours(3), bank_text=["t"] * 40
    )
    assert len(fig.data) == 4 + 3 + 2  # emotions, points, links, rings
    assert [trace.name for trace in fig.data[:4]] == [f"bank: {e}" for e in EMOTIONS]
    assert [trace.marker.symbol for trace in fig.data[4:7]] == ["diamond", "square", "star"]
    # the speech and text labels sit on opposite sides: apart even when the points coincide
    positions = {trace.text[0]: trace.textposition for trace in fig.data[4:6]}
    assert positions == {"speech": "top center", "text": "bottom center"}
    links, rings = fig.data[7], fig.data[8]
    assert list(links.x) == [0.5, 0.0, None, 0.5, 1.0, None, 0.5, 2.0, None]  # from fused
    assert len(rings.x) == 3
    assert fig.layout.xaxis.title.text == "UMAP 1" and fig.layout.yaxis.title.text == "UMAP 2"


def test_instance_map_links_from_first_point_without_fused_and_validates():
    fig = plots.instance_map(np.zeros((2, 2)), ["sad", "sad"], {"text": [3.0, 4.0]}, _neighbours(1))
    assert list(fig.data[-2].x) == [3.0, 0.0, None]
    with pytest.raises(ValueError, match="points keys must be among"):
        plots.instance_map(np.zeros((2, 2)), ["sad", "sad"], {"audio": (0, 0)})
    with pytest.raises(ValueError, match="bank_labels has 1 entries but bank_xy has 2 rows"):
        plots.instance_map(np.zeros((2, 2)), ["sad"], {})
    with pytest.raises(ValueError, match=r"bank_xy must be \(N, 2\)"):
        plots.instance_map(np.zeros((2, 3)), ["sad", "sad"], {})


# ----------------------------------------------------------------------------- distributions


def _gaussians(g: int = 6):
    return {
        "speech_mu": RNG.normal(size=g),
        "speech_sigma": np.exp(0.3 * RNG.normal(size=g)),
        "text_mu": RNG.normal(size=g),
        "text_sigma": np.exp(0.3 * RNG.normal(size=g)),
        "axes": np.linalg.qr(RNG.normal(size=(g, 2)))[0].T,  # (2, g) orthonormal rows
        "center": RNG.normal(size=g),
    }


def test_distribution_ellipses_are_the_projected_gaussians():
    given = _gaussians()
    fig = plots.distribution_view(
        **given, bank_points=RNG.normal(size=(20, 2)), bank_labels=["sad"] * 20
    )
    axes, center = given["axes"], given["center"]
    for kind in ("speech", "text"):
        mean = axes @ (given[f"{kind}_mu"] - center)
        covariance = axes @ np.diag(given[f"{kind}_sigma"] ** 2) @ axes.T
        marker = _trace(fig, f"{kind} mean")
        assert np.allclose([marker.x[0], marker.y[0]], mean)
        for k in (1, 2):
            curve = np.stack([_trace(fig, f"{kind} {k}σ").x, _trace(fig, f"{kind} {k}σ").y])
            assert np.allclose(curve[:, 0], curve[:, -1])  # closed
            assert np.allclose(curve[:, :-1].mean(axis=1), mean)
            offset = curve - mean[:, None]
            mahalanobis = np.einsum("in,ij,jn->n", offset, np.linalg.inv(covariance), offset)
            assert np.allclose(mahalanobis, k**2)  # every point lies on the kσ contour
    assert fig.layout.xaxis.title.text == "principal axis 1"


def test_distribution_densities_integrate_to_one_and_overlap_lies_below():
    given = _gaussians()
    given["speech_sigma"][0] = 0.01  # one narrow dimension must still be sampled well
    fig = plots.distribution_view(**given)
    speech, text = _trace(fig, "speech density"), _trace(fig, "text density")
    shared = next(trace for trace in fig.data if trace.name.startswith("shared area"))
    for trace in (speech, text):
        x, y = np.asarray(trace.x), np.asarray(trace.y)
        assert np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2 == pytest.approx(1.0, abs=1e-3)
    assert np.all(np.asarray(shared.y) <= np.minimum(speech.y, text.y) + 1e-12)


def test_distribution_identical_means_use_first_axis_and_caption_in_words():
    given = _gaussians()
    given["text_mu"] = given["speech_mu"].copy()
    fig = plots.distribution_view(
        **given,
        w2=1.5,
        similarity=-0.2,
        overlap=0.6,
        percentiles={"w2_distance": 37.5, "similarity": 61.0, "overlap": None},
    )
    assert np.all(np.isfinite(_trace(fig, "speech density").y))
    caption = fig.layout.annotations[-1].text
    assert "W2 distance 1.5" in caption
    ranks = caption.split("<br>")[-1]
    assert ranks == "percentile among matched pairs in the bank: W2 distance 38th · similarity 61st"
    assert "overlap 60%" in caption


def test_distribution_says_which_overlap_is_which():
    """The caption's overlap and the legend's shaded area are two measures, both named."""
    given = _gaussians()
    fig = plots.distribution_view(**given, w2=3.0, similarity=1.0, overlap=0.45)
    shared = next(trace for trace in fig.data if trace.name.startswith("shared area"))
    area = fig.layout.meta["shared_area"]
    assert f"{area:.0%}" in shared.name and fig.layout.meta["overlap"] == 0.45
    caption = fig.layout.annotations[-1].text
    overlap_line = next(line for line in caption.split("<br>") if line.startswith("overlap 45%"))
    assert "averaged over all 6 dimensions" in overlap_line
    shaded_line = next(line for line in caption.split("<br>") if line.startswith("shaded"))
    assert f"{area:.0%} shared on the one line where the means differ most" in shaded_line


def test_distribution_view_validates_shapes():
    given = _gaussians(6)
    with pytest.raises(ValueError, match=r"axes must be \(2, g\) = \(2, 6\)"):
        plots.distribution_view(**{**given, "axes": given["axes"].T})
    with pytest.raises(ValueError, match="text_mu has shape"):
        plots.distribution_view(**{**given, "text_mu": np.zeros(5)})
    with pytest.raises(ValueError, match=r"center must be \(g,\)"):
        plots.distribution_view(**{**given, "center": np.zeros(4)})
    with pytest.raises(ValueError, match="must be positive"):
        plots.distribution_view(**{**given, "text_sigma": np.zeros(6)})


# ----------------------------------------------------------------------------- similarities


def test_similarity_matrices_share_a_scale_and_mark_the_diagonal():
    labels = ["angry", "sad", "happy"]
    first, second = RNG.uniform(-1, 1, (3, 3)), RNG.uniform(-0.5, 0.5, (3, 3))
    fig = plots.similarity_matrices([first, second], labels, ["MGCMA", "no instance loss"])
    assert len(fig.data) == 2 and np.allclose(fig.data[1].z, second)
    assert {trace.coloraxis for trace in fig.data} == {"coloraxis"}
    assert fig.layout.coloraxis.cmax == pytest.approx(np.abs(first).max())
    assert list(fig.layout.xaxis.ticktext) == ["1 · angry", "2 · sad", "3 · happy"]
    assert len(fig.layout.shapes) == 2 * 3  # each diagonal cell, in each panel
    assert [a.text for a in fig.layout.annotations] == ["MGCMA", "no instance loss"]
    assert list(fig.layout.yaxis.ticktext) == ["1 · angry", "2 · sad", "3 · happy"]
    assert fig.layout.yaxis.title.text == "speech" and fig.layout.xaxis.title.text == "text"
    diagonal = [(s.x0 + s.x1) / 2 for s in fig.layout.shapes if s.xref == "x"]
    assert diagonal == pytest.approx([0, 1, 2])  # the outlined cells are the diagonal
    single = plots.similarity_matrices([first], labels, ["full MGCMA"], title="batch")
    assert len(single.data) == 1 and np.allclose(single.data[0].z, first)
    assert single.layout.title.text.startswith("batch")


def test_similarity_matrix_validates():
    with pytest.raises(ValueError, match="must be a square"):
        plots.similarity_matrices([np.zeros((2, 3))], ["a", "b"], ["x"])
    with pytest.raises(ValueError, match="but 3 labels were given"):
        plots.similarity_matrices([np.zeros((2, 2))], ["a", "b", "c"], ["x"])
    with pytest.raises(ValueError, match="one title per matrix"):
        plots.similarity_matrices([np.zeros((2, 2))], ["a", "b"], [])


# ----------------------------------------------------------------------------- imports


def test_plots_import_only_arrays_and_plotting_libraries():
    files = sorted((ROOT / "demo" / "plots").glob("*.py"))
    assert (ROOT / "demo" / "plots" / "__init__.py") in files
    imported = set()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported |= {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    siblings = {f"demo.plots.{path.stem}" for path in files if path.stem != "__init__"}
    allowed = siblings | {
        "__future__",
        "functools",
        "html",
        "collections.abc",
        "numpy",
        "plotly.graph_objects",
        "plotly.subplots",
        "torch",
        "torchaudio",
        "mgcma.constants",
    }
    assert imported <= allowed, imported - allowed
