"""One Whisper per process: the model that transcribes is the model whose encoder hears emotion.

:func:`load_whisper` loads an openai-whisper checkpoint (a model name such as ``"tiny.en"``, which
whisper downloads once, or a local ``.pt`` file) and keeps it, so the app's
:class:`~mgcma.asr.Transcriber` and a model's speech encoder share one set of weights in memory.
A model loaded from a path gets the alignment heads of the official model it is (recognised by its
dimensions), which word timestamps need.

:func:`encode` runs Whisper's audio encoder on the clip's own length: Whisper pads every input to
30 s, which on a 5-s clip costs about 8 times the compute (measured, 2 CPU cores) and lets the
encoder attend to 25 s of silence. The two choices give different features, so a model is trained
and run with the same one (this one).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
import whisper
from whisper.audio import HOP_LENGTH, log_mel_spectrogram

FRAME_SECONDS = 2 * HOP_LENGTH / 16_000  # 0.02: conv2 has stride 2 over 10-ms mel frames
MIN_SAMPLES = 400  # one 25-ms analysis window: shorter input has no mel frame to encode

# (width, decoder layers, English-only) → official name, to restore alignment heads for a file.
# "large" is left out: v1, v2 and v3-turbo share dimensions but not alignment heads.
_NAMES_BY_DIMS = {
    (384, 4, True): "tiny.en",
    (384, 4, False): "tiny",
    (512, 6, True): "base.en",
    (512, 6, False): "base",
    (768, 12, True): "small.en",
    (768, 12, False): "small",
    (1024, 24, True): "medium.en",
    (1024, 24, False): "medium",
}

_models: dict[tuple, whisper.Whisper] = {}
_hashes: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file (or of a directory's ``model.safetensors``), cached by size and mtime."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def official_name(model: whisper.Whisper) -> str | None:
    """The official model these dimensions belong to (``"tiny.en"``…), or None."""
    dims = model.dims
    english_only = dims.n_vocab == 51864
    return _NAMES_BY_DIMS.get((dims.n_audio_state, dims.n_text_layer, english_only))


def load_whisper(
    name_or_path: str | os.PathLike, device: str | torch.device = "cpu", download_root=None
) -> whisper.Whisper:
    """The Whisper model for a name or ``.pt`` path, loaded once per process.

    One copy per file: asked for on another device, the shared model moves there (the app puts
    its transcriber and its analyzer on the same device). Raises whatever ``whisper.load_model``
    raises (OSError, RuntimeError…) for a missing or corrupt file; callers word their message.
    """
    source = str(name_or_path)
    version: tuple = ()
    if source not in whisper.available_models():
        path = Path(source).expanduser().resolve()
        source = str(path)
        if path.is_file():  # a rewritten file is a different model
            version = (path.stat().st_size, path.stat().st_mtime_ns)
    key = (source, *version)
    with _lock:
        if key in _models and next(_models[key].parameters()).device != torch.device(device):
            _models[key].to(device)
        if key not in _models:
            # whisper initialises a random model before loading the weights: keep the caller's
            # random stream as it was, or a seeded run would depend on whether it loaded first
            with torch.random.fork_rng(devices=[]):
                model = whisper.load_model(source, device=device, download_root=download_root)
            name = official_name(model)
            if source not in whisper.available_models() and name in whisper._ALIGNMENT_HEADS:
                model.set_alignment_heads(whisper._ALIGNMENT_HEADS[name])
            model.eval()
            _models[key] = model
        return _models[key]


def mel_frames(num_samples: int) -> int:
    """Mel frames Whisper computes for ``num_samples`` samples (10 ms each, the last dropped)."""
    return num_samples // HOP_LENGTH


def encoder_frames(num_samples: int) -> int:
    """Encoder frames for ``num_samples`` samples: one per 20 ms (conv2 stride 2, padding 1)."""
    return (mel_frames(num_samples) + 1) // 2


def log_mel(samples: torch.Tensor, n_mels: int) -> torch.Tensor:
    """(N,) float32 at 16 kHz → (n_mels, N // 160) Whisper log-mel, normalised on this clip."""
    return log_mel_spectrogram(samples.float(), n_mels=n_mels)


def _embed(encoder: torch.nn.Module, mel: torch.Tensor) -> torch.Tensor:
    """Whisper's two convolutions and its positional table, sliced to the input's length."""
    x = F.gelu(encoder.conv1(mel))  # (B, D_s, F)
    x = F.gelu(encoder.conv2(x))  # (B, D_s, T_s)
    x = x.permute(0, 2, 1)  # (B, T_s, D_s)
    positions = encoder.positional_embedding
    if x.shape[1] > positions.shape[0]:
        raise ValueError(
            f"Whisper's encoder reads at most {positions.shape[0] * FRAME_SECONDS:.0f} s; "
            f"got {x.shape[1] * FRAME_SECONDS:.1f} s"
        )
    return (x + positions[: x.shape[1]]).to(x.dtype)  # (B, T_s, D_s)


def encode(encoder: torch.nn.Module, mel: torch.Tensor, layer: int = -1) -> torch.Tensor:
    """Whisper's ``AudioEncoder.forward`` on (B, n_mels, F) mel frames of any length ≤ 30 s.

    The same computation as openai-whisper's, with the positional table sliced to the input's
    length instead of asserting 30 s: (B, n_mels, F) → (B, ceil(F / 2), D_s). ``layer`` k ≥ 0
    stops after block k (0: the embeddings) and returns its residual stream; -1 runs every
    block and the final LayerNorm.
    """
    if layer > len(encoder.blocks):
        raise ValueError(f"Whisper's encoder has {len(encoder.blocks)} layers; asked for {layer}")
    x = _embed(encoder, mel)  # (B, T_s, D_s)
    blocks = encoder.blocks if layer < 0 else encoder.blocks[:layer]
    for block in blocks:
        x = block(x)
    return encoder.ln_post(x) if layer < 0 else x  # (B, T_s, D_s)


def encode_layers(encoder: torch.nn.Module, mel: torch.Tensor) -> list[torch.Tensor]:
    """Every layer `encode` can return, in one pass: ``[encode(·, k) for k in 0…L] + [encode(·)]``,
    L + 2 tensors of (B, T_s, D_s)."""
    states = [_embed(encoder, mel)]
    for block in encoder.blocks:
        states.append(block(states[-1]))
    return [*states, encoder.ln_post(states[-1])]
