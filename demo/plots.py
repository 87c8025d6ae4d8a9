"""Plotly figures for the app, built from arrays and words, never from the model.

Every builder takes the plain numpy / Python values of an `mgcma.analysis.Analysis` (or of a
reference bank) and returns a `plotly.graph_objects.Figure`. Wrong shapes raise `ValueError` with a
message that says what to pass. Shape letters: H heads, W words, T_s speech frames, T spectrogram
frames, N bank utterances, g Gaussian width, B batch size.

Figures:
    prediction_bars     fused / speech-only / text-only emotion probabilities
    spectrogram         log-mel array (dB) and its time axis, for `token_heatmap`
    token_heatmap       word ↔ speech-frame cross-attention under a spectrogram (fine granularity)
    instance_map        the utterance on the bank's 2-D map with its nearest neighbours (instance)
    distribution_view   speech and text Gaussians: ellipses and 1-D densities (distribution)
    similarity_matrix   speech × text cosine similarities of a batch; several: similarity_matrices
    to_html / to_png    offline HTML with plotly.js inline; PNG only when kaleido is installed
"""

from __future__ import annotations

import functools
import html
import importlib.util
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mgcma.constants import EMOTIONS, SAMPLE_RATE

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
EMOTION_COLORS: dict[str, str] = {
    "neutral": "#999999",  # grey
    "happy": "#E69F00",  # orange
    "angry": "#D55E00",  # vermillion
    "sad": "#0072B2",  # blue
}
MODALITY_COLORS: dict[str, str] = {
    "speech": "#009E73",  # bluish green
    "text": "#CC79A7",  # reddish purple
    "fused": "#000000",
}
OTHER_COLOR = "#56B4E9"  # sky blue, for a label outside EMOTION_COLORS (or none)
SPAN_COLOR = "#D55E00"  # outline of a word's true time span
TEMPLATE = "plotly_white"

WINDOW_SECONDS = 0.025  # 25 ms analysis window → n_fft = 400 at 16 kHz
HOP_SECONDS = 0.010  # 10 ms hop → 100 spectrogram frames per second
TOP_DB = 80.0  # dynamic range kept in the log-mel image

DIRECTIONS = {
    "text→speech": "text→speech",
    "text->speech": "text→speech",
    "speech→text": "speech→text",
    "speech->text": "speech→text",
}
POINT_SYMBOLS = {"speech": "diamond", "text": "square", "fused": "star"}
# Share of a 2-D Gaussian's mass inside its 1σ and 2σ ellipses: 1 − exp(−k²/2).
ELLIPSE_MASS = {1: 39, 2: 86}


def _color(label: str) -> str:
    return EMOTION_COLORS.get(label, OTHER_COLOR)


def _emotion_order(labels) -> list[str]:
    """Known emotions in their canonical order, then any others sorted."""
    present = set(labels)
    return [e for e in EMOTIONS if e in present] + sorted(present - set(EMOTIONS))


def _ordinal(value: float) -> str:
    n = int(round(value))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ----------------------------------------------------------------------------- predictions

SOURCES = {
    "fused (MGCMA)": "the full model (voice and words together)",
    "speech only": "the speech-only head (the voice alone)",
    "text only": "the text-only head (the words alone)",
}


def _check_probs(name: str, probs, reference: Sequence[str] | None = None) -> dict[str, float]:
    if not isinstance(probs, Mapping) or not probs:
        raise ValueError(f"{name} must be a non-empty dict {{emotion: probability}}, not {probs!r}")
    values = {str(k): float(v) for k, v in probs.items()}
    if not all(np.isfinite(v) for v in values.values()):
        raise ValueError(f"{name} has a probability that is NaN or infinite: {values}")
    if reference is not None and set(values) != set(reference):
        raise ValueError(
            f"{name} has emotions {sorted(values)} but probs has {sorted(reference)}: "
            "pass probabilities for the same emotions"
        )
    return values


def _probability_trace(name: str, values: dict[str, float], emotions: list[str], colors):
    percent = [100.0 * values[e] for e in emotions]
    return go.Bar(
        name=name,
        orientation="h",
        y=emotions,
        x=percent,
        marker={"color": colors, "line": {"color": "white", "width": 0.5}},
        text=[f"{p:.0f}%" for p in percent],
        textposition="outside",
        cliponaxis=False,
        hovertemplate=f"<b>%{{y}}</b>: %{{x:.1f}}%<br>how sure {SOURCES[name]} is "
        "that the speaker sounds %{y}<extra></extra>",
    )


def prediction_bars(
    probs: Mapping[str, float],
    speech_probs: Mapping[str, float] | None = None,
    text_probs: Mapping[str, float] | None = None,
) -> go.Figure:
    """Horizontal bars of emotion probabilities, grouped by source.

    Parameters
    ----------
    probs : {emotion: probability in [0, 1]} of the fused model
    speech_probs, text_probs : the same from the auxiliary single-modality heads, or None

    Returns
    -------
    Figure with one bar trace per source given: "fused (MGCMA)", "speech only", "text only".
    """
    fused = _check_probs("probs", probs)
    emotions = _emotion_order(fused)
    fig = go.Figure(
        _probability_trace("fused (MGCMA)", fused, emotions, list(map(_color, emotions)))
    )
    for kind, given in (("speech", speech_probs), ("text", text_probs)):
        if given is not None:
            values = _check_probs(f"{kind}_probs", given, fused)
            fig.add_trace(
                _probability_trace(f"{kind} only", values, emotions, MODALITY_COLORS[kind])
            )
    top = max(fused, key=fused.get)
    title = f"Predicted emotion: {top} ({100 * fused[top]:.0f}%)"
    if len(fig.data) > 1:
        title += (
            "<br><sup>the full model beside what the voice alone and the words alone suggest</sup>"
        )
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        barmode="group",
        height=350 if len(fig.data) == 1 else 420,
        xaxis={"title": "probability (%)", "range": [0, 100], "ticksuffix": "%"},
        yaxis={"title": "emotion", "autorange": "reversed"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1.0, "xanchor": "right"},
        margin={"l": 80, "r": 40, "t": 90, "b": 50},
    )
    return fig


