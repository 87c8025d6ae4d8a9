"""A disk cache of what frozen backbones compute, so an epoch trains only the layers above them.

A frozen encoder gives the same output for the same input in every epoch; with Whisper tiny.en and
MiniLM frozen, the encoders are almost all of a step's cost. :class:`FeatureCache` stores each
utterance's backbone states once, as float16 safetensors files named by a sha256 of:

- speech: the decoded 16-kHz samples (so a re-encoded file with the same sound hits), the
  encoder's identity (model type, weights sha256, input settings) and the augmentation (settings,
  seed and copy number; copy 0 is the clean clip);
- text: the token ids and the text encoder's identity.

Augmentation survives caching as a few fixed augmented copies per utterance (``copies``); each
epoch draws one of them (or the clean clip) per utterance. The cache lives in a run folder and is
never committed (``runs/`` is ignored by git).

Files once read stay in memory for the rest of the process, up to a budget (``memory_mb``): they
are content-addressed and never rewritten, so a held copy cannot go stale, and every cache of the
process shares them (cv's folds, the ablation's variants). Reading a file costs about 0.5 ms, two
per utterance: a fifth of the shipped default's training step on 2 cores before they were held.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from mgcma.audio import load_audio
from mgcma.batch import pad_waveforms
from mgcma.constants import SAMPLE_RATE
from mgcma.model import MGCMA
from mgcma.pauses import cut_pauses
from train.manifest import Utterance

FORMAT = 1  # bump when what is stored changes


def _digest(*parts) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else json.dumps(part).encode())
        hasher.update(b"\0")
    return hasher.hexdigest()


class _Held:
    """Cache files already read (path → tensors), kept while they fit in `budget` bytes; a clip's
    audio key (path, size, mtime, cut → digest) and a transcript's token ids, for the process."""

    def __init__(self) -> None:
        self.files: dict[Path, dict[str, torch.Tensor]] = {}
        self.bytes = 0
        self.audio_keys: dict[tuple, str] = {}
        self.cut_starts: dict[tuple, int] = {}  # samples the pause cut took from a clip's start
        self.token_ids: dict[tuple[str, str], list[int]] = {}

    def load(self, path: Path, budget: int) -> dict[str, torch.Tensor]:
        held = self.files.get(path)
        if held is None:
            held = load_file(path)
            size = sum(t.numel() * t.element_size() for t in held.values())
            if self.bytes + size <= budget:
                self.files[path] = held
                self.bytes += size
        return held


_HELD = _Held()


def cacheable(model: MGCMA) -> bool:
    """True when every backbone the model reads is frozen (its output never changes)."""
    encoders = [e for e in (model.speech_encoder, model.text_encoder) if e is not None]
    return bool(encoders) and all(e.frozen for e in encoders)


