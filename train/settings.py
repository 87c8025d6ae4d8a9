"""Experiment files: small YAML documents of plain values, with typed `--key=value` overrides.

An experiment names a model preset, dotted overrides of the model config, the data, and the
optimisation. Nothing is built from YAML but these dataclasses; the resolved experiment is saved
next to every run as `experiment.yaml`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic
import yaml

from mgcma.config import ConfigError, MGCMAConfig, build_dataclass, set_dotted


@dataclass
class DataSettings:
    manifest: str = "corpus/manifest.jsonl"  # relative paths resolve against the YAML's folder
    # several corpora instead of `manifest`: path → weight, the times each of its training
    # utterances is drawn per epoch on average (0.5: half of them, a new half every epoch)
    manifests: dict = field(default_factory=dict)
    test_group: str = ""  # held out by `fit`; `cv` iterates over every group
    val_fraction: float = 0.1  # stratified, drawn from the training groups only
    max_seconds: float = 12.0  # longer clips are cut while training
    vocab_size: int = 2000  # WordPiece vocabulary for a text encoder trained from scratch
    # frozen backbones' outputs are computed once into this folder (relative to the YAML) and
    # read back every epoch; "" computes them in every step. Never committed (runs/ is ignored).
    feature_cache: str = ""
    # what the cache's files hold once read stays in memory up to this size (per process; the
    # default corpus mix needs about 2.2 GB): a cached step then reads no file
    feature_memory_mb: int = 3072
    # share of training transcripts replaced by nothing or by made-up words (labels kept), so an
    # empty or nonsense transcript teaches the model to leave the decision to the voice
    text_dropout: float = 0.0


@dataclass
class TextCorpusSettings:
    """A text corpus without audio whose rows train the text side (`train.text_corpus`)."""

    manifest: str = ""  # a text manifest (python -m train goemotions); "" for none
    batch_size: int = 32  # its rows added to every training step
    balanced: bool = True  # every class drawn equally often (GoEmotions: 7× more happy than sad)


@dataclass
class AugmentSettings:
    enabled: bool = True
    speed: float = 0.1  # resampling speed perturbation, ±10 % (moves pitch and tempo together)
    gain_db: float = 6.0  # loudness, ± dB
    noise_snr_db: float = 20.0  # white noise at or above this SNR, half of the time
    pink_noise: bool = False  # half of that noise pink (1/f, like a room's) instead of white
    reverb: float = 0.0  # chance of a synthetic room (RT60 0.2 s to `reverb_rt60`, DRR 0–10 dB)
    reverb_rt60: float = 0.8  # the longest reverberation time drawn, seconds
    telephone: float = 0.0  # chance of a telephone channel (8 kHz, 300–3,400 Hz, μ-law)
    probability: float = 0.8  # chance that an utterance is augmented at all
    copies: int = (
        2  # with a feature cache: augmented copies stored per utterance, one drawn per epoch
    )


@dataclass
class OptimSettings:
    epochs: int = 10
    batch_size: int = 16
    grad_accum: int = 1
    lr_backbone: float = 5e-5  # pretrained encoders: small steps keep what they know
    lr_new: float = 1e-3  # alignment modules, heads and encoders trained from scratch
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1  # linear warm-up, then cosine decay to zero
    max_grad_norm: float = 5.0
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA, none on CPU), "no", "fp16", "bf16"
    seed: int = 0
    num_workers: int = 0
    save_every_steps: int = 0  # also checkpoint mid-epoch (0: at epoch ends only)
    # validation metric that picks the best epoch: "ua", "wa", "f1", or "corpus_ua" (the mean
    # of each corpus's UA, so the largest corpus of a mix does not choose alone)
    select_on: str = "ua"
    max_steps: int = 0  # stop after this many optimiser steps (0: no limit); for smoke runs
    # validate, select and save an exponential moving average of the weights (train/average.py):
    # each step the average moves (1 - decay) of the way to the weights; 0 turns it off
    ema_decay: float = 0.0


@pydantic.with_config(extra="forbid")  # in every section: build_dataclass refuses unknown keys
@dataclass
class Experiment:
    preset: str = "compact"
    variant: str = "full"
    model: dict = field(default_factory=dict)  # dotted overrides, e.g. {"alignment.dim": 64}
    data: DataSettings = field(default_factory=DataSettings)
    text_corpus: TextCorpusSettings = field(default_factory=TextCorpusSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    base_dir: str = "."  # the folder the YAML came from (set when loading)

    def model_config(self) -> MGCMAConfig:
        """The preset with the YAML's overrides, then the variant's ablation: an override that a
        variant cannot have (the voice probe of a text-only model) is switched off with the
        modules the variant removes, not refused."""
        config = MGCMAConfig.preset(self.preset)
        overrides = {
            # a backbone file named relative to the YAML, like the manifest
            key: str(self.resolve(value))
            if key.endswith(".backbone") and str(value).startswith(".")
            else value
            for key, value in self.model.items()
        }
        config = config.override(overrides) if overrides else config
        return config.ablation(self.variant)

    def resolve(self, value: str) -> Path:
        """A path from the YAML: relative paths resolve against the YAML's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else Path(self.base_dir) / path

    def manifest_path(self) -> Path:
        return self.resolve(self.data.manifest)

    def manifest_weights(self) -> dict[Path, float]:
        """Every manifest of the experiment with its sampling weight."""
        if not self.data.manifests:
            return {self.manifest_path(): 1.0}
        weights = {}
        for path, weight in self.data.manifests.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
                raise ConfigError(f"data.manifests: the weight of {path} must be a positive number")
            weights[self.resolve(path)] = float(weight)
        return weights

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


SELECT_ON = ("ua", "wa", "f1", "corpus_ua")


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2's floats: PyYAML's 1.1 rules read ``1e-3`` (no dot) as a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_value(text: str) -> Any:
    """`--key=value` text → a plain value, read as YAML (3, 0.001, 1e-3, true, [1, 2])."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 — a SafeLoader: plain values only
    except yaml.YAMLError as error:
        raise ConfigError(f"cannot read value {text!r}: {error}") from error


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read an experiment YAML and apply `key=value` overrides (dotted; type-checked)."""
    path = Path(path)
    data = _read_yaml(path)
    data.setdefault("base_dir", str(path.parent.resolve()))
    for override in overrides or []:
        key, sep, value = override.removeprefix("--").partition("=")
        if not sep:
            raise ConfigError(f"override {override!r} must look like --key=value")
        if key.startswith("model."):  # model overrides stay dotted: the model config checks them
            data.setdefault("model", {})[key.removeprefix("model.")] = parse_value(value)
        else:
            set_dotted(data, key, parse_value(value), known_only=False)
    experiment = build_dataclass(Experiment, data, path.name)
    experiment.model_config()  # validates preset, variant and model overrides now
    if experiment.optim.select_on not in SELECT_ON:
        raise ConfigError(f"optim.select_on must be one of {', '.join(SELECT_ON)}")
    if not 0.0 <= experiment.optim.ema_decay < 1.0:
        raise ConfigError(f"optim.ema_decay must lie in [0, 1), got {experiment.optim.ema_decay}")
    return experiment


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    """A YAML mapping; `base: other.yaml` (beside it) supplies every key it does not set."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: `base` files include each other")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader) or {}  # noqa: S506 — SafeLoader
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read experiment {path}: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(_read_yaml(path.parent / str(base), (*seen, path.resolve())), data)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