# ----------------------------------------------------------------------------- spectrogram


@functools.lru_cache(maxsize=8)
def _mel_transform(sample_rate: int, n_mels: int):
    # torchaudio is imported on first use: pages that draw no spectrogram never pay for it.
    import torch
    import torchaudio

    n_fft = max(16, round(sample_rate * WINDOW_SECONDS))
    hop = max(1, round(sample_rate * HOP_SECONDS))
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, center=True
    )
    to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=TOP_DB)
    return torch.nn.Sequential(mel, to_db).eval(), n_fft, hop


def spectrogram(
    samples: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel spectrogram in dB, for the top panel of `token_heatmap`.

    Parameters
    ----------
    samples : (N,) mono waveform, float
    sample_rate : of `samples`, Hz
    n_mels : number of mel bands

    Returns
    -------
    db : (n_mels, T) float32, 25 ms windows every 10 ms, at most 80 dB below the loudest bin
    times : (T,) float64, the centre of each frame in seconds
    """
    import torch

    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(
            f"samples must be a non-empty 1-D mono waveform, got shape {samples.shape}; "
            "average the channels first (samples.mean(axis=1))"
        )
    if int(sample_rate) <= 0 or int(n_mels) <= 0:
        raise ValueError(f"sample_rate and n_mels must be positive, got {sample_rate}, {n_mels}")
    transform, n_fft, hop = _mel_transform(int(sample_rate), int(n_mels))
    waveform = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if waveform.size < n_fft:  # reflect padding needs at least one window of samples
        waveform = np.pad(waveform, (0, n_fft - waveform.size))
    with torch.inference_mode():
        db = transform(torch.from_numpy(waveform)).numpy()  # (n_mels, T)
    times = np.arange(db.shape[1], dtype=np.float64) * hop / sample_rate  # centred frames
    return db.astype(np.float32), times


# ----------------------------------------------------------------------------- attention


def _attention_rows(words, frame_times, attention, direction: str, head: int | None):
    """Validate and return (z (W, T_s), heads, direction) with words as rows."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'text→speech' or 'speech→text', not {direction!r}")
    direction = DIRECTIONS[direction]
    axes = "(heads, words, frames)" if direction == "text→speech" else "(heads, frames, words)"
    attention = np.asarray(attention, dtype=np.float64)
    if attention.ndim != 3:
        raise ValueError(
            f"attention must be 3-D {axes} for {direction}, got shape {attention.shape}; "
            "for a single head pass attention[None]"
        )
    if len(words) == 0:
        raise ValueError("words is empty: pass the transcript's words (Analysis.words)")
    # (H, W, T_s) either way from here on
    per_word = attention if direction == "text→speech" else attention.transpose(0, 2, 1)
    heads, num_words, num_frames = per_word.shape
    if num_words != len(words):
        raise ValueError(
            f"attention has {num_words} word {'rows' if direction == 'text→speech' else 'columns'}"
            f" but {len(words)} words were given; attention must be {axes} for {direction}"
        )
    frame_times = np.asarray(frame_times, dtype=np.float64)
    if frame_times.shape != (num_frames,):
        raise ValueError(
            f"frame_times has shape {frame_times.shape} but attention has {num_frames} speech "
            f"frames; pass one time (seconds) per frame (Analysis.frame_times)"
        )
    if head is None:
        return per_word.mean(axis=0), heads, direction
    if isinstance(head, bool) or not isinstance(head, int | np.integer) or not 0 <= head < heads:
        raise ValueError(
            f"head must be None (mean of heads) or an int in 0..{heads - 1}, not {head!r}"
        )
    return per_word[head], heads, direction


def _check_spectrogram(spectrogram) -> tuple[np.ndarray, np.ndarray] | None:
    if spectrogram is None:
        return None
    if not isinstance(spectrogram, tuple | list) or len(spectrogram) != 2:
        raise ValueError("spectrogram must be the (db, times) pair returned by plots.spectrogram")
    db, times = np.asarray(spectrogram[0]), np.asarray(spectrogram[1])
    if db.ndim != 2 or times.shape != (db.shape[1],):
        raise ValueError(
            f"spectrogram must be (db (n_mels, T), times (T,)), got {db.shape} and {times.shape}"
        )
    return db, times


def _check_word_times(word_times, num_words: int) -> list[tuple[float, float] | None] | None:
    if word_times is None:
        return None
    if len(word_times) != num_words:
        raise ValueError(
            f"word_times has {len(word_times)} entries but {num_words} words were given; "
            "pass one (start, end) in seconds or None per word"
        )
    spans = []
    for index, span in enumerate(word_times):
        if span is not None and (len(span) != 2 or not float(span[0]) <= float(span[1])):
            raise ValueError(f"word_times[{index}] must be (start, end) with start ≤ end, or None")
        spans.append(None if span is None else (float(span[0]), float(span[1])))
    return spans


