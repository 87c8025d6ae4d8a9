"""Plain callbacks behind the app's events: inputs in, figures and messages out.

Every callback turns a `UserFacingError` into `gr.Error` (a visible message, never a traceback);
anything unexpected is logged with its traceback on the server and reported briefly, and the
server keeps serving.
"""

from __future__ import annotations

import functools
import html
import logging

import gradio as gr

from demo import plots
from demo.downloads import write_html, write_json
from demo.service import Explorer, UserFacingError
from demo.walkthrough import Walkthrough

log = logging.getLogger("mgcma.app")


def user_errors(function):
    """Show UserFacingError as it is; anything else as a short message (traceback in the log)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except UserFacingError as error:  # gr.Error renders HTML; the text may hold a file name
            raise gr.Error(html.escape(str(error), quote=False), print_exception=False) from error
        except Exception as error:  # noqa: BLE001 - the server must stay up
            log.exception("unexpected failure in %s", function.__name__)
            raise gr.Error(
                f"Something went wrong with this input ({type(error).__name__}); the app is still "
                "running — try another clip or transcript.",
                print_exception=False,
            ) from error

    return wrapper


def head_choices(heads: int) -> list[str]:
    """The head menu: "mean", then the heads counted from 1, as the figure's title counts them."""
    return ["mean"] + [str(h + 1) for h in range(heads)]


def _head(value) -> int | None:
    """A head menu entry → the head's index (None: the mean)."""
    return None if value in (None, "", "mean") else int(value) - 1


def _notes(analysis) -> str:
    lines = [f"**Prediction: {analysis.label}** ({100 * analysis.probs[analysis.label]:.0f} %)"]
    lines += [f"- {html.escape(note)}" for note in analysis.notes]
    return "\n".join(lines)


def compare_headers(emotions) -> list[str]:
    """Column names of the Compare tab's table: probabilities in %, as in its chart."""
    return ["checkpoint", "prediction", *(f"{e} %" for e in emotions)]


class Callbacks:
    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer

    def build_walkthrough(self) -> Walkthrough:
        return Walkthrough(self.explorer)

    @user_errors
    def analyze(self, audio, transcript, whisper, head, direction, space, state):
        explorer, views = self.explorer, self.explorer.views
        state = state or {}
        # Whisper's timings from the Transcribe button, if they belong to this very clip
        words = state.get("words") if state.get("audio") == audio else None
        analysis, clip = explorer.analyze(audio, transcript, words=words, whisper=whisper)
        prediction = views.prediction_figure(analysis)
        token = views.token_figure(analysis, clip, _head(head), direction)
        instance, neighbours = views.instance_view(analysis, space)
        distribution = views.distribution_figure(analysis)
        state = {"analysis": analysis, "clip": clip, "words": words, "audio": audio}
        notes = _notes(analysis)
        return (
            prediction,
            token,
            instance,
            neighbours,
            distribution,
            notes,
            write_json(analysis),
            state,
            analysis.transcript,
            explorer.whisper_status(whisper),  # the header, once Whisper was tried
        )

    @user_errors
    def redraw_instance(self, state, space):
        if not state or "analysis" not in state:
            return None, []
        return self.explorer.views.instance_view(state["analysis"], space)

    @user_errors
    def transcribe(self, audio, whisper):
        """The Transcribe button: words into the box, Whisper's status beside it and above."""
        clip = self.explorer.read_audio(audio)
        text, words, status = self.explorer.transcribe(clip, whisper)
        state = {"words": words, "audio": audio}  # for Analyze
        # Markdown would take "<urlopen error …>" for a tag: escaped for the page only
        return text, html.escape(status), state, self.explorer.whisper_status(whisper)

    @user_errors
    def api_transcribe(self, audio):
        """API: audio file → {"text", "words", "status"}, the status as plain text."""
        clip = self.explorer.read_audio(audio)
        text, words, status = self.explorer.transcribe(clip)
        return {"text": text, "words": words, "status": status}

    @user_errors
    def redraw_tokens(self, state, head, direction):
        if not state or "analysis" not in state:
            return None
        views = self.explorer.views
        return views.token_figure(state["analysis"], state["clip"], _head(head), direction)

    @user_errors
    def figures_html(self, state):
        if not state or "analysis" not in state:
            raise UserFacingError("Analyse a clip first.")
        analysis, clip = state["analysis"], state["clip"]
        return write_html(self.explorer.views.figures(analysis, clip))

    @user_errors
    def compare(self, audio, transcript):
        """(the input in words, chart, table) for the Compare tab."""
        rows = self.explorer.compare(audio, transcript)
        figure = plots.variant_bars(rows)
        emotions = self.explorer.model.emotions
        table = [  # the chart's names and units
            [
                plots.VARIANT_NAMES.get(r["variant"], r["variant"]),
                r["label"],
                *(round(100 * r[e], 1) for e in emotions),
            ]
            for r in rows
        ]
        described = self.explorer.describe_input(audio, transcript)
        return described, figure, gr.Dataframe(value=table, headers=compare_headers(emotions))

    @user_errors
    def api_analyze(self, audio, transcript):
        """API: (audio file, transcript; empty means Whisper) → the analysis as JSON."""
        analysis, _ = self.explorer.analyze(audio, transcript)
        return analysis.to_dict()
