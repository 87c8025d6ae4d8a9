"""MGCMA Explorer: record → Whisper → MGCMA → the three alignment granularities.

    python demo/app.py [--checkpoint PATH_OR_HUB_ID] [--whisper NAME_OR_PATH] [--host H]
                       [--port P] [--share]

Environment variables give the same settings (a Hugging Face Space sets GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT): MGCMA_CHECKPOINT, MGCMA_WHISPER, MGCMA_BANK, MGCMA_EXAMPLES, and for the
queue MGCMA_QUEUE_SIZE and MGCMA_CONCURRENCY; all are read in demo/settings.py. Layout first,
then wiring; the work lives in demo/service.py and the figures in demo/views.py and demo/plots/.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no outbound calls
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `demo` and `mgcma` from a checkout

import gradio as gr  # noqa: E402

from demo import texts  # noqa: E402
from demo.callbacks import Callbacks, compare_headers, head_choices  # noqa: E402
from demo.service import Explorer  # noqa: E402
from demo.settings import Settings  # noqa: E402
from demo.transcription import whisper_choices  # noqa: E402
from demo.views import MAP_SPACES  # noqa: E402

MAX_UPLOAD = "20mb"  # a 30-s WAV at 48 kHz stereo is 11 MB
SETTINGS = Settings.from_env()  # the defaults and the environment; the command line overrides
# Waiting requests beyond QUEUE_SIZE are refused at once with HTTP 503: the browser shows "This
# application is currently busy. Please try again.", gradio_client raises QueueError("Queue is
# full! Please try again."). Both texts are Gradio's own; neither can be set from the app.
QUEUE_SIZE = SETTINGS.queue_size
CONCURRENCY = SETTINGS.concurrency  # analyses at once: one per core
# API requests only wait on the shared batcher (demo/batcher.py): let a whole batch in at once
API_CONCURRENCY = max(CONCURRENCY, SETTINGS.max_batch)


def build(explorer: Explorer) -> gr.Blocks:
    """The Blocks app around one loaded Explorer."""
    calls = Callbacks(explorer)
    heads = head_choices(explorer.model.config.alignment.heads)
    with gr.Blocks(title="MGCMA Explorer", delete_cache=(1800, 3600)) as demo:
        gr.Markdown(texts.HEADER)
        whisper_status = gr.Markdown(explorer.whisper_status(), elem_id="whisper-status")
        with gr.Tab("Analyze", id="analyze"):
            # each row's parts stack under ~900 px: side by side they were too narrow to read
            with gr.Row():
                with gr.Column(scale=2, min_width=300):
                    audio = gr.Audio(
                        sources=["microphone", "upload"],
                        type="filepath",
                        label="Speech (record or upload, up to 30 s)",
                    )
                    with gr.Row():
                        whisper = gr.Dropdown(
                            whisper_choices(explorer.settings.whisper),
                            value=explorer.settings.whisper,
                            label="Whisper model",
                            allow_custom_value=True,
                            scale=2,
                        )
                        transcribe = gr.Button("Transcribe", scale=1)
                    transcript = gr.Textbox(
                        label="Transcript — edit the words and analyse again "
                        "to see what the words contribute",
                        lines=2,
                    )
                    analyze = gr.Button("Analyze", variant="primary", elem_id="analyze-button")
                    message = gr.Markdown(elem_id="message")
                with gr.Column(scale=3, min_width=520):
                    prediction = gr.Plot(label="Prediction", elem_id="prediction-plot")
            if explorer.examples:
                gr.Examples(
                    [[e.audio, e.text] for e in explorer.examples],
                    [audio, transcript],
                    example_labels=[e.name for e in explorer.examples],
                    label="Examples (with their transcripts: no Whisper needed)",
                )
            gr.Markdown(texts.TOKEN_HELP)
            with gr.Row():
                direction = gr.Radio(
                    ["text→speech", "speech→text"], value="text→speech", label="Direction"
                )
                head = gr.Dropdown(heads, value="mean", label="Attention head")
            token = gr.Plot(label="Token level", elem_id="token-plot")
            gr.Markdown(texts.INSTANCE_HELP)
            space = gr.Radio(list(MAP_SPACES), value=MAP_SPACES[0], label="Map")
            with gr.Row():
                instance = gr.Plot(
                    label="Instance level", elem_id="instance-plot", scale=3, min_width=520
                )
                neighbours = gr.Dataframe(
                    label="Nearest utterances in the bank",
                    elem_id="neighbours-table",
                    scale=2,
                    min_width=380,
                    headers=["transcript", "emotion", "distance", "speaker"],
                    column_widths=["41%", "18%", "20%", "21%"],
                    wrap=True,
                )
            gr.Markdown(texts.DISTRIBUTION_HELP)
            distribution = gr.Plot(label="Distribution level", elem_id="distribution-plot")
            with gr.Row():
                analysis_json = gr.File(label="Analysis (JSON)")
                figures_button = gr.Button("Prepare the figures as HTML")
                figures_file = gr.File(label="Figures (HTML)")
            state = gr.State()
        with gr.Tab("Walkthrough", id="walkthrough"):
            walk = calls.build_walkthrough()
        with gr.Tab("Compare", id="compare"):
            gr.Markdown(texts.COMPARE_HELP)
            compare_button = gr.Button("Compare the Analyze tab's input across checkpoints")
            compare_input = gr.Markdown(elem_id="compare-input")
            compare_plot = gr.Plot(label="Probabilities per checkpoint", elem_id="compare-plot")
            compare_table = gr.Dataframe(
                label="Per checkpoint",
                headers=compare_headers(explorer.model.emotions),
                interactive=False,
            )
            gr.Markdown(texts.cv_table())
        with gr.Tab("About", id="about"):
            gr.Markdown(texts.model_card())

        # -- wiring ---------------------------------------------------------------------------
        analysis_outputs = [
            prediction,
            token,
            instance,
            neighbours,
            distribution,
            message,
            analysis_json,
            state,
            transcript,
            whisper_status,
        ]
        analyze.click(
            calls.analyze,
            [audio, transcript, whisper, head, direction, space, state],
            analysis_outputs,
            api_visibility="undocumented",
            api_name="analyze_ui",
        )
        space.change(
            calls.redraw_instance, [state, space], [instance, neighbours], api_visibility="private"
        )
        transcribe.click(
            calls.transcribe,
            [audio, whisper],
            [transcript, message, state, whisper_status],
            api_visibility="undocumented",
            api_name="transcribe_ui",
        )
        for control in (head, direction):
            control.change(
                calls.redraw_tokens, [state, head, direction], token, api_visibility="private"
            )
        whisper.change(explorer.whisper_status, whisper, whisper_status, api_visibility="private")
        figures_button.click(calls.figures_html, [state], figures_file, api_visibility="private")
        compare_button.click(
            calls.compare,
            [audio, transcript],
            [compare_input, compare_plot, compare_table],
            api_visibility="undocumented",
        )
        # The documented API: typed functions, no components; the analysis goes out as the
        # plain JSON it already is (callbacks.PlainJSON; benchmarks/api_json.py times it).
        gr.api(calls.api_analyze, api_name="analyze", concurrency_limit=API_CONCURRENCY)
        gr.api(calls.api_transcribe, api_name="transcribe")
        walk.wire(demo)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=CONCURRENCY)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MGCMA Explorer (Gradio app)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint directory or Hub id")
    parser.add_argument("--whisper", default=None, help="tiny, base, small or a local .pt path")
    parser.add_argument("--host", default=SETTINGS.host)
    parser.add_argument("--port", type=int, default=SETTINGS.port)
    parser.add_argument("--share", action="store_true", default=SETTINGS.share)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    explorer = Explorer(SETTINGS.override(checkpoint=args.checkpoint, whisper=args.whisper))
    demo = build(explorer)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        max_file_size=MAX_UPLOAD,
        theme=gr.themes.Soft(),
        css=texts.CSS,
        footer_links=["api"],
        ssr_mode=False,
    )


if __name__ == "__main__":
    main()