def _attention_title(direction: str, head: int | None, heads: int) -> str:
    which = f"mean of {heads} heads" if head is None else f"head {head} (heads 0–{heads - 1})"
    if direction == "text→speech":
        name, meaning = "Text → speech", "each word's attention over the speech frames"
    else:
        name, meaning = (
            "Speech → text",
            "how much of each speech frame's attention goes to each word",
        )
    return f"{name} attention, {which}<br><sup>rows: {meaning}</sup>"


def _attention_trace(words, frame_times, z: np.ndarray, direction: str, rows: int) -> go.Heatmap:
    if direction == "text→speech":
        hover = (
            "word “%{customdata}” at %{x:.2f} s<br>"
            "%{z:.1%} of this word's attention falls on this speech frame<extra></extra>"
        )
    else:
        hover = (
            "speech frame at %{x:.2f} s<br>"
            "gives %{z:.1%} of its attention to the word “%{customdata}”<extra></extra>"
        )
    escaped = np.array([html.escape(str(w)) for w in words], dtype=object)
    return go.Heatmap(
        name="attention",
        z=z,  # (W, T_s)
        x=np.asarray(frame_times, dtype=np.float64),
        y=np.arange(len(words)),
        customdata=np.repeat(escaped[:, None], z.shape[1], axis=1),  # (W, T_s) word per cell
        colorscale="Blues",
        zmin=0.0,
        colorbar={
            "title": {"text": "attention"},
            "tickformat": ".0%",
            "len": 0.62 if rows == 2 else 1.0,
            "y": 0.0,
            "yanchor": "bottom",
        },
        hovertemplate=hover,
    )


def _spectrogram_trace(db: np.ndarray, times: np.ndarray) -> go.Heatmap:
    return go.Heatmap(
        name="spectrogram",
        z=db,  # (n_mels, T)
        x=times,
        y=np.arange(db.shape[0]),
        colorscale="Greys",
        showscale=False,
        hovertemplate="%{x:.2f} s, mel band %{y}: %{z:.0f} dB<br>"
        "darker = more energy in this pitch band at this moment<extra></extra>",
    )


def _add_word_spans(fig: go.Figure, words, spans, attention_row: int) -> None:
    """Outline each known word's span on its attention row; shade it on the spectrogram."""
    for index, span in enumerate(spans):
        if span is None:
            continue
        start, end = span
        fig.add_shape(
            type="rect",
            x0=start,
            x1=end,
            y0=index - 0.5,
            y1=index + 0.5,
            line={"color": SPAN_COLOR, "width": 2},
            fillcolor="rgba(0,0,0,0)",
            name=f"span of {words[index]}",
            row=attention_row,
            col=1,
        )
        if attention_row == 2:
            fig.add_vrect(
                x0=start,
                x1=end,
                fillcolor=SPAN_COLOR,
                opacity=0.08,  # a tint: the spectrogram must stay readable underneath
                line_width=0,
                layer="above",
                annotation_text=html.escape(str(words[index])),
                annotation_position="top left",
                annotation_font_size=10,
                row=1,
                col=1,
            )


def _layout_attention(fig: go.Figure, words, rows: int, title: str) -> None:
    fig.update_yaxes(
        title="word",
        tickmode="array",
        tickvals=list(range(len(words))),
        ticktext=[html.escape(str(w)) for w in words],
        autorange="reversed",
        row=rows,
        col=1,
    )
    fig.update_xaxes(title="time (s)", row=rows, col=1)
    base, smallest = (200, 420) if rows == 2 else (120, 350)
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        height=int(min(900, max(smallest, base + 22 * len(words)))),  # ~22 px per word row
        margin={"l": 90, "r": 30, "t": 80, "b": 50},
    )


def token_heatmap(
    words: Sequence[str],
    frame_times: np.ndarray,
    attention: np.ndarray,
    *,
    direction: str = "text→speech",
    head: int | None = None,
    spectrogram: tuple[np.ndarray, np.ndarray] | None = None,
    word_times: Sequence[tuple[float, float] | None] | None = None,
) -> go.Figure:
    """Word × time cross-attention, optionally under the utterance's spectrogram.

    Parameters
    ----------
    words : the W words (Analysis.words)
    frame_times : (T_s,) centre of each speech frame in seconds (Analysis.frame_times)
    attention : (H, W, T_s) for "text→speech" (rows sum to 1 over frames), or (H, T_s, W) for
        "speech→text" (shown transposed: words on y and time on x either way)
    direction : "text→speech" or "speech→text" ("->" also accepted)
    head : None for the mean over heads, or a head index in 0..H-1
    spectrogram : (db (n_mels, T), times (T,)) from `spectrogram`, drawn above with a shared x axis
    word_times : per word (start, end) seconds or None; known spans are outlined on their row and
        shaded on the spectrogram

    Returns
    -------
    Figure whose trace named "attention" has z of shape (W, T_s).
    """
    z, heads, direction = _attention_rows(words, frame_times, attention, direction, head)
    spec = _check_spectrogram(spectrogram)
    spans = _check_word_times(word_times, len(words))
    rows = 1 if spec is None else 2
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.35, 0.65] if rows == 2 else None,
    )
    if spec is not None:
        fig.add_trace(_spectrogram_trace(*spec), row=1, col=1)
        fig.update_yaxes(title="mel band", row=1, col=1)
    fig.add_trace(_attention_trace(words, frame_times, z, direction, rows), row=rows, col=1)
    if spans is not None:
        _add_word_spans(fig, words, spans, attention_row=rows)
    _layout_attention(fig, words, rows, _attention_title(direction, head, heads))
    return fig


