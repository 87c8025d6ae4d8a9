"""Every figure says what its colours mean, and an emotion wears one distinct colour everywhere."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from colour_science import DEFICIENCIES, distance, hue, lightness, scale_ends

from demo import plots
from mgcma.constants import EMOTIONS

MIN_DISTANCE = 25.0  # ΔE76: far beyond "noticeable" (≈ 2.3), with every deficiency
MIN_HUE_GAP = 45.0  # degrees between two chromatic emotions: not two shades of one hue


@pytest.mark.parametrize("deficiency", list(DEFICIENCIES))
def test_emotion_colours_are_distinct_with_each_colour_deficiency(deficiency):
    colors = plots.EMOTION_COLORS
    for a, b in itertools.combinations(EMOTIONS, 2):
        gap = distance(colors[a], colors[b], deficiency)
        assert gap >= MIN_DISTANCE, f"{a} and {b} are {gap:.1f} ΔE apart with {deficiency}"


def test_happy_and_angry_are_different_hues_not_two_oranges():
    colors = plots.EMOTION_COLORS
    gap = abs(hue(colors["happy"]) - hue(colors["angry"]))
    assert min(gap, 360 - gap) >= MIN_HUE_GAP
    chromatic = [e for e in EMOTIONS if e != "neutral"]
    for a, b in itertools.combinations(chromatic, 2):
        gap = abs(hue(colors[a]) - hue(colors[b]))
        assert min(gap, 360 - gap) >= MIN_HUE_GAP, (a, b)


def test_every_figure_colours_an_emotion_with_its_one_colour():
    colors = plots.EMOTION_COLORS
    labels = list(EMOTIONS) * 3
    xy = np.random.default_rng(0).normal(size=(len(labels), 2))
    neighbours = [
        {"x": 0.0, "y": 0.0, "text": "t", "label": e, "distance": 0.1, "speaker": "s"}
        for e in EMOTIONS
    ]
    instance = plots.instance_map(xy, labels, {"fused": (0, 0)}, neighbours)
    for trace in instance.data:
        if trace.name.startswith("bank: "):
            assert trace.marker.color == colors[trace.name.removeprefix("bank: ")]
    rings = next(t for t in instance.data if t.name.endswith("(ring: their emotion)"))
    assert list(rings.marker.color) == [colors[e] for e in EMOTIONS]
    assert "their emotion" in rings.name  # the legend says what the ring colours mean

    probs = dict.fromkeys(EMOTIONS, 0.25)
    bars = plots.prediction_bars(probs)
    assert list(bars.data[0].marker.color) == [colors[e] for e in EMOTIONS]
    variants = plots.variant_bars([{"variant": "full", "label": "sad", **probs}])
    assert [t.marker.color for t in variants.data] == [colors[t.name] for t in variants.data]

    g = 4
    distribution = plots.distribution_view(
        np.zeros(g), np.ones(g), np.ones(g), np.ones(g),
        axes=np.eye(2, g), center=np.zeros(g),
        bank_points=xy, bank_labels=labels,
    )  # fmt: skip
    bank = next(t for t in distribution.data if t.name == "bank means (colour: their emotion)")
    assert list(bank.marker.color) == [colors[e] for e in labels]


def test_the_colour_scales_run_as_their_legends_say():
    """Spectrogram: darker = louder; attention: darker blue = more; similarity: blue = high."""
    rng = np.random.default_rng(0)
    db, times = rng.normal(size=(8, 20)), np.arange(20) * 0.01
    fig = plots.token_heatmap(
        ["a", "b"],
        np.arange(5) * 0.04,
        rng.dirichlet(np.ones(5), size=(1, 2)),
        spectrogram=(db, times),
    )
    views = plots.two_views(db, times, ["a", "b"])
    shown = {  # trace → where the figure says what its colours mean
        "spectrogram": (views.data[0], views.data[0].colorbar.title.text, "darker = louder"),
        "attention": (fig.data[1], fig.data[1].colorbar.title.text, "darker = more"),
        "strip": (fig.data[0], fig.layout.title.text, "spectrogram, darker = louder"),
    }
    for name, (trace, legend, says) in shown.items():
        low, high = scale_ends(trace.colorscale)
        assert lightness(high) < lightness(low) - 50, name  # high values are drawn dark
        assert says in " ".join(legend.replace("<br>", " ").split()), name
    similarity = plots.similarity_matrices([np.eye(3)], ["a", "b", "c"], ["full MGCMA"])
    low, high = scale_ends(similarity.layout.coloraxis.colorscale)
    assert hue(high) == pytest.approx(hue("#0000FF"), abs=40)  # high cosine: blue
    assert hue(low) == pytest.approx(hue("#FF0000"), abs=40)  # negative cosine: red
