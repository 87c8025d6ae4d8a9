"""The app's words: explanations for a classroom, the model card, the measured results."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEADER = """# MGCMA Explorer
Speech + text emotion recognition with **Multi-Granularity Cross-Modal Alignment** (Wang et al.,
ICASSP 2025). Record or upload a sentence, check the transcript, press **Analyze**, and see how the
model lines up what was *said* with *how* it was said — at three levels of detail."""

TOKEN_HELP = """### Token level — which words listen to which moments
Each row is a word; each column is a short slice of the speech (40 ms for the shipped model). The
darker the blue, the more the word's text representation drew on that moment of audio
(cross-attention; the colour bar gives the share). Above it, the spectrogram: darker is louder.
Boxes mark where each word was actually spoken, when that is known (Whisper's timings or an
example's truth)."""

INSTANCE_HELP = """### Instance level — whole utterances as points
The speech and the transcript of every utterance in a reference bank are points on one map
(UMAP), coloured by their emotion label; training pulls an utterance's speech point and text
point together. Your clip's two points are the large markers (◆ speech, ■ text); lines go to its
nearest neighbours, ringed in their emotion's colour."""

DISTRIBUTION_HELP = """### Distribution level — each side as a cloud, not a point
The model describes the speech and the text each as a Gaussian (a centre and a spread). Left:
their 1σ and 2σ ellipses on the bank's two main directions. Right: both densities along the line
joining their centres, their shared area shaded. Training makes the two clouds of the same
utterance overlap (small Wasserstein distance). The figure gives two overlaps: the *overlap*
averages every dimension; the shaded area is measured on the one line where the centres differ
most — another measure, so the two numbers differ. Faint dots: the bank's speech means, coloured
by their emotion label."""

COMPARE_HELP = """### Compare checkpoints trained without one granularity
The same input — the clip and the transcript now on the Analyze tab — through the full model
and through models trained without distribution-, instance- or token-level alignment, and with
speech or text alone. The line above the chart names the clip, its transcript and, for a
prepared example, its true label. The table below is one training run of each model, five
folds. Every model that hears the voice carries the same kind of voice probe, which reads real
voices for it, so on real actors they all score alike (about 77 %); the full model is level with
each model without one granularity (within a point of UA) and 13 to 14 points ahead of speech or
text alone. Before the probe, over three training seeds, the full model was ahead of each by
half a point to a point. And one clip can disagree with the table: two points of UA are a few
clips in a hundred."""

WALKTHROUGH_INTRO = """## A walkthrough for the classroom
Pick a prepared example, then go through the steps in order. Each figure is computed live."""

STEPS = (
    (
        "1 · Two views of one utterance",
        "An utterance reaches the model twice: as **sound** (the spectrogram: time left to right, "
        "pitch bottom to top, and the louder, the darker the grey) and as **words** (the "
        "transcript). Prosody — pitch, speed, how hard the voice works — often tells *how "
        "excited* someone is; words often tell *whether it is good or bad*. Either can be "
        "missing, or they can disagree. (The model hears every clip at one level, so how close "
        "you sit to the microphone does not count; how you speak does.)",
    ),
    (
        "2 · Distribution level (coarse)",
        "Each side becomes a cloud: a Gaussian with a centre and a spread. The model is trained so "
        "that the speech cloud and the text cloud of the **same** utterance are close in "
        "2-Wasserstein distance, and clouds of different utterances are far apart. The *overlap* "
        "(100 % = identical clouds, averaged over every dimension) says how alike the two views "
        "are in broad strokes; the shaded area on the right is their overlap on the single line "
        "where the centres differ most — another measure, so the two numbers differ.",
    ),
    (
        "3 · Instance level (utterance pairs)",
        "Each side also becomes a single point. Training (contrastive InfoNCE) makes each speech "
        "point closest to *its own* transcript's point. The matrix shows the cosine similarity "
        "of every clip's speech (rows) with every clip's transcript (columns): dark blue = "
        "similar, white = unrelated, red = opposite. Where instance alignment works, each row's "
        "darkest cell is its outlined diagonal cell; clips that share an emotion, a voice or "
        "words can be as dark off the diagonal. Beside it, the same matrix for a model trained "
        "**without** instance alignment.",
    ),
    (
        "4 · Token level (fine)",
        "Now words meet moments: each word attends over the speech frames (cross-attention), and "
        "each speech frame over the words. The darker the blue, the more attention; good "
        "alignment puts a word's attention inside the time it was spoken (the boxes).",
    ),
    (
        "5 · Fusion: the decision",
        "The attended speech and text are pooled, joined and passed to a small classifier. "
        "The bars show its answer (black), and what speech alone (green) and text alone (pink) "
        "would say. When the two views disagree, watch which one wins.",
    ),
)

CSS = """
#message p { margin: 0.2em 0; }
.step-text { font-size: 1.02em; line-height: 1.5; }
"""


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def cv_table() -> str:
    """The measured ablation table shipped with the checkpoints, or a plain note."""
    table = _read(ROOT / "assets" / "checkpoints" / "ablation.md")
    if table:
        return table  # the file carries its own heading, naming the protocol and the folds
    return (
        "### Measured cross-validation\nNo ablation table is shipped with these checkpoints; "
        "produce one with `python -m train ablate train/configs/whisper_minilm.yaml`."
    )


def model_card() -> str:
    card = _read(ROOT / "assets" / "checkpoints" / "README.md")
    if card:  # without the markers that say which script writes its figures
        return re.sub(r"<!--.*?-->\n?", "", card, flags=re.S)
    return (
        "## Model card\nThe model card ships with the checkpoints in "
        "`assets/checkpoints/README.md`. Intended use: teaching and exploration of multimodal "
        "emotion recognition. Not for clinical, hiring or surveillance decisions."
    )


def checkpoint_facts(directory: str) -> str:
    """One line naming the loaded checkpoint's variant and preset."""
    config = Path(directory) / "config.json"
    if not config.is_file():
        return ""
    document = json.loads(config.read_text())["mgcma"]
    return f"Checkpoint: `{directory}` ({document['variant']})"