# ----------------------------------------------------------------------------- instance map

POINT_MEANINGS = {
    "speech": "what the voice alone encodes",
    "text": "what the words alone encode",
    "fused": "the combined representation the classifier reads",
}


def _snippet(text: str, limit: int = 80) -> str:
    text = str(text)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _check_bank(bank_xy, bank_labels, bank_text):
    xy = np.asarray(bank_xy, dtype=np.float64)
    if xy.size == 0:  # an empty bank: no dots, only this utterance
        xy = xy.reshape(0, 2)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"bank_xy must be (N, 2) map coordinates, got shape {xy.shape}")
    labels = [str(label) for label in bank_labels]
    if len(labels) != len(xy):
        raise ValueError(f"bank_labels has {len(labels)} entries but bank_xy has {len(xy)} rows")
    if bank_text is not None and len(bank_text) != len(xy):
        raise ValueError(f"bank_text has {len(bank_text)} entries but bank_xy has {len(xy)} rows")
    return xy, labels, bank_text


def _check_points(points) -> dict[str, tuple[float, float]]:
    checked = {}
    for kind, xy in (points or {}).items():
        if kind not in POINT_SYMBOLS:
            raise ValueError(f"points keys must be among speech, text, fused, not {kind!r}")
        if np.shape(xy) != (2,):
            raise ValueError(f"points[{kind!r}] must be an (x, y) pair, got {xy!r}")
        checked[kind] = (float(xy[0]), float(xy[1]))
    return checked


def _bank_traces(xy: np.ndarray, labels: list[str], texts) -> list[go.Scatter]:
    traces = []
    for emotion in _emotion_order(labels):
        rows = [i for i, label in enumerate(labels) if label == emotion]
        hover = [f"“{_snippet(texts[i])}”" if texts is not None else "" for i in rows]
        traces.append(
            go.Scatter(
                x=xy[rows, 0],
                y=xy[rows, 1],
                mode="markers",
                name=f"bank: {emotion}",
                legendgroup="bank",
                marker={"color": _color(emotion), "size": 6, "opacity": 0.35},
                text=hover,
                hovertemplate=f"%{{text}}<br>a bank utterance labelled <b>{emotion}</b>"
                "<extra></extra>",
            )
        )
    return traces


def _point_trace(kind: str, x: float, y: float) -> go.Scatter:
    return go.Scatter(
        x=[x],
        y=[y],
        mode="markers+text",
        name=f"this utterance: {kind}",
        text=[kind],
        textposition="top center",
        marker={
            "symbol": POINT_SYMBOLS[kind],
            "size": 20 if kind == "fused" else 16,
            "color": MODALITY_COLORS[kind],
            "line": {"color": "white", "width": 1.5},
        },
        hovertemplate=f"this utterance, <b>{kind}</b> embedding: {POINT_MEANINGS[kind]}<br>"
        "placed among the bank utterances it is most similar to<extra></extra>",
    )


def _neighbour_traces(neighbours: Sequence[dict], anchor) -> list[go.Scatter]:
    for index, item in enumerate(neighbours):
        if "x" not in item or "y" not in item:
            raise ValueError(f"neighbours[{index}] needs keys 'x' and 'y' (its map position)")
    xs = [float(n["x"]) for n in neighbours]
    ys = [float(n["y"]) for n in neighbours]
    traces = []
    if anchor is not None:
        line_x = [v for x in xs for v in (anchor[0], x, None)]  # None breaks the line
        line_y = [v for y in ys for v in (anchor[1], y, None)]
        traces.append(
            go.Scatter(
                x=line_x,
                y=line_y,
                mode="lines",
                name="nearest neighbours (links)",
                line={"color": "rgba(0,0,0,0.35)", "width": 1},
                hoverinfo="skip",
                showlegend=False,
            )
        )
    hover = [
        f"“{_snippet(n.get('text', ''))}”<br>labelled <b>{html.escape(str(n.get('label', '?')))}"
        f"</b>, speaker {html.escape(str(n.get('speaker', '?')))}<br>cosine distance "
        f"{float(n.get('distance', float('nan'))):.3f} (0 = same direction; smaller = more alike)"
        for n in neighbours
    ]
    traces.append(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            name="nearest neighbours",
            text=hover,
            marker={
                "symbol": "circle-open",
                "size": 14,
                "line": {"width": 2},
                "color": [_color(str(n.get("label", ""))) for n in neighbours],
            },
            hovertemplate="%{text}<extra>neighbour</extra>",
        )
    )
    return traces


