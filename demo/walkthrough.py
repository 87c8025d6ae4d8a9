"""The classroom walkthrough: numbered steps through the granularities on prepared examples."""

from __future__ import annotations

import threading

import gradio as gr
import numpy as np

from demo import plots, texts
from demo.examples import Example
from demo.service import Explorer

TITLES = [title for title, _ in texts.STEPS]


def _step_text(index: int) -> str:
    title, body = texts.STEPS[index]
    return f"### {title}\n{body}"


def _describe(example: Example) -> str:
    cue = {
        "both": "speech and words agree",
        "prosody": "only the voice carries it",
        "words": "only the words carry it",
        "conflict": "voice and words disagree",
        "real": "a real actor's voice, neutral words",
    }
    return f"{example.name} — {example.label}" + (
        f" ({cue[example.cue]})" if example.cue in cue else ""
    )


class Walkthrough:
    """Builds its layout where it is created; `wire(demo)` connects the events."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer
        self.examples = {_describe(e): e for e in explorer.examples}
        self._cache: dict[str, tuple] = {}
        self._lock = threading.Lock()
        self._similarity = None
        first = self._first_choice()
        gr.Markdown(texts.WALKTHROUGH_INTRO)
        with gr.Row():
            self.example = gr.Dropdown(list(self.examples), value=first, label="Example", scale=2)
            self.step = gr.Radio(TITLES, value=TITLES[0], label="Step", scale=3)
        with gr.Row():
            # under 900 px the figure moves below the text: beside it, it was too narrow to read
            with gr.Column(scale=2, min_width=300):
                self.text = gr.Markdown(
                    _step_text(0), elem_classes="step-text", elem_id="walkthrough-text"
                )
                self.audio = gr.Audio(label="The clip", interactive=False)
                self.transcript = gr.Markdown()
                with gr.Row():
                    self.back = gr.Button("◀ Previous step")
                    self.forward = gr.Button("Next step ▶", variant="primary")
            with gr.Column(scale=3, min_width=560):
                self.figure = gr.Plot(label="Live figure", elem_id="walkthrough-plot")

    def _first_choice(self) -> str | None:
        # start where it is most instructive: an example whose voice and words disagree
        for name, example in self.examples.items():
            if example.cue == "conflict":
                return name
        return next(iter(self.examples), None)

    def wire(self, demo: gr.Blocks) -> None:
        outputs = [self.text, self.audio, self.transcript, self.figure]
        for trigger in (self.example.change, self.step.change):
            trigger(self.show, [self.example, self.step], outputs, api_visibility="private")
        demo.load(self.show, [self.example, self.step], outputs, api_visibility="private")
        self.back.click(
            lambda s: TITLES[max(TITLES.index(s) - 1, 0)],
            self.step,
            self.step,
            api_visibility="private",
        )
        self.forward.click(
            lambda s: TITLES[min(TITLES.index(s) + 1, len(TITLES) - 1)],
            self.step,
            self.step,
            api_visibility="private",
        )

    def _analysis(self, name: str):
        with self._lock:
            if name not in self._cache:
                example = self.examples[name]
                analysis, clip = self.explorer.analyze(
                    example.audio, example.text, words=example.words
                )
                self._cache[name] = (analysis, clip)
            return self._cache[name]

    def show(self, name: str | None, step: str):
        index = TITLES.index(step)
        text = _step_text(index)
        if not name or name not in self.examples:
            return text, None, "No prepared examples are shipped with this checkpoint.", None
        example = self.examples[name]
        analysis, clip = self._analysis(name)
        transcript = f"**Transcript:** {example.text}  \n**Label:** {example.label}"
        if example.note:
            transcript += f"  \n{example.note}"
        if index == 2:  # the matrix's own numbers, counted from it, not promised in advance
            figure, matrices, titles = self._similarities()
            text += "\n\n" + diagonal_summary(matrices, titles)
            return text, example.audio, transcript, figure
        figure = self._figure(index, analysis, clip)
        if index == 1 and figure is not None:  # the two overlaps the text explains, as drawn
            meta = figure.layout.meta
            text += (
                f"\n\n**Here:** overlap {meta['overlap']:.0%}, shaded area "
                f"{meta['shared_area']:.0%}."
            )
        return text, example.audio, transcript, figure

    def _figure(self, index: int, analysis, clip):
        views = self.explorer.views
        if index == 0:
            db, times = plots.spectrogram(clip.samples)
            return plots.two_views(
                db, times, analysis.words, analysis.word_times, duration=clip.seconds
            )
        if index == 1:
            return views.distribution_figure(analysis)
        if index == 3:
            return views.token_figure(analysis, clip)
        return views.prediction_figure(analysis)

    def _similarities(self):
        """Speech × text cosine for the examples, full model beside the no-instance model:
        (figure, matrices, their titles)."""
        if self._similarity is not None:  # the same examples every time: computed once
            return self._similarity
        names = list(self.examples)[:12]
        analyses = [self._analysis(n)[0] for n in names]
        labels = [self.examples[n].label for n in names]
        matrices = [
            _cosine([a.speech_embedding for a in analyses], [a.text_embedding for a in analyses])
        ]
        titles = ["full MGCMA"]
        ablation = self.explorer.ablation("no_instance")
        if ablation is not None:
            items = [(self._analysis(n)[1], 16000, self.examples[n].text) for n in names]
            other = ablation.analyze_many(items)
            matrices.append(
                _cosine([a.speech_pooled for a in other], [a.text_pooled for a in other])
            )
            titles.append("without instance alignment")
        figure = plots.similarity_matrices(
            matrices, labels, titles, title="Instance level: does each clip match its words?"
        )
        self._similarity = (figure, matrices, titles)
        return self._similarity


def own_words_first(matrix: np.ndarray) -> int:
    """How many rows (clips' speech) have their own transcript as their most similar column."""
    return int(np.sum(np.argmax(matrix, axis=1) == np.arange(len(matrix))))


def diagonal_summary(matrices: list[np.ndarray], titles: list[str]) -> str:
    """How often each matrix's outlined diagonal cell is its row's highest similarity."""
    counts = [
        f"{own_words_first(m)} of {len(m)} clips in “{t}”"
        for m, t in zip(matrices, titles, strict=True)
    ]
    return (
        "**In this batch**, a clip's speech is most similar to its own words (its row's darkest "
        f"blue cell is the outlined one) for {' and '.join(counts)}."
    )


def _cosine(speech: list[np.ndarray], text: list[np.ndarray]) -> np.ndarray:
    s = np.stack(speech)
    t = np.stack(text)
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    return s @ t.T  # (B, B): row i = speech of example i, column j = text of example j
