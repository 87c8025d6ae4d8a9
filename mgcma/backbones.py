"""Pretrained backbones and tokenizers: the files (or downloads) a new model starts from.

An encoder's backbone comes from one of four places, in this order:
1. a referenced pretrained file (`trainable_layers` ≥ 0: frozen, or only its top layers trained):
   `backbone` (a local file or directory, checked against `weights_sha256`) or, when that file is
   absent, `download_name`; checkpoints store only the layers that trained;
2. `hf_config` stored in a checkpoint: the architecture is rebuilt locally, weights come from
   the checkpoint's safetensors, so loading a trained model never touches the Hub;
3. `from_scratch`: `model_type` with `overrides`, random weights (the compact preset);
4. `backbone`: a Hub id or local directory loaded with `from_pretrained` (the paper preset).

This module reads 1 and 4 (and every Whisper backbone: openai-whisper's `.pt` holds both its
architecture and its weights); `mgcma.encoders` builds 2 and 3 from the config alone, so
constructing :class:`mgcma.model.MGCMA` reads no file. :func:`mgcma.checkpoint.build_model` joins
the two. Nothing here changes the config it is given: a file's sha256 is returned, not written.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import whisper
from torch import nn
from transformers import AutoModel, AutoTokenizer

from mgcma import whisper_backbone
from mgcma.config import (
    ConfigError,
    MGCMAConfig,
    SpeechEncoderConfig,
    TextEncoderConfig,
    references_backbone,
)

EncoderConfig = SpeechEncoderConfig | TextEncoderConfig


def resolve_weights(config: EncoderConfig) -> tuple[str, str]:
    """Where a pretrained backbone's weights are read from, and that file's sha256.

    Returns ``(source, sha256)``: the checked local file and its digest, or, when the file is
    absent, the public name and the digest the config already records. Raises ConfigError when
    the local file does not hash to `weights_sha256`.
    """
    path = Path(config.backbone).expanduser()
    if path.exists():
        digest = whisper_backbone.file_sha256(path)
        if config.weights_sha256 and digest != config.weights_sha256:
            raise ConfigError(
                f"the backbone file {path} has changed: its sha256 is {digest[:12]}…, the "
                f"checkpoint was trained on {config.weights_sha256[:12]}…; restore that file"
            )
        return str(path), digest
    looks_local = config.backbone.startswith((".", "/", "~")) or config.backbone.endswith(".pt")
    if looks_local and not config.download_name:
        raise ConfigError(f"the backbone file {config.backbone} does not exist")
    # a name: whisper's download checks OpenAI's checksum, the Hub its own file hashes
    return (config.download_name if looks_local else config.backbone), config.weights_sha256


def load_backbone(config: EncoderConfig) -> tuple[nn.Module | None, str]:
    """The pretrained backbone an encoder config names, and its weights file's sha256.

    Returns ``(None, weights_sha256)`` for an architecture that the encoder builds itself with
    no I/O (places 2 and 3 of the module docstring).
    """
    if isinstance(config, SpeechEncoderConfig) and config.model_type == "whisper":
        source, digest = resolve_weights(config)
        return _whisper_encoder(config, source), digest
    if references_backbone(config):
        source, digest = resolve_weights(config)
        return _from_pretrained(source, config.overrides), digest
    if config.hf_config is None and not config.from_scratch:
        if not config.backbone:
            raise ConfigError(
                "an encoder needs `backbone` (Hub id or directory) or from_scratch=True"
            )
        return _from_pretrained(config.backbone, config.overrides), config.weights_sha256
    return None, config.weights_sha256


def load_tokenizer(config: MGCMAConfig, tokenizer=None):
    """The tokenizer the text encoder needs: the one given, or the pretrained backbone's."""
    if not config.uses_text or tokenizer is not None:
        return tokenizer
    if config.text.from_scratch:
        raise ConfigError(
            "a text encoder trained from scratch needs a tokenizer: pass "
            "tokenizer=mgcma.tokenizer.train_tokenizer(training_transcripts)"
        )
    source = config.text.backbone
    if not Path(source).expanduser().exists() and config.text.download_name:
        source = config.text.download_name  # the referenced file is absent: its public name
    return AutoTokenizer.from_pretrained(source)


def _from_pretrained(source: str, overrides: dict) -> nn.Module:
    try:
        return AutoModel.from_pretrained(source, dtype=torch.float32, **overrides)
    except OSError as error:
        raise OSError(
            f"could not load the pretrained encoder {source!r}: {error}. It is downloaded "
            "from the Hugging Face Hub once (internet needed) or read from a local directory."
        ) from error


def _whisper_encoder(config: SpeechEncoderConfig, source: str) -> nn.Module:
    """Whisper's audio encoder: the transcriber's own while frozen, a private copy otherwise."""
    from mgcma import asr  # the transcriber's offline rules apply to a name here too

    missing = "" if source == config.backbone else f"{config.backbone} is missing, and "
    try:
        if asr.is_offline() and source in whisper.available_models():
            asr._check_cached(source, asr.default_download_root())
        model = whisper_backbone.load_whisper(source)
    except (OSError, RuntimeError, ValueError, KeyError, EOFError, asr.TranscriberError) as error:
        reason = str(error).replace(asr.TYPE_INSTEAD, "").strip().rstrip(".")
        raise OSError(
            f"could not load the Whisper backbone: {missing}{source!r} failed: {reason}. A name "
            "(tiny.en) is downloaded once by openai-whisper (internet needed); a local .pt file "
            "works offline."
        ) from error
    encoder = model.encoder
    return encoder if config.trainable_layers == 0 else copy.deepcopy(encoder)
