"""Token level: the sound and the words of one utterance, and the cross-attention between them.

Shape letters: H heads, W words, T_s speech frames, T spectrogram frames.

Figures:
    spectrogram         log-mel array (dB) and its time axis, for `token_heatmap` and `two_views`
    token_heatmap       word ↔ speech-frame cross-attention under a spectrogram (fine granularity)
    two_views           the spectrogram with each word laid on its time span
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from demo.plots.common import SPAN_COLOR, TEMPLATE
from mgcma.constants import SAMPLE_RATE

WINDOW_SECONDS = 0.025  # 25 ms analysis window → n_fft = 400 at 16 kHz
HOP_SECONDS = 0.010  # 10 ms hop → 100 spectrogram frames per second
TOP_DB = 80.0  # dynamic range kept in the log-mel image
# a word's label on the spectrogram, alternately above and below: short neighbours overlapped
_LABEL_PLACES = ("top left", "bottom left")

DIRECTIONS = {
    "text→speech": "text→speech",
    "text->speech": "text→speech",
    "speech→text": "speech→text",
    "speech->text": "speech→text",
}


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
    # counted from 1, as the app's head menu counts them
    which = f"mean of {heads} heads" if head is None else f"head {head + 1} of {heads}"
    if direction == "text→speech":
        name, meaning = "Text → speech", "each word's attention over the speech frames"
    else:
        name, meaning = (
            "Speech → text",
            "how much of each speech frame's attention goes to each word",
        )
    return f"{name} attention, {which}<br><sup>rows: {meaning}</sup>"


def _spectrogram_note(title: str) -> str:
    return title.replace("</sup>", "; above: the spectrogram, darker = louder</sup>")


def time_span(frame_times, spectrogram_times=None, duration: float | None = None) -> float:
    """The end of the shared time axis, which starts at 0: the clip's duration when known,
    else where the last frame's cell ends. Heatmap cells reach half a frame past their centre,
    so without one range the spectrogram and the attention ended at different instants."""
    if duration is not None:
        return float(duration)
    ends = []
    for centres in (frame_times, spectrogram_times):
        if centres is not None and len(centres):
            centres = np.asarray(centres, dtype=np.float64)
            step = centres[-1] - centres[-2] if len(centres) > 1 else 0.0
            ends.append(centres[-1] + step / 2)
    return float(max(ends, default=0.0))


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
            "title": {"text": "attention<br>(darker =<br>more)"},
            "tickformat": ".0%",
            "len": 0.62 if rows == 2 else 1.0,
            "y": 0.0,
            "yanchor": "bottom",
        },
        hovertemplate=hover,
    )


def _spectrogram_trace(db: np.ndarray, times: np.ndarray, top: bool) -> go.Heatmap:
    """Grey-scale log-mel image: darker is louder (Greys runs from white to black)."""
    return go.Heatmap(
        name="spectrogram",
        z=db,  # (n_mels, T)
        x=times,
        y=np.arange(db.shape[0]),
        colorscale="Greys",
        # above the attention the strip is too short for a bar: the title says it instead
        showscale=not top,
        colorbar={"title": {"text": "dB<br>(darker =<br>louder)"}},
        hovertemplate="%{x:.2f} s, mel band %{y}: %{z:.0f} dB<br>"
        "darker = more energy in this pitch band at this moment<extra></extra>",
    )


def _add_word_spans(fig: go.Figure, words, spans, attention_row: int) -> None:
    """Outline each known word's span on its attention row; shade it on the spectrogram."""
    outlines = []
    for index, span in enumerate(spans):
        if span is not None:
            x, y = _axis_refs(fig, attention_row)
            outlines.append(
                {"type": "rect", "x0": span[0], "x1": span[1], "y0": index - 0.5,
                 "y1": index + 0.5, "xref": x, "yref": y, "fillcolor": "rgba(0,0,0,0)",
                 "line": {"color": SPAN_COLOR, "width": 2}, "name": f"span of {words[index]}"}
            )  # fmt: skip
    shapes, labels = [], []
    if attention_row == 2:  # a light tint: the spectrogram must stay readable underneath
        x, y = _axis_refs(fig, 1)
        shapes, labels = _span_bands(words, spans, x, y, line_width=0, font_size=10)
    # one layout update: plotly's add_shape / add_vrect per word cost ≈ 40 % of a click's CPU
    _append_layout(fig, shapes=[*outlines, *shapes], annotations=labels)