class FeatureCache:
    """Backbone states of utterances, computed once and read back in every epoch.

    Parameters
    ----------
    directory : where the files go (created)
    model : the model whose frozen backbones compute the states
    max_seconds : clips are cut to this length first, as the dataset cuts them; then their long
        pauses to the model's ``speech.max_pause_seconds`` (`mgcma.pauses`). A clip's key is the
        digest of what is left, so a clip the pause cut leaves alone keeps its entries
    augment : ``augment(samples, rng) -> samples`` for copies 1…``copies``, or None
    copies : augmented copies per utterance (0: clean clips only)
    seed : seeds the augmentation of each copy, with the audio's digest and the copy number
    memory_mb : how much of what was read stays in memory for the process (0: none)
    """

    def __init__(
        self,
        directory: str | Path,
        model: MGCMA,
        *,
        max_seconds: float,
        augment=None,
        copies: int = 0,
        seed: int = 0,
        augment_settings: dict | None = None,
        memory_mb: int = 3072,
    ) -> None:
        if not cacheable(model):
            raise ValueError("only frozen backbones can be cached (trainable_layers = 0)")
        self.directory = Path(directory)
        self.model = model
        self.max_seconds = max_seconds
        speech = model.config.speech if model.speech_encoder is not None else None
        self.max_pause = speech.max_pause_seconds if speech is not None else None
        self.augment = augment
        self.copies = copies if augment is not None else 0
        self.seed = seed
        self.memory = memory_mb * 2**20
        config = model.config
        self.speech_identity = None
        if model.speech_encoder is not None:
            speech = config.speech
            self.speech_identity = [
                FORMAT, speech.model_type, speech.weights_sha256, speech.normalize_input,
                speech.hf_config if not speech.weights_sha256 else None, max_seconds,
                augment_settings or {}, seed,
            ] + ([speech.hidden_layer] if speech.hidden_layer != -1 else []) + (
                ["layer_mix"] if speech.layer_mix else []
            ) + (
                [("extra_layer", speech.extra_layer)] if speech.extra_layer is not None else []
            ) + (
                [("level", speech.input_level_dbfs)] if speech.input_level_dbfs is not None else []
            )  # fmt: skip
        self.text_identity = None
        if model.text_encoder is not None:
            text = config.text
            self.text_identity = [
                FORMAT, text.weights_sha256, text.hf_config if not text.weights_sha256 else None,
                text.max_tokens,
            ]  # fmt: skip
        self._text_key = json.dumps(self.text_identity)
        self._speech_paths: dict[tuple, Path] = {}  # (audio, copy) → file, for this cache
        self._last_clip: tuple[Path | None, np.ndarray | None] = (None, None)

    # -- keys ---------------------------------------------------------------------------------

    def _clip(self, path: Path) -> np.ndarray:
        """The clip decoded and cut as the dataset cuts it; the last one is kept, so a clip's
        copies (consecutive in `fill`) and its key share one decode."""
        if self._last_clip[0] != path:
            samples = load_audio(path, max_seconds=self.max_seconds).samples
            first = 0
            if self.max_pause is not None:
                samples, first = cut_pauses(samples, self.max_pause)  # (N',)
            key = _digest(np.ascontiguousarray(samples).tobytes())
            file_key = self._file_key(path)
            _HELD.audio_keys.setdefault(file_key, key)
            _HELD.cut_starts.setdefault(file_key, first)
            self._last_clip = (path, samples)
        return self._last_clip[1]

    def _file_key(self, path: Path) -> tuple:
        """What names a decoded, cut clip without decoding it: the file as it is on disk."""
        stat = path.stat()
        return (
            str(path.resolve()),
            stat.st_size,
            stat.st_mtime_ns,
            self.max_seconds,
            self.max_pause,
        )

    def _audio_key(self, path: Path) -> str:
        """sha256 of the clip's decoded samples (decoded once per process and file)."""
        file_key = self._file_key(path)
        if file_key not in _HELD.audio_keys:
            self._last_clip = (None, None)
            self._clip(path)
        return _HELD.audio_keys[file_key]

    def cut_seconds(self, utterance: Utterance) -> float:
        """Seconds the pause cut took from the start of the utterance's clip (0.0 without it)."""
        if self.max_pause is None:
            return 0.0
        path = Path(utterance.audio)
        self._audio_key(path)  # decodes the clip once per process
        return _HELD.cut_starts[self._file_key(path)] / SAMPLE_RATE

    def speech_path(self, utterance: Utterance, copy: int) -> Path:
        named = (utterance.audio, copy)
        if named not in self._speech_paths:
            key = _digest(self._audio_key(Path(utterance.audio)), self.speech_identity, copy)
            self._speech_paths[named] = self.directory / "speech" / key[:2] / f"{key}.safetensors"
        return self._speech_paths[named]

    def text_path(self, token_ids: Sequence[int]) -> Path:
        key = _digest(list(token_ids), self.text_identity)
        return self.directory / "text" / key[:2] / f"{key}.safetensors"

    # -- reading ------------------------------------------------------------------------------

    def speech(self, utterance: Utterance, copy: int = 0) -> tuple[torch.Tensor, float]:
        """(T_s, D_s) float16 states of one copy, and how much that copy was stretched in time
        (speed perturbation: its length over the clean clip's)."""
        path = self.speech_path(utterance, copy)
        if not path.is_file():
            self.fill([utterance], progress=False, copies=copy)
        stored = _HELD.load(path, self.memory)
        return stored["states"], float(stored["samples"]) / float(stored["clean_samples"])

    def token_ids(self, text: str) -> list[int]:
        """The ids the model's tokenizer gives `text` (truncated as the model truncates)."""
        key = (self._text_key, text)
        if key not in _HELD.token_ids:
            batch = self.model.tokenize([text])
            _HELD.token_ids[key] = batch["input_ids"][0][batch["text_mask"][0]].tolist()
        return list(_HELD.token_ids[key])

    def text(self, token_ids: Sequence[int]) -> torch.Tensor:
        """(T_t, D_t) float16 states of one tokenised transcript (no padding)."""
        path = self.text_path(token_ids)
        if not path.is_file():
            self._fill_text([list(token_ids)])
        return _HELD.load(path, self.memory)["states"]

    # -- filling ------------------------------------------------------------------------------

    def copy_samples(self, utterance: Utterance, copy: int) -> tuple[np.ndarray, int]:
        """The waveform of one copy (copy 0: the clip; else an augmented version of it), and
        the clean clip's length in samples."""
        samples = self._clip(Path(utterance.audio))
        if copy == 0:
            return samples, len(samples)
        audio_seed = int(self._audio_key(Path(utterance.audio))[:8], 16)
        rng = np.random.default_rng([self.seed, audio_seed, copy])
        return np.asarray(self.augment(samples, rng), dtype=np.float32), len(samples)

    @torch.inference_mode()
    def fill(
        self,
        utterances: Sequence[Utterance],
        batch_size: int = 16,
        progress: bool = True,
        copies: int | None = None,
    ) -> int:
        """Compute what is missing for `utterances` (the clean clip and `copies` augmented
        copies, default all; and their texts); returns how many speech entries were computed."""
        model = self.model
        copies = self.copies if copies is None else min(copies, self.copies)
        computed = 0
        if model.speech_encoder is not None:
            todo = [
                (u, c)
                for u in utterances
                for c in range(copies + 1)
                if not self.speech_path(u, c).is_file()
            ]
            bar = tqdm(total=len(todo), desc="speech features", disable=not progress, leave=False)
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                copies = [self.copy_samples(u, c) for u, c in chunk]
                speech, mask = pad_waveforms([wave for wave, _ in copies])  # (b, N)
                states, frame_mask = model.speech_encoder.backbone_states(
                    speech.to(model.device), mask.to(model.device)
                )  # (b, T_s, D_s), (b, T_s)
                for (u, c), row, row_mask, (wave, clean) in zip(
                    chunk, states, frame_mask, copies, strict=True
                ):
                    self._write(
                        self.speech_path(u, c),
                        states=row[row_mask].half().cpu().contiguous(),  # (T_s, D_s)
                        samples=torch.tensor(len(wave)),
                        clean_samples=torch.tensor(clean),
                    )
                computed += len(chunk)
                bar.update(len(chunk))
            bar.close()
        if model.text_encoder is not None:
            rows = [self.token_ids(u.text) for u in utterances]
            self.fill_texts(rows, batch_size)
        return computed

    def fill_texts(self, rows: Sequence[Sequence[int]], batch_size: int = 64) -> None:
        """Compute the text states of the token-id rows not cached yet (a text corpus's too)."""
        self._fill_text([list(r) for r in rows if not self.text_path(r).is_file()], batch_size)

    @torch.inference_mode()
    def _fill_text(self, rows: list[list[int]], batch_size: int = 64) -> None:
        encoder = self.model.text_encoder
        unique = list({tuple(r): r for r in rows}.values())
        for start in range(0, len(unique), batch_size):
            chunk = unique[start : start + batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)  # (b, T_t); 0 is never read
            mask = torch.zeros(len(chunk), width, dtype=torch.bool)
            for i, row in enumerate(chunk):
                ids[i, : len(row)] = torch.tensor(row)
                mask[i, : len(row)] = True
            device = self.model.device
            states = encoder.backbone_states(ids.to(device), mask.to(device))  # (b, T_t, D_t)
            for row, hidden in zip(chunk, states, strict=True):
                self._write(
                    self.text_path(row), states=hidden[: len(row)].half().cpu().contiguous()
                )

    @staticmethod
    def _write(path: Path, **tensors: torch.Tensor) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a name of this process's own: two fits filling one cache side by side (`--jobs 2`) are
        # seeded alike, so a name drawn from numpy's global generator was the same in both
        staging = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        save_file(tensors, staging)
        staging.replace(path)  # atomic: a reader never sees half a file
