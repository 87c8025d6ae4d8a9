"""The one path from an Analysis to the app's figures.

`Views(bank)` prepares once what every request draws of the reference bank (a fixed subset of its
utterances, their labels, texts and map coordinates, their Gaussian means on the principal axes);
its methods turn one `Analysis` (and the decoded clip, for the spectrogram) into plotly figures.
They read the analysis and the bank's arrays only: no model, no decoding, no bank search (the
Analyzer's bank has already filled the neighbours and map positions).
"""

from __future__ import annotations

import numpy as np

from demo import plots
from mgcma.analysis import Analysis
from mgcma.audio import Audio
from mgcma.bank import ReferenceBank

MAP_SPACES = ("speech & text (instance space)", "fused")
NEIGHBOURS = 6  # nearest bank utterances listed beside the instance map
SAME_CLIP_DISTANCE = 5e-5  # cosine distance that rounds to 0.0000: the same utterance
DISPLAY_POINTS = 1200  # bank utterances drawn on the maps (searches still use the whole bank):
# every drawn point travels to the browser and is rendered there, on every request


class Views:
    """Figures of an analysis, over what is drawn of the bank (computed here, once)."""

    def __init__(self, bank: ReferenceBank | None) -> None:
        self.bank = bank
        if bank is None:
            return
        shown = _display_subset(len(bank))
        labels = [bank.meta["labels"][i] for i in shown]
        texts = [bank.meta["texts"][i] for i in shown]
        arrays = bank.arrays
        self._instance_map = (  # speech and text share one map: both halves drawn
            np.concatenate([arrays["speech_xy"][shown], arrays["text_xy"][shown]]),  # (2S, 2)
            labels * 2,
            [f"speech · {t}" for t in texts] + [f"text · {t}" for t in texts],
        )
        self._fused_map = (arrays["fused_xy"][shown], labels, texts)  # (S, 2)
        self._means = (bank.projected_means()["speech"][shown], labels)  # (S, 2)

    def figures(self, analysis: Analysis, clip: Audio, head=None, direction="text→speech"):
        """(prediction, token, instance, distribution) plotly figures; None where not drawn."""
        return (
            self.prediction_figure(analysis),
            self.token_figure(analysis, clip, head, direction),
            self.instance_view(analysis)[0],
            self.distribution_figure(analysis),
        )

    def prediction_figure(self, analysis: Analysis):
        return plots.prediction_bars(analysis.probs, analysis.speech_probs, analysis.text_probs)

    def token_figure(
        self, analysis: Analysis, clip: Audio | None, head=None, direction="text→speech"
    ):
        attention = (
            analysis.attention_text_to_speech
            if direction.startswith("text")
            else analysis.attention_speech_to_text
        )
        if attention is None:
            return None
        if not analysis.words:  # the notes say why: no transcript, or Whisper heard nothing
            return plots.placeholder(
                "No words to align with the speech: type the transcript (or transcribe it) "
                "and analyse again."
            )
        spectrogram = plots.spectrogram(clip.samples) if clip is not None else None
        return plots.token_heatmap(
            analysis.words,
            analysis.frame_times,
            attention,
            direction=direction,
            head=head,
            spectrogram=spectrogram,
            word_times=analysis.word_times,
            duration=analysis.duration,
        )

    def instance_view(self, analysis: Analysis, space: str = MAP_SPACES[0]):
        """(figure, neighbour rows) on the joint speech–text map or on the fused map."""
        if self.bank is None or not analysis.map_position:
            return None, []
        if space == MAP_SPACES[0]:  # instance space: speech and text share one map
            xy, labels, texts = self._instance_map
            points = {k: v for k, v in analysis.map_position.items() if k in ("speech", "text")}
            neighbours = (analysis.speech_neighbours or [])[:NEIGHBOURS]
            title = "Instance level: this clip's speech and words among the bank's"
        else:
            xy, labels, texts = self._fused_map
            points = {"fused": analysis.map_position["fused"]}
            neighbours = analysis.neighbours or []
            title = "Fused representation: what the classifier sees"
        figure = plots.instance_map(xy, labels, points, neighbours, bank_text=texts, title=title)
        rows = [[_own(n), n["label"], n["distance"], n["speaker"]] for n in neighbours]
        return figure, rows

    def distribution_figure(self, analysis: Analysis):
        if analysis.speech_mu is None:
            return None
        bank_points = labels = None
        if self.bank is not None:
            axes, center = self.bank.arrays["pca_axes"], self.bank.arrays["pca_center"]
            bank_points, labels = self._means
        else:  # no bank: the first two Gaussian dimensions
            g = analysis.speech_mu.shape[0]
            axes, center = np.eye(2, g, dtype=np.float32), np.zeros(g, dtype=np.float32)
        return plots.distribution_view(
            analysis.speech_mu,
            analysis.speech_sigma,
            analysis.text_mu,
            analysis.text_sigma,
            axes=axes,
            center=center,
            w2=analysis.w2_distance,
            similarity=analysis.similarity,
            overlap=analysis.overlap,
            percentiles=analysis.percentiles,
            bank_points=bank_points,
            bank_labels=labels,
        )


def _own(neighbour: dict) -> str:
    """A neighbour's transcript, marked when it is the analysed clip itself (distance 0 to 4
    decimals: the examples, for one, are utterances of the bank)."""
    if neighbour["distance"] < SAME_CLIP_DISTANCE:
        return f"{neighbour['text']} (this very clip: it is in the bank)"
    return neighbour["text"]


def _display_subset(count: int) -> np.ndarray:
    """A fixed, seeded subset of bank indices to draw (all of a small bank)."""
    if count <= DISPLAY_POINTS:
        return np.arange(count)
    return np.sort(np.random.default_rng(0).choice(count, DISPLAY_POINTS, replace=False))