def _axis_refs(fig: go.Figure, row: int) -> tuple[str, str]:
    """("x2", "y2 domain"…) of subplot (row, 1): the references a shape on it names."""
    subplot = fig.get_subplot(row, 1)
    x = subplot.xaxis.plotly_name.replace("axis", "")  # xaxis2 → x2
    return x, subplot.yaxis.plotly_name.replace("axis", "")


def _span_bands(words, spans, x: str, y: str, *, line_width: float, font_size: int):
    """A full-height tinted band per known word span and its label, as plotly's add_vrect draws
    them (alternately at the top and the bottom, so neighbours never collide)."""
    shapes, labels = [], []
    for index, span in enumerate(spans):
        if span is None:
            continue
        line = {"width": line_width} | ({"color": SPAN_COLOR} if line_width else {})
        shapes.append(
            {"type": "rect", "x0": span[0], "x1": span[1], "xref": x, "y0": 0, "y1": 1,
             "yref": f"{y} domain", "fillcolor": SPAN_COLOR, "opacity": 0.08, "layer": "above",
             "line": line}
        )  # fmt: skip
        top = _LABEL_PLACES[index % 2] == "top left"
        labels.append(
            {"text": html.escape(str(words[index])), "x": span[0], "xref": x, "xanchor": "left",
             "y": 1 if top else 0, "yref": f"{y} domain", "yanchor": "top" if top else "bottom",
             "showarrow": False, "font": {"size": font_size},
             "bgcolor": "rgba(255,255,255,0.75)"}
        )  # fmt: skip
    return shapes, labels


def _append_layout(fig: go.Figure, shapes: list, annotations: list) -> None:
    fig.update_layout(
        shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *annotations]
    )


def _layout_attention(fig: go.Figure, words, rows: int, title: str, end: float) -> None:
    # the bottom row's axis is the one the others match: one range for all, the clip's span
    # (a range on a matching axis too made plotly.js fail to scale them)
    fig.update_xaxes(range=[0.0, end], row=rows, col=1)
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
    duration: float | None = None,
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
    duration : the clip's length in seconds (Analysis.duration): the shared time axis of both
        panels spans [0, duration]; without it, it ends where the last frame's cell ends

    Returns
    -------
    Figure whose trace named "attention" has z of shape (W, T_s).
    """
    z, heads, direction = _attention_rows(words, frame_times, attention, direction, head)
    spec = _check_spectrogram(spectrogram)
    spans = _check_word_times(word_times, len(words))
    rows = 1 if spec is None else 2
    end = time_span(frame_times, None if spec is None else spec[1], duration)
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.35, 0.65] if rows == 2 else None,
    )
    if spec is not None:
        fig.add_trace(_spectrogram_trace(*spec, top=True), row=1, col=1)
        fig.update_yaxes(title="mel band", row=1, col=1)
    fig.add_trace(_attention_trace(words, frame_times, z, direction, rows), row=rows, col=1)
    if spans is not None:
        _add_word_spans(fig, words, spans, attention_row=rows)
    title = _attention_title(direction, head, heads)
    _layout_attention(fig, words, rows, title if spec is None else _spectrogram_note(title), end)
    return fig


# ----------------------------------------------------------------------------- two views


def two_views(
    db: np.ndarray,
    times: np.ndarray,
    words: Sequence[str],
    word_times: Sequence[tuple[float, float] | None] | None = None,
    duration: float | None = None,
) -> go.Figure:
    """The sound (log-mel spectrogram) with the words laid on it where their timing is known.

    Parameters
    ----------
    db, times : from `spectrogram(samples)`: (n_mels, T) and (T,)
    words : the transcript's words
    word_times : (start, end) in seconds per word, or None where unknown
    duration : the clip's length in seconds: the time axis spans [0, duration]
    """
    db, times = _check_spectrogram((db, times))
    end = time_span(None, times, duration)
    fig = go.Figure(_spectrogram_trace(db, times, top=False))
    spans = _check_word_times(word_times, len(words)) or [None] * len(words)
    shapes, labels = _span_bands(words, spans, "x", "y", line_width=1, font_size=11)
    _append_layout(fig, shapes, labels)
    where = "each word's box: when it was spoken" if any(spans) else "word timings unknown"
    fig.update_layout(
        template=TEMPLATE,
        title=f"Two views of one utterance<br><sup>the sound as a spectrogram (darker = louder); "
        f"{where}</sup>",
        height=380,
        xaxis={"title": "time (s)", "range": [0.0, end]},
        yaxis={"title": "mel band (low → high pitch)"},
        margin={"l": 70, "r": 20, "t": 90, "b": 50},
    )
    return fig