def instance_map(
    bank_xy: np.ndarray,
    bank_labels: Sequence[str],
    points: Mapping[str, Sequence[float]],
    neighbours: Sequence[dict] | None = None,
    *,
    bank_text: Sequence[str] | None = None,
    title: str = "Instance level: where this utterance sits among the reference bank",
) -> go.Figure:
    """The bank's 2-D map with this utterance's embeddings and its nearest neighbours.

    Parameters
    ----------
    bank_xy : (N, 2) map coordinates of the bank utterances (e.g. bank.arrays["fused_xy"])
    bank_labels : N emotion labels; one trace (and legend entry) per emotion
    points : {"speech" | "text" | "fused": (x, y)} this utterance (Analysis.map_position)
    neighbours : dicts with "x", "y", "text", "label", "distance", "speaker" (Analysis.neighbours);
        linked to the fused point, or to the first point when there is no fused one
    bank_text : N transcripts shown on hover

    Returns
    -------
    Figure: one trace per bank emotion, one per point, then (with neighbours) a link trace when
    there is a point to link from, and one ring trace holding every neighbour.
    """
    xy, labels, texts = _check_bank(bank_xy, bank_labels, bank_text)
    checked = _check_points(points)
    fig = go.Figure(_bank_traces(xy, labels, texts))
    for kind, (x, y) in checked.items():
        fig.add_trace(_point_trace(kind, x, y))
    if neighbours:
        anchor = checked.get("fused", next(iter(checked.values()), None))
        fig.add_traces(_neighbour_traces(neighbours, anchor))
    fig.update_layout(
        template=TEMPLATE,
        title=f"{html.escape(title)}<br><sup>nearby points are utterances the model represents "
        "alike; colours are their emotion labels</sup>",
        height=450,
        xaxis={"title": "UMAP 1", "zeroline": False},
        yaxis={"title": "UMAP 2", "zeroline": False},
        legend={"itemsizing": "constant"},
        margin={"l": 60, "r": 30, "t": 80, "b": 50},
    )
    return fig


# ----------------------------------------------------------------------------- distributions


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _check_gaussians(speech_mu, speech_sigma, text_mu, text_sigma, axes, center):
    """Validate shapes; return ({"speech": (mu, sigma), "text": …}, axes (2, g), center (g,))."""
    given = {
        "speech_mu": speech_mu,
        "speech_sigma": speech_sigma,
        "text_mu": text_mu,
        "text_sigma": text_sigma,
    }
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in given.items()}
    width = arrays["speech_mu"].shape
    if len(width) != 1 or width[0] == 0:
        raise ValueError(f"speech_mu must be a non-empty (g,) vector, got shape {width}")
    for name, array in arrays.items():
        if array.shape != width:
            raise ValueError(
                f"{name} has shape {array.shape} but speech_mu has {width}: pass the means and "
                "standard deviations of both Gaussians as (g,) vectors of one width"
            )
    for name in ("speech_sigma", "text_sigma"):
        if not np.all(arrays[name] > 0):
            raise ValueError(f"{name} must be positive standard deviations (exp of log σ)")
    g = width[0]
    axes, center = np.asarray(axes, dtype=np.float64), np.asarray(center, dtype=np.float64)
    if axes.shape != (2, g):
        raise ValueError(
            f"axes must be (2, g) = (2, {g}), the bank's two principal axes "
            f"(bank.arrays['pca_axes']), got shape {axes.shape}"
        )
    if center.shape != (g,):
        raise ValueError(
            f"center must be (g,) = ({g},) (bank.arrays['pca_center']), got shape {center.shape}"
        )
    gaussians = {
        "speech": (arrays["speech_mu"], arrays["speech_sigma"]),
        "text": (arrays["text_mu"], arrays["text_sigma"]),
    }
    return gaussians, axes, center


def _ellipse_traces(kind: str, mu, sigma, axes, center, points: int = 101) -> list[go.Scatter]:
    """1σ and 2σ ellipses of N(mu, diag(sigma²)) projected on `axes`, and the projected mean."""
    mean = axes @ (mu - center)  # (2,)
    covariance = (axes * sigma**2) @ axes.T  # (2, 2) = axes diag(σ²) axesᵀ
    values, vectors = np.linalg.eigh(covariance)
    angle = np.linspace(0.0, 2.0 * np.pi, points)
    circle = np.stack([np.cos(angle), np.sin(angle)])  # (2, points)
    unit = vectors @ (np.sqrt(np.clip(values, 0.0, None))[:, None] * circle)  # (2, points)
    color = MODALITY_COLORS[kind]
    traces = []
    for k in (1, 2):
        curve = mean[:, None] + k * unit
        curve[:, -1] = curve[:, 0]  # closed exactly, despite rounding in cos/sin
        traces.append(
            go.Scatter(
                x=curve[0],
                y=curve[1],
                mode="lines",
                name=f"{kind} {k}σ",
                legendgroup=kind,
                line={
                    "color": color,
                    "width": 2 if k == 1 else 1,
                    "dash": "solid" if k == 1 else "dot",
                },
                fill="toself",
                fillcolor=_rgba(color, 0.12 if k == 1 else 0.04),
                hoveron="points+fills",  # the outline explains; the inside names the ellipse
                hovertemplate=f"{kind} Gaussian, {k}σ ellipse<br>about {ELLIPSE_MASS[k]}% of its "
                "spread, seen on these two axes, lies inside<extra></extra>",
            )
        )
    traces.append(
        go.Scatter(
            x=[mean[0]],
            y=[mean[1]],
            mode="markers",
            name=f"{kind} mean",
            legendgroup=kind,
            marker={"symbol": POINT_SYMBOLS[kind], "size": 12, "color": color},
            hovertemplate=f"{kind} mean, on the bank's two main axes<br>"
            "(%{x:.2f}, %{y:.2f})<extra></extra>",
        )
    )
    return traces


