"""Building and persisting models: the one place where a model meets files.

:func:`build_model` makes a new model for a config, its pretrained backbones and tokenizer loaded
(:mod:`mgcma.backbones`); :func:`save_model`, :func:`load_model` and :func:`push_model` write,
read and upload checkpoints. The model itself (:class:`mgcma.model.MGCMA`) reads no file and does
not know this module: the arrow points one way, from here to the model.

A checkpoint directory is everything needed to rebuild the model offline: the MGCMA config with
the resolved transformers configs of both encoders, the weights (safetensors, never pickle), and
the tokenizer. A frozen pretrained backbone is not copied: the config names its file (relative to
the checkpoint, so a folder of checkpoints can share one copy) and its sha256, and only the layers
that trained are stored; when that file is absent, the backbone's public name is loaded instead.

Loading validates every file, every tensor name, shape and value *before* the model is returned
(and a referenced backbone file against its sha256), so a missing, corrupt or mismatched
checkpoint is refused, never half-loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mgcma.backbones import load_backbone, load_tokenizer
from mgcma.config import ConfigError, MGCMAConfig, references_backbone
from mgcma.constants import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CONFIG_NAME, WEIGHTS_NAME
from mgcma.files import as_umask_allows
from mgcma.model import MGCMA

HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, "tokenizer*", "special_tokens_map.json", "vocab.txt"]


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match the architecture it describes."""


def build_model(config: MGCMAConfig, tokenizer=None) -> MGCMA:
    """A new model for `config`: pretrained backbones and their tokenizer loaded, the rest
    initialised from the current random state.

    Parameters
    ----------
    config : not changed; ``model.config`` is a copy that also records what was loaded (each
        backbone file's sha256, each transformers backbone's resolved ``hf_config``)
    tokenizer : required for a text encoder trained from scratch; otherwise the pretrained
        text backbone's is loaded

    Raises
    ------
    ConfigError : an inconsistent config, or a backbone file whose sha256 has changed
    OSError : a backbone that cannot be read (or downloaded)
    """
    config.validate()
    tokenizer = load_tokenizer(config, tokenizer)
    speech = text = None
    speech_config, text_config = config.speech, config.text
    if config.uses_speech:
        speech, sha256 = load_backbone(config.speech)
        speech_config = dataclasses.replace(config.speech, weights_sha256=sha256)
    if config.uses_text:
        text, sha256 = load_backbone(config.text)
        text_config = dataclasses.replace(config.text, weights_sha256=sha256)
    loaded = dataclasses.replace(config, speech=speech_config, text=text_config)
    return MGCMA(loaded, tokenizer, speech_backbone=speech, text_backbone=text)


