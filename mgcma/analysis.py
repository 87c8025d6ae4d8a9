"""Everything the app draws about one utterance, as plain numpy and Python values.

`Analyzer(model, bank).analyze(audio, text=text)` runs the model once with attention on and
returns an `Analysis`: prediction, per-modality predictions, word-level cross-attention on a time
axis, both Gaussians with their W2 distance and overlap, and the embeddings. Plots are built from
an `Analysis`, never from the model.

The Analyzer takes decoded audio only: an `mgcma.audio.Audio` from `mgcma.load_audio`, or its
samples, (N,) float32 mono at 16 kHz. It never decodes, resamples or cuts; anything else is
refused with a message that says to decode it first (`mgcma.audio.decoded_samples`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch

from mgcma.alignment import w2_squared
from mgcma.audio import Audio, decoded_samples
from mgcma.batch import pad_waveforms, tokenize_texts
from mgcma.constants import SAMPLE_RATE
from mgcma.losses import w2_similarity
from mgcma.model import MGCMA
from mgcma.pauses import cut_pauses
from mgcma.words import align_word_times, merge_attention, split_words, token_word_index

NO_TRANSCRIPT = (
    "There is no transcript, so the text side had nothing to read: trust the speech side. "
    "Type what was said (or transcribe it) to see what the words add."
)
SYNTHETIC_VOICE = (
    "The voice sounds synthetic to the model ({:.0%} sure), so its probe of human voices, "
    "fitted on real actors, was left out of the reading."
)
PAUSES_CUT = (
    "{:.1f} s of pause before and after the speech was left out: the model reads at most {:.1f} s "
    "on either side, as its training clips had."
)
PAUSES_NOTED = 0.25  # seconds cut in all before the analysis says so
MOSTLY_UNKNOWN = 0.5  # below this share of known words the text side is flagged as guessing


class AnalysisError(ValueError):
    """The input cannot be analysed; the message says what to change."""


@dataclass
class Analysis:
    """One utterance through MGCMA. W words, T_s speech frames, H heads, g Gaussian width."""

    label: str
    probs: dict[str, float]
    transcript: str
    duration: float  # the clip's length in seconds
    frame_times: np.ndarray  # (T_s,) centre of each speech frame, seconds from the clip's start
    fused_embedding: np.ndarray  # (h,)
    variant: str = "full"
    speech_probs: dict[str, float] | None = None  # auxiliary speech-only head
    # how sure the voice gate is that the voice is synthetic (classifier.voice_probe): the voice
    # probe, fitted on human voices, speaks in the fused and speech heads by 1 − this
    synthetic_voice: float | None = None
    text_probs: dict[str, float] | None = None  # auxiliary text-only head
    words: list[str] = field(default_factory=list)  # whitespace words of the transcript
    word_times: list[tuple[float, float] | None] | None = None  # known spans, per word
    tokens: list[str] = field(default_factory=list)  # sub-word tokens, specials included
    token_word: list[int] = field(default_factory=list)  # word index per token, -1 for specials
    attention_text_to_speech: np.ndarray | None = None  # (H, W, T_s) rows sum to 1
    attention_speech_to_text: np.ndarray | None = None  # (H, T_s, W) rows sum to ≤ 1
    speech_mu: np.ndarray | None = None  # (g,)
    speech_sigma: np.ndarray | None = None  # (g,)
    text_mu: np.ndarray | None = None  # (g,)
    text_sigma: np.ndarray | None = None  # (g,)
    w2_distance: float | None = None  # squared 2-Wasserstein distance speech ↔ text
    similarity: float | None = None  # −a·W2 + b, the score the distribution loss contrasts
    bhattacharyya: float | None = None  # overlap of the two g-dimensional Gaussians, in [0, 1]
    overlap: float | None = None  # per-dimension overlap: bhattacharyya ** (1/g), in [0, 1]
    speech_embedding: np.ndarray | None = None  # (k,) instance level, L2-normalised
    text_embedding: np.ndarray | None = None  # (k,)
    instance_similarity: float | None = None  # cosine of the two instance embeddings
    speech_pooled: np.ndarray | None = None  # (d,) utterance vector before any alignment head
    text_pooled: np.ndarray | None = None  # (d,)
    known_word_share: float | None = None  # words the text encoder reads as one known token
    notes: list[str] = field(default_factory=list)  # plain-language notices for the user
    # (start, end) seconds of the clip the model read: all of it, or less its long pauses
    # (speech.max_pause_seconds)
    span: tuple[float, float] | None = None
    neighbours: list[dict] | None = None  # filled by a reference bank: nearest fused embeddings
    speech_neighbours: list[dict] | None = None  # the same search on the speech embedding
    map_position: dict | None = None  # {"speech": [x, y], "text": …, "fused": …}
    percentiles: dict | None = None  # {"w2_distance": 37.5, …} among the bank's matched pairs

    @property
    def attention_text_to_speech_mean(self) -> np.ndarray | None:
        """(W, T_s): the heads averaged."""
        a = self.attention_text_to_speech
        return None if a is None else a.mean(axis=0)

    @property
    def attention_speech_to_text_mean(self) -> np.ndarray | None:
        """(T_s, W): the heads averaged."""
        a = self.attention_speech_to_text
        return None if a is None else a.mean(axis=0)

    def to_dict(self) -> dict:
        """JSON-serialisable: arrays become nested lists, numpy scalars become floats."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.astype(float).round(6).tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Analyzer:
    """Runs a model (and optionally a reference bank) on utterances for display.

    Parameters
    ----------
    model : a loaded MGCMA
    bank : a `mgcma.bank.ReferenceBank`, or None (no neighbours, map or percentiles)
    device : "auto" (CUDA when available), "cpu", "cuda", or a torch.device
    """

    def __init__(self, model: MGCMA, bank=None, device: str | torch.device = "auto") -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = model.to(device).eval()
        self.bank = bank
        self.device = torch.device(device)

    def analyze(
        self,
        audio: Audio | np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        text: str = "",
        words: Sequence[dict] | None = None,
    ) -> Analysis:
        """Analyse one utterance.

        Parameters
        ----------
        audio : decoded audio: an `mgcma.audio.Audio` (its truncation notice becomes a note), or
            its samples, (N,) float32 mono at 16 kHz; decode anything else with `mgcma.load_audio`
        sample_rate : 16 000, the only rate accepted (another is an error, not a resampling)
        text : the transcript (ignored by a speech-only model)
        words : known word timings `[{"word", "start", "end"}, …]` (Whisper's or the truth)
        """
        return self.analyze_many([(audio, sample_rate, text, words)])[0]

    def analyze_many(
        self, items: Sequence[tuple], batch_size: int = 8, errors: str = "raise"
    ) -> list[Analysis]:
        """Analyse `(audio, sample_rate, text[, words])` tuples in padded batches.

        errors : "raise" stops at the first bad item; "return" puts the item's exception in its
            place and analyses the rest (a server batching several users' requests must not fail
            one request for another's bad clip)
        """
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        results: list = [None] * len(items)
        prepared = []  # (index, prepared item)
        for index, item in enumerate(items):
            try:
                prepared.append((index, self._prepare(*item)))
            except Exception as error:
                if errors == "raise":
                    raise
                results[index] = error
        for start in range(0, len(prepared), batch_size):
            chunk = prepared[start : start + batch_size]
            try:
                outputs = self._run([item for _, item in chunk])
            except Exception:
                if errors == "raise" or len(chunk) == 1:
                    raise
                outputs = [self._run_alone(item) for _, item in chunk]  # find the one that fails
            for (index, _), output in zip(chunk, outputs, strict=True):
                results[index] = output
        if self.bank is not None:
            for analysis in results:
                if isinstance(analysis, Analysis):
                    self.bank.annotate(analysis)
        return results

    def _run_alone(self, item: dict) -> Analysis | Exception:
        try:
            return self._run([item])[0]
        except Exception as error:  # noqa: BLE001 - returned to the caller of this one item
            return error

    def _prepare(self, audio, sample_rate=SAMPLE_RATE, text="", words=None) -> dict:
        samples = decoded_samples(audio, sample_rate)  # (N,) at 16 kHz: checked, not converted
        notes = [audio.notice] if isinstance(audio, Audio) and audio.notice else []
        text = " ".join(str(text or "").split())  # collapse whitespace and newlines
        if self.model.config.uses_text and not text:
            notes.append(NO_TRANSCRIPT)  # the text encoder still runs: on [CLS] [SEP] alone
        seconds, first = len(samples) / SAMPLE_RATE, 0
        keep = self.model.config.speech.max_pause_seconds
        if self.model.config.uses_speech and keep is not None:
            samples, first = cut_pauses(samples, keep)  # (N',) as in training
            cut = seconds - len(samples) / SAMPLE_RATE
            if cut >= PAUSES_NOTED:
                notes.append(PAUSES_CUT.format(cut, keep))
        return {
            "samples": samples,
            "text": text,
            "words": words,  # in seconds from the clip's start, as frame_times
            "notes": notes,
            "start": first / SAMPLE_RATE,  # where the samples read begin in the clip
            "seconds": seconds,
        }

    @torch.inference_mode()
    def _run(self, batch: list[dict]) -> list[Analysis]:
        model = self.model
        inputs: dict = {}
        if model.config.uses_speech:
            speech, speech_mask = pad_waveforms([item["samples"] for item in batch])  # (B, N)
            inputs.update(speech=speech.to(self.device), speech_mask=speech_mask.to(self.device))
        encoded = None
        if model.config.uses_text:
            texts = [item["text"] for item in batch]
            encoded = tokenize_texts(
                model.tokenizer, texts, model.config.text.max_tokens, with_offsets=True
            )
            inputs.update(
                input_ids=encoded["input_ids"].to(self.device),
                text_mask=encoded["text_mask"].to(self.device),
            )
        output = model(**inputs, return_attention=True)
        return [self._unpack(output, encoded, row, item) for row, item in enumerate(batch)]

    def _unpack(self, output, encoded, row: int, item: dict) -> Analysis:
        emotions = self.model.emotions
        config = self.model.config
        calibrated = self.model.probabilities(output)  # the checkpoint's temperatures
        probs = _probs(calibrated["fused"][row], emotions)
        analysis = Analysis(
            label=max(probs, key=probs.get),
            probs=probs,
            transcript=item["text"],
            duration=item["seconds"],
            frame_times=np.zeros(0, dtype=np.float32),
            fused_embedding=_numpy(output.fused[row]),
            variant=config.variant,
            notes=list(item["notes"]),
        )
        if output.voice_gate_logit is not None:
            analysis.synthetic_voice = float(torch.sigmoid(output.voice_gate_logit[row].float()))
            if analysis.synthetic_voice >= 0.5:
                analysis.notes.append(SYNTHETIC_VOICE.format(analysis.synthetic_voice))
        if output.speech_logits is not None:
            analysis.speech_probs = _probs(calibrated["speech"][row], emotions)
            analysis.text_probs = _probs(calibrated["text"][row], emotions)
        num_frames = 0
        if output.speech_mask is not None:
            num_frames = int(output.speech_mask[row].sum())
            times = self.model.speech_encoder.frame_times(num_frames) + item["start"]  # (T_s,)
            analysis.frame_times = _numpy(times)
            analysis.span = (item["start"], item["start"] + len(item["samples"]) / SAMPLE_RATE)
        if encoded is not None:
            _fill_words(analysis, output, encoded, row, num_frames, self.model.tokenizer, item)
        if output.speech_mu is not None:
            _fill_distribution(analysis, output, row, config.alignment)
        if output.speech_pooled is not None:
            analysis.speech_pooled = _numpy(output.speech_pooled[row])
        if output.text_pooled is not None:
            analysis.text_pooled = _numpy(output.text_pooled[row])
        if output.speech_embedding is not None:
            analysis.speech_embedding = _numpy(output.speech_embedding[row])
            analysis.text_embedding = _numpy(output.text_embedding[row])
            analysis.instance_similarity = float(
                analysis.speech_embedding @ analysis.text_embedding
            )
        return analysis


