"""From manifest utterances to padded training batches.

:class:`EmotionDataset` decodes one utterance (through :func:`mgcma.audio.load_audio`, so training
sees audio exactly as the app does), :class:`Collator` pads a list of them into tensors with
masks (through :mod:`mgcma.batch`), and :class:`LengthBucketSampler` groups utterances of similar
duration so little of each batch is padding, sharding the batches across data-parallel ranks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, Sampler

from mgcma.audio import AudioError, load_audio
from mgcma.batch import pad_waveforms, tokenize_texts
from mgcma.constants import EMOTIONS, MAX_SECONDS, SAMPLE_RATE
from mgcma.pauses import cut_pauses
from train.manifest import Utterance

SYNTHETIC_CORPUS = "synthetic"  # the corpus name train.synth writes on each line

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
NONSENSE_POOL = 64  # distinct made-up transcripts text dropout draws from (cacheable)


def nonsense_transcript(number: int) -> str:
    """A made-up transcript of 1–6 letter strings, the same for the same number."""
    rng = np.random.default_rng([7, number])
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, rng.integers(2, 8))) for _ in range(rng.integers(1, 7))]
    return " ".join(words)


def audio_seconds(utterances: Sequence[Utterance]) -> np.ndarray:
    """Durations in seconds, ``(len(utterances),)`` float64, read from the file headers.

    Only headers are read (``soundfile.info``); a file soundfile cannot parse is decoded with
    :func:`mgcma.audio.load_audio` instead (slower, but any format the app reads works).
    """
    seconds = np.zeros(len(utterances), dtype=np.float64)
    for index, utterance in enumerate(utterances):
        try:
            info = sf.info(str(utterance.audio))
            seconds[index] = info.frames / info.samplerate
        except (RuntimeError, sf.SoundFileError):
            seconds[index] = load_audio(utterance.audio, max_seconds=3600.0).seconds
    return seconds


class EmotionDataset(Dataset):
    """Utterances as ``{id, speech, text, label, words}`` items.

    Parameters
    ----------
    utterances : the utterances, e.g. from :func:`train.manifest.load_manifest`
    max_seconds : longer clips keep only their start
    augment : optional ``augment(samples, rng) -> samples`` applied to the 16 kHz waveform
    seed : with the epoch (:meth:`set_epoch`) and the index, seeds ``augment``'s generator, so
        augmentation is reproducible whatever the number of loader workers
    labels : the label order; ``label`` in an item is the index into it
    text_dropout : share of items whose transcript is replaced, half by nothing and half by
        made-up words (labels kept): a model must learn that such a transcript tells nothing,
        and leave the decision to the voice

    Items
    -----
    id : str
    speech : (N,) float32 at 16 kHz
    text : str
    label : int
    speech_label, text_label : int, what the voice alone and the words alone say: the manifest's
        ``prosody_emotion`` and ``text_emotion`` where it gives them (the synthetic corpus),
        else the label; a dropped transcript's ``text_label`` is the label
    words : tuple of (word, start, end) or None
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        *,
        max_seconds: float = MAX_SECONDS,
        augment: Augment | None = None,
        seed: int = 0,
        labels: Sequence[str] = EMOTIONS,
        features=None,
        text_dropout: float = 0.0,
        max_pause: float | None = None,
    ) -> None:
        unknown = sorted({u.label for u in utterances} - set(labels))
        if unknown:
            raise ValueError(f"labels {unknown} are not among {', '.join(labels)}")
        self.utterances = list(utterances)
        self.max_seconds = max_seconds
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.label_index = {label: index for index, label in enumerate(labels)}
        self.features = features  # a train.features.FeatureCache: backbone states, not audio
        if not 0.0 <= text_dropout < 1.0:
            raise ValueError(f"text_dropout must lie in [0, 1), got {text_dropout}")
        self.text_dropout = text_dropout
        self.max_pause = max_pause  # speech.max_pause_seconds (the cache cuts its clips itself)

    def _text(self, index: int, utterance: Utterance) -> tuple[str, tuple | None]:
        """The transcript (and word timings) this epoch shows for the utterance."""
        if self.text_dropout:
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            if rng.random() < self.text_dropout:
                if rng.random() < 0.5:
                    return "", None
                return nonsense_transcript(int(rng.integers(NONSENSE_POOL))), None
        return utterance.text, utterance.words

    def set_epoch(self, epoch: int) -> None:
        """Draw different augmentations in each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict:
        utterance = self.utterances[index]
        if self.features is not None:
            return self._cached_item(index, utterance)
        try:
            speech = load_audio(utterance.audio, max_seconds=self.max_seconds).samples  # (N,)
        except AudioError as error:
            raise AudioError(f"utterance {utterance.id!r}: {error}") from error
        text, words = self._text(index, utterance)
        if self.max_pause is not None:  # long pauses cut, as the app cuts them (mgcma/pauses.py)
            speech, first = cut_pauses(speech, self.max_pause)
            words = shift_words(words, first / SAMPLE_RATE)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            original = speech.size
            speech = np.asarray(self.augment(speech, rng), dtype=np.float32)  # (N',)
            if words and speech.size != original:  # speed perturbation moved every word
                stretch = speech.size / original
                words = tuple((w, start * stretch, end * stretch) for w, start, end in words)
        return {
            "id": utterance.id,
            "speech": speech,
            "text": text,
            **self._labels(utterance, text),
            "words": words,
        }

    def _labels(self, utterance: Utterance, text: str) -> dict[str, int]:
        """The label, and what the voice alone and the words alone say (see Items)."""
        extra = utterance.extra or {}
        label = self.label_index[utterance.label]
        speech = extra.get("prosody_emotion", utterance.label)
        # a transcript replaced by nothing or made-up words says no emotion: neutral where that
        # is a class (the label otherwise)
        words = extra.get("text_emotion", utterance.label) if text == utterance.text else "neutral"
        return {
            "label": label,
            "speech_label": self.label_index.get(speech, label),
            "text_label": self.label_index.get(words, label),
            "synthetic_voice": float(synthetic_voice(utterance)),
        }

    def _cached_item(self, index: int, utterance: Utterance) -> dict:
        """The item as backbone states from the feature cache (one of its augmented copies)."""
        cache = self.features
        copy = 0
        if cache.copies and self.augment is not None:
            copy = int(
                np.random.default_rng([self.seed, self.epoch, index]).integers(cache.copies + 1)
            )
        text, words = self._text(index, utterance)
        item = {"id": utterance.id, "text": text, **self._labels(utterance, text), "words": words}
        if cache.speech_identity is not None:
            states, stretch = cache.speech(utterance, copy)
            item["speech_features"] = states  # (T_s, D_s)
            item["words"] = shift_words(item["words"], cache.cut_seconds(utterance))
            if item["words"] and stretch != 1.0:  # speed perturbation moved every word
                item["words"] = tuple((w, a * stretch, b * stretch) for w, a, b in item["words"])
        if cache.text_identity is not None:
            item["text_features"] = cache.text(cache.token_ids(text))  # (T_t, D_t)
        return item


class Collator:
    """Pad dataset items into a batch.

    Parameters
    ----------
    tokenizer : the model's tokenizer, or None for a speech-only model (then ``input_ids`` and
        ``text_mask`` are None)
    max_tokens : transcripts are truncated to this many tokens
    token_spans : also give each token its word's time span (for attention guidance)

    Returns (when called on a list of items)
    -------
    dict
        ``speech`` (B, N) float32, ``speech_mask`` (B, N) bool, ``input_ids`` (B, T_t) long,
        ``text_mask`` (B, T_t) bool, ``token_spans`` (B, T_t, 2) float32 seconds, NaN where
        unknown (None unless asked for), ``labels`` (B,) long, ``ids`` list of str.
    """

    def __init__(self, tokenizer, max_tokens: int, token_spans: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.token_spans = token_spans and tokenizer is not None

    def __call__(self, items: Sequence[dict]) -> dict:
        speech = speech_mask = speech_features = speech_feature_mask = text_features = None
        if "speech_features" in items[0]:
            speech_features, speech_feature_mask = _pad_rows([i["speech_features"] for i in items])
        elif items[0].get("speech") is not None:
            speech, speech_mask = pad_waveforms([item["speech"] for item in items])  # (B, N)
        text: dict = {"input_ids": None, "text_mask": None}
        if self.tokenizer is not None:
            words = [item.get("words") for item in items] if self.token_spans else None
            texts = [item["text"] for item in items]
            text = tokenize_texts(self.tokenizer, texts, self.max_tokens, words)
            if "text_features" in items[0]:
                text_features, _ = _pad_rows(
                    [i["text_features"] for i in items], text["input_ids"].shape[1]
                )  # (B, T_t, D_t)
        return {
            "speech": speech,
            "speech_mask": speech_mask,
            "speech_features": speech_features,  # (B, T_s, D_s) from a feature cache, or None
            "speech_feature_mask": speech_feature_mask,  # (B, T_s)
            "text_features": text_features,  # (B, T_t, D_t) or None
            "input_ids": text["input_ids"],  # (B, T_t)
            "text_mask": text["text_mask"],  # (B, T_t)
            "token_spans": text.get("token_spans"),  # (B, T_t, 2) or None
            "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),  # (B,)
            "speech_labels": _label_tensor(items, "speech_label"),  # (B,) what the voice alone says
            "text_labels": _label_tensor(items, "text_label"),  # (B,) what the words alone say
            "synthetic_voice": torch.tensor(
                [item.get("synthetic_voice", 0.0) for item in items], dtype=torch.float32
            ),  # (B,) 1 where the voice is synthetic (the voice gate's target)
            "ids": [item["id"] for item in items],
        }


def shift_words(words: tuple | None, seconds: float) -> tuple | None:
    """Word timings (word, start, end) moved `seconds` earlier (the clip's start was cut)."""
    if not words or not seconds:
        return words
    return tuple((w, max(0.0, a - seconds), max(0.0, b - seconds)) for w, a, b in words)


def synthetic_voice(utterance: Utterance) -> bool:
    """Whether the clip's voice is synthetic: its manifest line says ``"synthetic_voice": true``,
    or its corpus is the synthetic generator's (:mod:`train.synth` writes ``"corpus":
    "synthetic"``). Every other voice counts as human."""
    extra = utterance.extra or {}
    return bool(extra.get("synthetic_voice", extra.get("corpus") == SYNTHETIC_CORPUS))


def _label_tensor(items: Sequence[dict], key: str) -> torch.Tensor:
    return torch.tensor([item.get(key, item["label"]) for item in items], dtype=torch.long)


def _pad_rows(rows: Sequence[torch.Tensor], width: int | None = None):
    """(T_b, ...) float16 rows → (B, T, ...) float32 zero-padded and a (B, T) bool mask
    (a row is (T_b, D), or (T_b, K, D) for a speech cache of every layer)."""
    width = width or max(row.shape[0] for row in rows)
    padded = torch.zeros(len(rows), width, *rows[0].shape[1:])  # (B, T, ...)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)  # (B, T)
    for index, row in enumerate(rows):
        padded[index, : row.shape[0]] = row.float()
        mask[index, : row.shape[0]] = True
    return padded, mask


def _distributed_defaults(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """The process group's world size and rank where one is running, else (1, 0)."""
    running = torch.distributed.is_available() and torch.distributed.is_initialized()
    if num_replicas is None:
        num_replicas = torch.distributed.get_world_size() if running else 1
    if rank is None:
        rank = torch.distributed.get_rank() if running else 0
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(
            f"need num_replicas >= 1 and 0 <= rank < num_replicas, "
            f"got num_replicas={num_replicas}, rank={rank}"
        )
    return num_replicas, rank


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of utterances of similar length, for a ``DataLoader(batch_sampler=...)``.

    Each epoch the indices are shuffled, cut into chunks of ``batch_size *
    bucket_size_multiplier``, sorted by length within each chunk and cut into batches; the batch
    order is then shuffled. Randomness comes from ``(seed, epoch)`` only, so every rank draws the
    same batches and a resumed run repeats them. Rank ``r`` of ``num_replicas`` takes batches
    ``r, r + num_replicas, ...``; every rank gets the same number of batches (the first batches
    are repeated to fill up, or the surplus is dropped with ``drop_last``), as DDP needs.

    Parameters
    ----------
    lengths : one length (e.g. seconds, from :func:`audio_seconds`) per dataset index
    batch_size : utterances per batch
    shuffle : False gives the same batches in the same order each epoch
    seed : with the epoch, seeds the shuffling
    bucket_size_multiplier : batches per sorted chunk; larger means less padding, less mixing
    drop_last : drop the last incomplete batch, and the batches that do not divide among ranks
    num_replicas, rank : the data-parallel world; by default from ``torch.distributed``
    weights : times each utterance is drawn per epoch on average (None: once each); an epoch
        draws round(sum(weights)) utterances: every whole part, and the fractions by chance
    """

    def __init__(
        self,
        lengths: Sequence[float],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        bucket_size_multiplier: int = 50,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        if batch_size < 1 or bucket_size_multiplier < 1:
            raise ValueError("batch_size and bucket_size_multiplier must be at least 1")
        self.lengths = np.asarray(lengths, dtype=np.float64)  # (n,)
        if self.lengths.ndim != 1 or self.lengths.size == 0:
            raise ValueError("lengths must be a non-empty 1-D sequence, one per utterance")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_size_multiplier = bucket_size_multiplier
        self.drop_last = drop_last
        self.num_replicas, self.rank = _distributed_defaults(num_replicas, rank)
        self.epoch = 0
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        if self.weights is not None and (
            self.weights.shape != self.lengths.shape or (self.weights <= 0).any()
        ):
            raise ValueError("weights must be positive, one per utterance")
        self.draws = self.lengths.size if weights is None else int(round(self.weights.sum()))

    def _drawn(self, rng: np.random.Generator) -> np.ndarray:
        """This epoch's utterance indices: each once, or as often as its weight says."""
        if self.weights is None:
            return np.arange(self.lengths.size)
        whole = np.floor(self.weights).astype(int)
        fraction = self.weights - whole
        extra = self.draws - int(whole.sum())
        chosen = np.array([], dtype=int)
        if extra > 0:
            chosen = rng.choice(
                self.lengths.size, extra, replace=False, p=fraction / fraction.sum()
            )
        return np.concatenate([np.repeat(np.arange(self.lengths.size), whole), chosen])

    def set_epoch(self, epoch: int) -> None:
        """Use a different (but reproducible) order in each epoch."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        """Every batch of this epoch, for all ranks together."""
        rng = np.random.default_rng([self.seed, self.epoch])
        drawn = self._drawn(rng)
        order = drawn[rng.permutation(drawn.size)] if self.shuffle else drawn
        chunk = self.batch_size * self.bucket_size_multiplier
        batches = []
        for start in range(0, order.size, chunk):
            indices = order[start : start + chunk]
            indices = indices[np.argsort(self.lengths[indices], kind="stable")]
            batches += [
                indices[i : i + self.batch_size].tolist()
                for i in range(0, indices.size, self.batch_size)
            ]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _batches_per_rank(self, total: int) -> int:
        if self.drop_last:
            return total // self.num_replicas
        return math.ceil(total / self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        per_rank = self._batches_per_rank(len(batches))
        needed = per_rank * self.num_replicas
        padded = (batches * math.ceil(needed / len(batches)))[:needed] if batches else []
        yield from padded[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        total = math.ceil(self.draws / self.batch_size)
        if self.drop_last:
            total = self.draws // self.batch_size
        return self._batches_per_rank(total)


MODEL_INPUTS = (
    "speech",
    "speech_mask",
    "input_ids",
    "text_mask",
    "speech_features",
    "speech_feature_mask",
    "text_features",
)


def model_inputs(batch: dict, device) -> dict:
    """The batch's model inputs on `device` (None stays None: a unimodal model reads one side;
    cached backbone states stand in for the audio and token ids they were computed from)."""
    return {k: None if batch.get(k) is None else batch[k].to(device) for k in MODEL_INPUTS}