def save_model(model: MGCMA, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
    """Write the checkpoint into `directory`, replacing it only once every file is complete.

    Parameters
    ----------
    dtype : store floating-point weights in this dtype (torch.float16 halves the size; loading
        always computes in float32)
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        referenced = referenced_keys(model)  # supplied by the backbone files: not stored
        tensors = {
            name: (tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor)
            .detach()
            .cpu()
            .contiguous()
            for name, tensor in model.state_dict().items()
            if name not in referenced
        }
        save_file(tensors, staging / WEIGHTS_NAME, metadata={"format": "pt"})
        document = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "weights_dtype": str(dtype or torch.float32).removeprefix("torch."),
            "mgcma": _portable_config(model.config, directory),
        }
        (staging / CONFIG_NAME).write_text(json.dumps(document, indent=2) + "\n")
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(staging)
        as_umask_allows(staging)
        replace_directory(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def referenced_keys(model: MGCMA) -> set[str]:
    """State-dict keys that referenced backbone files supply (checkpoints do not store them)."""
    keys = set()
    for prefix, encoder in (
        ("speech_encoder", model.speech_encoder),
        ("text_encoder", model.text_encoder),
    ):
        if encoder is None or not references_backbone(encoder.config):
            continue
        trained = {n for n, p in encoder.backbone.named_parameters() if p.requires_grad}
        keys |= {
            f"{prefix}.backbone.{n}" for n in encoder.backbone.state_dict() if n not in trained
        }
    return keys


def _portable_config(config: MGCMAConfig, directory: Path) -> dict:
    """The config as JSON values, local backbone files named relative to the checkpoint."""
    data = config.to_dict()
    for name in ("speech", "text"):
        encoder = data[name]
        path = Path(encoder["backbone"]).expanduser()
        if references_backbone(getattr(config, name)) and path.exists():
            relative = os.path.relpath(path.resolve(), directory.resolve())
            encoder["backbone"] = relative if relative.startswith(".") else f"./{relative}"
    return data


def replace_directory(staging: Path, directory: Path) -> None:
    """Move the finished staging directory into place; an old checkpoint survives until then."""
    if not directory.exists():
        os.replace(staging, directory)
        return
    retired = directory.with_name(f".{directory.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(directory, retired)
    os.replace(staging, directory)
    shutil.rmtree(retired, ignore_errors=True)


def load_model(
    path_or_hub_id: str | Path,
    device: str | torch.device | None = None,
    revision: str | None = None,
) -> MGCMA:
    """Load a checkpoint from a directory or a Hugging Face Hub repository, in eval mode.

    Raises
    ------
    CheckpointError : missing, unreadable, corrupt or mismatched files (the message says which)
    """
    directory = _resolve(path_or_hub_id, revision)
    config = _read_config(directory)
    tokenizer = _read_tokenizer(directory, config)
    state = _read_weights(directory)
    try:
        model = build_model(config, tokenizer)
    except (ConfigError, ValueError, KeyError, TypeError, OSError) as error:
        raise CheckpointError(f"{directory}: cannot rebuild the model: {error}") from error
    _check_state(model, state, directory)
    model.load_state_dict(state, strict=False)  # _check_state: only referenced keys are absent
    model.eval()
    if device is not None:
        model.to(device)
    return model


def _resolve(path_or_hub_id: str | Path, revision: str | None) -> Path:
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file; a checkpoint is a directory with {CONFIG_NAME}")
    text = str(path_or_hub_id)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise CheckpointError(f"checkpoint directory {text!r} not found")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, revision=revision, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError as error:
        raise CheckpointError(
            f"{text!r} is not a local directory and is not in the Hugging Face cache; "
            "downloading it needs the internet (HF_HUB_OFFLINE is set or the Hub is unreachable)"
        ) from error
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise CheckpointError(
            f"could not fetch {text!r} from the Hugging Face Hub: {error}"
        ) from error


def _read_config(directory: Path) -> MGCMAConfig:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {CONFIG_NAME}: not an MGCMA checkpoint")
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} does not describe an MGCMA checkpoint")
    if document.get("format_version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has format version {document.get('format_version')!r}; "
            f"this mgcma reads version {CHECKPOINT_VERSION}"
        )
    try:
        config = MGCMAConfig.from_dict(document.get("mgcma"))
    except ConfigError as error:
        raise CheckpointError(f"{path}: {error}") from error
    for name, encoder, used in (
        ("speech", config.speech, config.uses_speech),
        ("text", config.text, config.uses_text),
    ):
        if references_backbone(encoder):
            if encoder.backbone.startswith("."):  # a file named relative to the checkpoint
                encoder.backbone = str((directory / encoder.backbone).resolve())
            if used and not encoder.weights_sha256:
                raise CheckpointError(f"{path}: the {name} backbone's weights_sha256 is missing")
        elif used and not isinstance(encoder.hf_config, dict):
            raise CheckpointError(f"{path}: the {name} encoder's hf_config is missing")
    return config


def _read_tokenizer(directory: Path, config: MGCMAConfig):
    if not config.uses_text:
        return None
    if not any(directory.glob("tokenizer*")) and not (directory / "vocab.txt").exists():
        raise CheckpointError(f"{directory} has no tokenizer files (tokenizer.json)")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"{directory}: the tokenizer files cannot be read: {error}"
        ) from error


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    path = directory / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_NAME}")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} is corrupt or truncated: {error}") from error


def _check_state(model: MGCMA, state: dict[str, torch.Tensor], directory: Path) -> None:
    referenced = referenced_keys(model)
    expected = {k: v for k, v in model.state_dict().items() if k not in referenced}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{name} {tuple(state[name].shape)} ≠ {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in state and state[name].shape != tensor.shape
    ]
    problems = []
    for label, names in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("with the wrong shape", wrong_shape),
    ):
        if names:
            problems.append(f"{len(names)} tensor(s) {label}: {', '.join(names[:3])}")
    non_finite = [
        name
        for name, tensor in state.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]
    if non_finite:
        problems.append(f"{len(non_finite)} tensor(s) hold NaN/Inf: {', '.join(non_finite[:3])}")
    if problems:
        raise CheckpointError(
            f"{directory} does not match its config (mismatched or corrupt): " + "; ".join(problems)
        )


def push_model(model: MGCMA, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload the checkpoint to a Hub model repository (created if needed)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = save_model(model, Path(scratch) / "checkpoint")
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Upload MGCMA")
    return str(info)