def _fill_words(analysis, output, encoded, row, num_frames, tokenizer, item) -> None:
    num_tokens = int(encoded["text_mask"][row].sum())
    ids = encoded["input_ids"][row, :num_tokens].tolist()
    offsets = encoded["offset_mapping"][row, :num_tokens].tolist()
    special = encoded["special_tokens_mask"][row, :num_tokens].tolist()  # [UNK] is a word
    spans = split_words(item["text"])
    token_word = token_word_index(offsets, special, spans)
    covered = sorted({w for w in token_word if w >= 0})
    if len(covered) < len(spans):
        analysis.notes.append(
            f"The transcript is long: only its first {len(covered)} of {len(spans)} words were "
            "read by the text encoder."
        )
    spans = spans[: len(covered)]
    analysis.words = [word for word, _, _ in spans]
    analysis.tokens = tokenizer.convert_ids_to_tokens(ids)
    analysis.token_word = token_word
    if spans:
        pieces = [item["text"][start:end] for start, end in offsets]
        unknown = [i == tokenizer.unk_token_id for i in ids]
        analysis.known_word_share = known_word_share(pieces, unknown, token_word, len(spans))
        if analysis.known_word_share < MOSTLY_UNKNOWN:
            known = round(analysis.known_word_share * len(spans))
            analysis.notes.append(
                f"Only {known} of the {len(spans)} words are in the text encoder's vocabulary "
                "as whole words: it reads the rest as fragments (an unknown word, a name, another "
                "language), so the text side is guessing. Trust the speech side."
            )
    if item["words"]:
        analysis.word_times = align_word_times(analysis.words, item["words"])
    if output.attention_text_to_speech is not None:
        text_to_speech = _numpy(output.attention_text_to_speech[row, :, :num_tokens, :num_frames])
        speech_to_text = _numpy(output.attention_speech_to_text[row, :, :num_frames, :num_tokens])
        analysis.attention_text_to_speech, analysis.attention_speech_to_text = merge_attention(
            text_to_speech, speech_to_text, token_word, len(spans)
        )


