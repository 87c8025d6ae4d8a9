"""Plain callbacks behind the app's events: inputs in, figures and messages out.

Every callback turns a `UserFacingError` into `gr.Error` (a visible message, never a traceback);
anything unexpected is logged with its traceback on the server and reported briefly, and the
server keeps serving.
"""

from __future__ import annotations

import functools
import html
import logging
from typing import Any

import gradio as gr
from pydantic import RootModel

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


class PlainJSON(RootModel[Any]):
    """A value that is already plain JSON (dicts, lists, str, numbers, None), sent as it is.

    gr.api hands what its function returns to Gradio unprocessed, but Gradio still walks every
    dict and list of it looking for files to move: ≈ 4 ms per analysis, whose attention
    matrices hold thousands of numbers (benchmarks/api_json.py). A pydantic model is not walked;
    it goes out through the queue message's own serialisation, as the JSON of its root. The
    root is `Any`, so it is neither validated when built nor checked by type when serialised
    (gr.JSON's JsonValue union calls a discriminator for every number). Clients receive the
    dict itself (tests/test_app.py checks the bytes against gr.JSON's).
    """


def uploaded_path(audio) -> str | None:
    """The server path of an audio file a client uploaded to a `gr.api` endpoint.

    gr.api hands its function the request's JSON unprocessed: an upload arrives as the FileData
    dict that Gradio has checked and copied into its cache. Anything else (a bare path string,
    say) is refused, so that no client can name a file of the server's own.
    """
    if audio is None:
        return None
    try:
        return gr.FileData.model_validate(audio, context={"validate_meta": True}).path
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise UserFacingError(
            "Send the audio as an uploaded file: gradio_client.handle_file(path)."
        ) from error


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
    def api_transcribe(self, audio: gr.FileData | None) -> dict:
        """Transcribe an uploaded clip with the app's Whisper.

        Returns {"text", "words": [{"word", "start", "end"}], "status"}; the status is plain
        text (the page's copy is escaped for Markdown).
        """
        clip = self.explorer.read_audio(uploaded_path(audio))
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
    def api_analyze(self, audio: gr.FileData | None, transcript: str = "") -> PlainJSON:
        """Analyse an uploaded clip and its transcript (empty: Whisper transcribes it first).

        Returns the analysis as a JSON object: label, probabilities, words, attention, the two
        Gaussians and their W2 distance, neighbours, map position and notes.
        """
        analysis, _ = self.explorer.analyze(uploaded_path(audio), transcript)
        return PlainJSON(analysis.to_dict())
