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
from mgcma.constants import EMOTIONS, MAX_SECONDS
from train.manifest import Utterance

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


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

    Items
    -----
    id : str
    speech : (N,) float32 at 16 kHz
    text : str
    label : int
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

    def set_epoch(self, epoch: int) -> None:
        """Draw different augmentations in each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict:
        utterance = self.utterances[index]
        try:
            speech = load_audio(utterance.audio, max_seconds=self.max_seconds).samples  # (N,)
        except AudioError as error:
            raise AudioError(f"utterance {utterance.id!r}: {error}") from error
        words = utterance.words
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
            "text": utterance.text,
            "label": self.label_index[utterance.label],
            "words": words,
        }


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
        speech, speech_mask = pad_waveforms([item["speech"] for item in items])  # (B, N)
        text: dict = {"input_ids": None, "text_mask": None}
        if self.tokenizer is not None:
            words = [item.get("words") for item in items] if self.token_spans else None
            texts = [item["text"] for item in items]
            text = tokenize_texts(self.tokenizer, texts, self.max_tokens, words)
        return {
            "speech": speech,
            "speech_mask": speech_mask,
            "input_ids": text["input_ids"],  # (B, T_t)
            "text_mask": text["text_mask"],  # (B, T_t)
            "token_spans": text.get("token_spans"),  # (B, T_t, 2) or None
            "labels": torch.tensor([item["label"] for item in items], dtype=torch.long),  # (B,)
            "ids": [item["id"] for item in items],
        }


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

    def set_epoch(self, epoch: int) -> None:
        """Use a different (but reproducible) order in each epoch."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        """Every batch of this epoch, for all ranks together."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.lengths.size) if self.shuffle else np.arange(self.lengths.size)
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
        total = math.ceil(self.lengths.size / self.batch_size)
        if self.drop_last:
            total = self.lengths.size // self.batch_size
        return self._batches_per_rank(total)


MODEL_INPUTS = ("speech", "speech_mask", "input_ids", "text_mask")


def model_inputs(batch: dict, device) -> dict:
    """The batch's model inputs on `device` (None stays None: a unimodal model reads one side)."""
    return {k: None if batch[k] is None else batch[k].to(device) for k in MODEL_INPUTS}