def known_word_share(
    pieces: list[str], unknown: list[bool], token_word: list[int], num_words: int
) -> float:
    """Share of the words read as one vocabulary token (not [UNK], not split into pieces).

    `pieces` is the text each token covers, `unknown` whether it is [UNK]; pieces without a letter
    or digit (punctuation) are not counted, so "much," is one known word.

    In English text 92 % of words are (GoEmotions' test split, MiniLM's WordPiece vocabulary);
    "zxq blorp fnarg" has none, German "ich bin sehr traurig heute" two of five.
    """
    counts = [0] * num_words
    unheard = [False] * num_words
    for piece, is_unknown, word in zip(pieces, unknown, token_word, strict=True):
        if 0 <= word < num_words and any(c.isalnum() for c in piece):
            counts[word] += 1
            unheard[word] |= is_unknown
    known = sum(1 for n, u in zip(counts, unheard, strict=True) if n == 1 and not u)
    return known / max(sum(1 for n in counts if n), 1)  # words of punctuation alone: not counted


def _fill_distribution(analysis, output, row, alignment) -> None:
    speech_mu = output.speech_mu[row].double()  # (g,), in double: W2 sums g squares
    text_mu = output.text_mu[row].double()
    speech_sigma = output.speech_log_sigma[row].double().exp()
    text_sigma = output.text_log_sigma[row].double().exp()
    w2 = float(w2_squared(speech_mu[None], speech_sigma[None], text_mu[None], text_sigma[None]))
    variance = (speech_sigma**2 + text_sigma**2) / 2  # (g,)
    distance = (speech_mu - text_mu).pow(2).div(variance).sum() / 8 + 0.5 * torch.log(
        variance / (speech_sigma * text_sigma)
    ).sum()  # Bhattacharyya distance of the two diagonal Gaussians
    analysis.speech_mu, analysis.text_mu = _numpy(speech_mu), _numpy(text_mu)
    analysis.speech_sigma, analysis.text_sigma = _numpy(speech_sigma), _numpy(text_sigma)
    analysis.w2_distance = w2
    analysis.similarity = w2_similarity(w2, alignment.w2_scale, alignment.w2_shift)
    analysis.bhattacharyya = float(torch.exp(-distance))
    analysis.overlap = float(torch.exp(-distance / speech_mu.numel()))


def _probs(probabilities: torch.Tensor, emotions: Sequence[str]) -> dict[str, float]:
    values = probabilities.tolist()
    return {emotion: float(p) for emotion, p in zip(emotions, values, strict=True)}


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()