def _bank_means_trace(bank_points, bank_labels) -> go.Scatter:
    points = np.asarray(bank_points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"bank_points must be (N, 2) projected bank means, got {points.shape}")
    if bank_labels is not None and len(bank_labels) != len(points):
        raise ValueError(
            f"bank_labels has {len(bank_labels)} entries but bank_points has {len(points)} rows"
        )
    labels = ["unlabelled"] * len(points) if bank_labels is None else list(map(str, bank_labels))
    return go.Scatter(
        x=points[:, 0],
        y=points[:, 1],
        mode="markers",
        name="bank means",
        marker={"size": 5, "opacity": 0.25, "color": [_color(label) for label in labels]},
        text=labels,
        hovertemplate="a bank utterance's mean (%{text})<extra></extra>",
    )


def _normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2.0 * np.pi))


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def _line_densities(gaussians: dict, axes: np.ndarray, points: int = 400):
    """Both Gaussians seen along the line joining their means.

    Returns
    -------
    x : (M,) positions u·x along the unit vector u = (μs − μt)/‖μs − μt‖ (the first axis when
        the means coincide); dense near each mean so a narrow density is sampled well
    densities : {"speech": (M,), "text": (M,)} the 1-D densities N(u·μ, u·diag(σ²)·u)
    """
    (speech_mu, _), (text_mu, _) = gaussians["speech"], gaussians["text"]
    gap = speech_mu - text_mu
    norm = np.linalg.norm(gap)
    direction = gap / norm if norm > 1e-12 else axes[0] / max(np.linalg.norm(axes[0]), 1e-12)
    params = {
        kind: (float(direction @ mu), float(np.sqrt(direction**2 @ sigma**2)))
        for kind, (mu, sigma) in gaussians.items()
    }
    spans = [(mean - 5 * std, mean + 5 * std) for mean, std in params.values()]
    grids = [np.linspace(min(s[0] for s in spans), max(s[1] for s in spans), points)]
    grids += [np.linspace(low, high, points) for low, high in spans]
    x = np.unique(np.concatenate(grids))
    return x, {kind: _normal_pdf(x, mean, std) for kind, (mean, std) in params.items()}


def _density_traces(gaussians: dict, axes: np.ndarray) -> list[go.Scatter]:
    x, densities = _line_densities(gaussians, axes)
    traces = []
    for kind, density in densities.items():
        color = MODALITY_COLORS[kind]
        traces.append(
            go.Scatter(
                x=x,
                y=density,
                mode="lines",
                name=f"{kind} density",
                legendgroup=kind,
                showlegend=False,
                line={"color": color, "width": 2},
                fill="tozeroy",
                fillcolor=_rgba(color, 0.2),
                hovertemplate=f"{kind}: density %{{y:.3g}} at %{{x:.3g}}<br>taller = more of this "
                "Gaussian lies here<extra></extra>",
            )
        )
    shared = np.minimum(densities["speech"], densities["text"])
    area = _trapezoid(shared, x)
    traces.append(
        go.Scatter(
            x=x,
            y=shared,
            mode="lines",
            name=f"shared area along this line: {area:.0%}",
            line={"color": "rgba(0,0,0,0.6)", "width": 0.5},
            fill="tozeroy",
            fillcolor="rgba(0,0,0,0.25)",
            hovertemplate=f"where the two densities overlap: {area:.0%} of each one's area is "
            "shared along this line<extra></extra>",
        )
    )
    return traces


def _percentile_phrase(percentiles: Mapping | None, key: str) -> str:
    percentile = (percentiles or {}).get(key)
    if percentile is None:
        return ""
    return f"; {_ordinal(percentile)} percentile among matched pairs in the bank"


def _distribution_caption(w2, similarity, overlap, percentiles) -> str:
    lines = []
    if w2 is not None:
        lines.append(
            f"W2 distance {w2:.3g}: how far apart the two Gaussians are (0 = identical)"
            + _percentile_phrase(percentiles, "w2_distance")
        )
    if similarity is not None:
        lines.append(
            f"similarity {similarity:.3g}: the score the distribution loss raises for "
            "matching pairs (higher = closer)" + _percentile_phrase(percentiles, "similarity")
        )
    if overlap is not None:
        lines.append(
            f"overlap {overlap:.0%}: how much the two Gaussians share, per dimension "
            "(100% = identical)" + _percentile_phrase(percentiles, "overlap")
        )
    return "<br>".join(lines)


def _layout_distribution(fig: go.Figure, caption: str) -> None:
    lines = caption.count("<br>") + 1 if caption else 0
    fig.update_xaxes(title="principal axis 1", row=1, col=1)
    fig.update_yaxes(title="principal axis 2", scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_xaxes(
        title="position along the line from the text mean to the speech mean", row=1, col=2
    )
    fig.update_yaxes(title="probability density", rangemode="tozero", row=1, col=2)
    if caption:
        fig.add_annotation(
            text=caption,
            xref="paper",
            yref="paper",
            x=0.0,
            y=0.0,
            yshift=-70,  # pixels: below the x-axis titles
            xanchor="left",
            yanchor="top",
            align="left",
            showarrow=False,
            font={"size": 12},
        )
    fig.update_layout(
        template=TEMPLATE,
        title="Distribution level: do speech and text describe the utterance alike?"
        "<br><sup>each modality is a Gaussian; matched speech and text should overlap</sup>",
        height=450 + 20 * lines,
        margin={"l": 60, "r": 30, "t": 90, "b": 60 + (30 + 20 * lines if lines else 0)},
        legend={"x": 1.02, "y": 1.0, "yanchor": "top", "tracegroupgap": 6},
    )


def distribution_view(
    speech_mu: np.ndarray,
    speech_sigma: np.ndarray,
    text_mu: np.ndarray,
    text_sigma: np.ndarray,
    *,
    axes: np.ndarray,
    center: np.ndarray,
    w2: float | None = None,
    similarity: float | None = None,
    overlap: float | None = None,
    percentiles: Mapping[str, float | None] | None = None,
    bank_points: np.ndarray | None = None,
    bank_labels: Sequence[str] | None = None,
) -> go.Figure:
    """The speech and text Gaussians of one utterance, drawn two ways.

    Parameters
    ----------
    speech_mu, speech_sigma, text_mu, text_sigma : (g,) means and standard deviations of the two
        diagonal Gaussians (Analysis.speech_mu, …)
    axes : (2, g) the bank's two principal axes; center : (g,) the bank's mean
    w2, similarity, overlap : Analysis.w2_distance, .similarity, .overlap, put in plain words
    percentiles : {"w2_distance": p, "similarity": p, "overlap": p} (Analysis.percentiles)
    bank_points : (N, 2) bank means already projected (bank.projected_means()); bank_labels : N

    Returns
    -------
    Figure. Left: 1σ and 2σ ellipses of each Gaussian projected on the axes (mean
    axes @ (μ − center), covariance axes diag(σ²) axesᵀ), means marked. Right: both Gaussians
    along the line joining their means, as filled 1-D densities with the shared area shaded.
    """
    gaussians, axes, center = _check_gaussians(
        speech_mu, speech_sigma, text_mu, text_sigma, axes, center
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.12,
        subplot_titles=(
            "both Gaussians on the bank's two main axes",
            "both Gaussians along the line joining their means",
        ),
    )
    if bank_points is not None:
        fig.add_trace(_bank_means_trace(bank_points, bank_labels), row=1, col=1)
    for kind, (mu, sigma) in gaussians.items():
        fig.add_traces(_ellipse_traces(kind, mu, sigma, axes, center), rows=1, cols=1)
    fig.add_traces(_density_traces(gaussians, axes), rows=1, cols=2)
    _layout_distribution(fig, _distribution_caption(w2, similarity, overlap, percentiles))
    return fig


# ----------------------------------------------------------------------------- similarities


def _similarity_trace(matrix: np.ndarray, labels: list[str], row_name: str, col_name: str):
    ticks = [f"{i + 1} · {html.escape(label)}" for i, label in enumerate(labels)]
    notes = np.empty(matrix.shape, dtype=object)  # (B, B) plain-words hover per cell
    for row, col in np.ndindex(matrix.shape):
        kind = (
            "a matching pair (the same utterance): should be high"
            if row == col
            else "different utterances: should be lower"
        )
        notes[row, col] = f"{row_name} {ticks[row]} vs {col_name} {ticks[col]}<br>{kind}"
    return go.Heatmap(
        name="similarity",
        z=matrix,  # (B, B)
        x=np.arange(len(labels)),
        y=np.arange(len(labels)),
        customdata=notes,
        coloraxis="coloraxis",
        hovertemplate="cosine similarity %{z:.2f}<br>%{customdata}<extra></extra>",
    ), ticks


def _check_square(matrix, labels: Sequence[str], name: str) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square (B, B) matrix, got shape {matrix.shape}")
    if matrix.shape[0] != len(labels):
        raise ValueError(
            f"{name} is {matrix.shape[0]}×{matrix.shape[1]} but {len(labels)} "
            "labels were given: pass one emotion label per batch item"
        )
    return matrix


def _add_similarity_panel(fig, matrix, labels: list[str], col: int, row_name, col_name) -> None:
    trace, ticks = _similarity_trace(matrix, labels, row_name, col_name)
    fig.add_trace(trace, row=1, col=col)
    for i in range(len(labels)):  # outline the matching pairs
        fig.add_shape(
            type="rect",
            x0=i - 0.5,
            x1=i + 0.5,
            y0=i - 0.5,
            y1=i + 0.5,
            line={"color": "black", "width": 2},
            row=1,
            col=col,
        )
    axis = {"tickmode": "array", "tickvals": list(range(len(labels))), "ticktext": ticks}
    fig.update_xaxes(title=col_name, **axis, row=1, col=col)
    fig.update_yaxes(title=row_name, autorange="reversed", **axis, row=1, col=col)


def similarity_matrices(
    matrices: Sequence[np.ndarray],
    labels: Sequence[str],
    titles: Sequence[str],
    *,
    title: str = "Instance level: speech × text cosine similarities in a batch",
    row_name: str = "speech",
    col_name: str = "text",
) -> go.Figure:
    """Several (B, B) similarity matrices side by side on one shared colour scale.

    Parameters
    ----------
    matrices : (B, B) arrays; entry [i, j] compares `row_name` item i with `col_name` item j
    labels : B emotion labels (ticks read "1 · angry")
    titles : one subplot title per matrix, e.g. "MGCMA", "without instance alignment"

    Returns
    -------
    Figure with one heatmap per matrix, the diagonal (matching pairs) outlined.
    """
    if len(matrices) == 0 or len(titles) != len(matrices):
        raise ValueError(
            f"pass one title per matrix: {len(matrices)} matrices, {len(titles)} "
            "titles (and at least one matrix)"
        )
    labels = [str(label) for label in labels]
    checked = [_check_square(m, labels, f"matrices[{i}]") for i, m in enumerate(matrices)]
    fig = make_subplots(
        rows=1,
        cols=len(checked),
        subplot_titles=[html.escape(t) for t in titles],
        horizontal_spacing=0.16,  # room for the next panel's tick labels
    )
    for col, matrix in enumerate(checked, start=1):
        _add_similarity_panel(fig, matrix, labels, col, row_name, col_name)
    extent = max([1e-6] + [float(np.abs(m).max()) for m in checked if m.size])
    fig.update_layout(
        template=TEMPLATE,
        title=f"{html.escape(title)}<br><sup>outlined diagonal: matching {row_name}–{col_name} "
        "pairs; instance alignment should make it stand out</sup>",
        coloraxis={
            "colorscale": "RdBu",
            "cmin": -extent,
            "cmax": extent,
            "colorbar": {"title": {"text": "cosine"}},
        },
        height=450,
        margin={"l": 90, "r": 30, "t": 100, "b": 80},
    )
    return fig


def similarity_matrix(
    matrix: np.ndarray,
    labels: Sequence[str],
    *,
    title: str = "Instance level: speech × text cosine similarities in a batch",
    row_name: str = "speech",
    col_name: str = "text",
) -> go.Figure:
    """One (B, B) similarity matrix; see `similarity_matrices` for several side by side."""
    return similarity_matrices(
        [matrix], labels, [""], title=title, row_name=row_name, col_name=col_name
    )


# ----------------------------------------------------------------------------- export


def to_html(fig: go.Figure) -> str:
    """A complete HTML page with plotly.js inline, so it opens offline."""
    return fig.to_html(full_html=True, include_plotlyjs=True)


def to_png(fig: go.Figure, scale: float = 2.0) -> bytes | None:
    """PNG bytes through kaleido, or None when kaleido is not installed or cannot render."""
    if importlib.util.find_spec("kaleido") is None:
        return None
    try:
        return fig.to_image(format="png", scale=scale)
    except Exception:  # kaleido present but unusable (e.g. no Chrome): the app just skips PNGs
        return None


# ------------------------------------------------------------------------- compare variants


VARIANT_NAMES = {
    "full": "MGCMA (full)",
    "no_distribution": "without distribution",
    "no_instance": "without instance",
    "no_token": "without token",
    "speech_only": "speech only",
    "text_only": "text only",
}


def variant_bars(rows: Sequence[Mapping]) -> go.Figure:
    """Grouped bars: for each checkpoint, its probability of each emotion.

    Parameters
    ----------
    rows : [{"variant": name, "label": predicted, emotion: probability, …}, …]
    """
    if not rows:
        raise ValueError("variant_bars needs at least one row of probabilities")
    emotions = [e for e in EMOTION_COLORS if e in rows[0]]
    fig = go.Figure()
    for emotion in emotions:
        fig.add_trace(
            go.Bar(
                name=emotion,
                x=[VARIANT_NAMES.get(r["variant"], r["variant"]) for r in rows],
                y=[100.0 * r[emotion] for r in rows],
                marker_color=_color(emotion),
                hovertemplate=f"%{{x}}: {emotion} %{{y:.1f}}%<extra></extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        height=380,
        title="The same input through each checkpoint",
        yaxis={"title": "probability (%)", "range": [0, 100]},
        xaxis={"title": "checkpoint"},
        margin={"l": 60, "r": 20, "t": 60, "b": 60},
    )
    return fig


def two_views(
    db: np.ndarray,
    times: np.ndarray,
    words: Sequence[str],
    word_times: Sequence[tuple[float, float] | None] | None = None,
) -> go.Figure:
    """The sound (log-mel spectrogram) with the words laid on it where their timing is known.

    Parameters
    ----------
    db, times : from `spectrogram(samples)`: (n_mels, T) and (T,)
    words : the transcript's words
    word_times : (start, end) in seconds per word, or None where unknown
    """
    db, times = _check_spectrogram((db, times))
    fig = go.Figure(_spectrogram_trace(db, times))
    spans = _check_word_times(word_times, len(words)) or [None] * len(words)
    for word, span in zip(words, spans, strict=True):
        if span is not None:
            fig.add_vrect(
                x0=span[0],
                x1=span[1],
                fillcolor=SPAN_COLOR,
                opacity=0.08,
                line_width=1,
                line_color=SPAN_COLOR,
                layer="above",
                annotation_text=html.escape(str(word)),
                annotation_position="top left",
                annotation_font_size=11,
            )
    shown = " ".join(html.escape(str(w)) for w in words)
    fig.update_layout(
        template=TEMPLATE,
        title=f"Two views of one utterance<br><sup>sound: the spectrogram · words: “{shown}”</sup>",
        height=380,
        xaxis={"title": "time (s)"},
        yaxis={"title": "mel band (low → high pitch)"},
        margin={"l": 70, "r": 20, "t": 90, "b": 50},
    )
    return fig
