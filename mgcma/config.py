"""Architecture settings: typed, nested dataclasses stored in every checkpoint.

`MGCMAConfig.preset("paper")` is the paper's setting (pretrained wav2vec 2.0 base + BERT base,
fine-tuned); `MGCMAConfig.preset("whisper_minilm")` is the shipped default (Whisper tiny.en's audio
encoder + all-MiniLM-L6-v2, both pretrained and frozen; only the MGCMA layers above them train);
`MGCMAConfig.preset("compact")` builds small encoders from scratch with a WordPiece tokenizer
trained on the corpus (for tests, and corpora where nothing pretrained fits). Every default that
the paper does not state is a field here, with the reason beside it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from mgcma.constants import EMOTIONS

VARIANTS: tuple[str, ...] = (
    "full",
    "no_distribution",
    "no_instance",
    "no_token",
    "speech_only",
    "text_only",
)
MODALITIES: tuple[str, ...] = ("both", "speech", "text")


class ConfigError(ValueError):
    """A configuration value has the wrong name, type or range."""


@dataclass
class SpeechEncoderConfig:
    """A Hugging Face audio encoder (wav2vec2, HuBERT, WavLM, data2vec-audio)."""

    backbone: str = "facebook/wav2vec2-base"  # Hub id or local directory of pretrained weights
    from_scratch: bool = False  # build `model_type` from `overrides` with random weights instead
    model_type: str = "wav2vec2"  # used only when from_scratch
    overrides: dict = field(default_factory=dict)  # transformers config kwargs applied on top
    freeze_feature_encoder: bool = True  # the paper fine-tunes wav2vec2 with its CNN frozen
    normalize_input: bool = True  # per utterance: waveform or each filterbank bin to mean 0, var 1
    hf_config: dict | None = None  # the resolved transformers config, filled in when built
    # -1 fine-tunes every layer (the paper); 0 freezes the pretrained backbone; N trains its top N
    # layers. A frozen (or partly frozen) backbone is not copied into checkpoints: they name its
    # file and sha256 instead, so every checkpoint that uses it shares one copy.
    trainable_layers: int = -1
    # average this many consecutive backbone frames (2: one frame per 40 ms): halves the cost of
    # every layer above the encoder; word-level attention needs no finer grid
    frame_pooling: int = 1
    download_name: str = ""  # where the same weights come from when `backbone`'s file is absent
    weights_sha256: str = ""  # of the backbone's weights file, checked when it is loaded


@dataclass
class TextEncoderConfig:
    """A Hugging Face text encoder (BERT family)."""

    backbone: str = "bert-base-uncased"
    from_scratch: bool = False
    model_type: str = "bert"
    overrides: dict = field(default_factory=dict)
    max_tokens: int = 128  # IEMOCAP turns are short; 128 sub-words covers every one of them
    hf_config: dict | None = None
    trainable_layers: int = -1  # as for the speech encoder
    download_name: str = ""
    weights_sha256: str = ""


def references_backbone(encoder: SpeechEncoderConfig | TextEncoderConfig) -> bool:
    """True when checkpoints name this encoder's pretrained file instead of copying it."""
    return not encoder.from_scratch and encoder.trainable_layers >= 0


@dataclass
class AlignmentConfig:
    """The three granularities and the shared space they live in."""

    dim: int = 256  # shared width d after the Linear + LayerNorm projections
    heads: int = 4  # heads of the self- and cross-attention layers
    dropout: float = 0.1
    self_attention_layers: int = 1  # intra-modal Transformer layers per modality (DESIGN §2.2)
    distribution: bool = True  # coarse: Gaussian per utterance and modality, W2 contrast
    gaussian_dim: int = 64  # g
    w2_scale: float = 1 / 200  # a in Sim = -a·W2 + b (MAP, CVPR 2023)
    w2_shift: float = 4.0  # b
    instance: bool = True  # utterance pairs: InfoNCE on projected embeddings
    instance_dim: int = 128
    token: bool = True  # fine: bidirectional cross-attention between words and frames
    temperature_init: float = 0.07  # CLIP's initial temperature, learnable afterwards
    label_aware: bool = False  # same-emotion pairs count as positives in both contrasts


@dataclass
class ClassifierConfig:
    hidden: int = 256  # width of the fusion MLP, whose hidden vector is the "fused embedding"
    dropout: float = 0.2
    auxiliary_heads: bool = True  # speech-only and text-only heads, shown by the app


@dataclass
class LossConfig:
    distribution_weight: float = 0.1  # λ_dist
    instance_weight: float = 0.1  # λ_inst
    auxiliary_weight: float = 0.3  # λ_aux, on CE_speech + CE_text
    label_smoothing: float = 0.0
    # λ_guide: where a word's true time span is known (synthetic corpus, forced alignment), pull
    # the word's cross-attention onto its frames and the frames' onto the word (not in the paper:
    # without it the cross-attention of a from-scratch model need not look at the words at all)
    token_guidance_weight: float = 0.0
    # λ_text: CE of the text-only head on a text corpus without audio (train.settings
    # TextCorpusSettings; GoEmotions in the default). Not in the paper: speech + text corpora
    # are small and their sentences few, a text corpus teaches the text side real language
    text_corpus_weight: float = 0.0


@dataclass
class CalibrationConfig:
    """Temperature scaling (Guo et al. 2017): probabilities are softmax(logits / T) per head.

    Fitted after training on the validation split (``train.calibrate``); 1.0 leaves a head's
    probabilities as trained. The predicted emotion never changes, only how sure it is.
    """

    fused: float = 1.0
    speech: float = 1.0  # the auxiliary speech-only head
    text: float = 1.0  # the auxiliary text-only head
    fitted_on: str = ""  # what the temperatures were fitted on, e.g. "validation, 336 utterances"

    def validate(self) -> None:
        for name in ("fused", "speech", "text"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"calibration.{name} must be a positive number, got {value}")


@dataclass
class MGCMAConfig:
    speech: SpeechEncoderConfig = field(default_factory=SpeechEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    modalities: str = "both"  # "speech" and "text" are the unimodal ablations
    emotions: tuple = EMOTIONS
    variant: str = "full"  # a name from VARIANTS, for display

    def __post_init__(self) -> None:
        self.validate()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str) -> MGCMAConfig:
        """The "paper", "whisper_minilm" or "compact" configuration (see the module docstring)."""
        if name == "paper":
            return cls()
        if name == "whisper_minilm":
            return cls(
                speech=SpeechEncoderConfig(
                    backbone="tiny.en",  # a whisper model name, or a local openai-whisper .pt
                    model_type="whisper",
                    download_name="tiny.en",
                    trainable_layers=0,  # frozen: the same weights transcribe in the app
                    frame_pooling=2,
                ),
                text=TextEncoderConfig(
                    backbone=MINILM,
                    download_name=MINILM,
                    trainable_layers=0,
                    max_tokens=64,  # spoken sentences; GoEmotions comments are 30 words at most
                ),
                # 128 wide above 384-wide encoders: an epoch over 3,000 cached clips in seconds on 2
                # cores, and 2 MB per shipped checkpoint
                alignment=AlignmentConfig(dim=128, heads=4, gaussian_dim=32, instance_dim=64),
                classifier=ClassifierConfig(hidden=128),
            )
        if name == "compact":
            return cls(
                speech=SpeechEncoderConfig(
                    from_scratch=True,
                    backbone="",
                    model_type="wav2vec2-bert",
                    overrides=dict(COMPACT_W2V_BERT),
                    freeze_feature_encoder=False,  # nothing pretrained to protect
                ),
                text=TextEncoderConfig(
                    from_scratch=True, backbone="", overrides=dict(COMPACT_BERT), max_tokens=64
                ),
                alignment=AlignmentConfig(dim=128, heads=4, gaussian_dim=32, instance_dim=64),
                classifier=ClassifierConfig(hidden=128),
            )
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")

    def ablation(self, variant: str) -> MGCMAConfig:
        """A copy with one granularity (or one modality) removed."""
        if variant not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        config = copy.deepcopy(self)
        config.variant = variant
        if variant == "no_distribution":
            config.alignment.distribution = False
        elif variant == "no_instance":
            config.alignment.instance = False
        elif variant == "no_token":
            config.alignment.token = False
        elif variant in ("speech_only", "text_only"):
            config.modalities = variant.removesuffix("_only")
            # every alignment needs both modalities, and the auxiliary heads would be the main head
            config.alignment.distribution = config.alignment.instance = False
            config.alignment.token = False
            config.classifier.auxiliary_heads = False
        config.validate()
        return config

    # -- properties used by the model ---------------------------------------------------------

    @property
    def uses_speech(self) -> bool:
        return self.modalities in ("both", "speech")

    @property
    def uses_text(self) -> bool:
        return self.modalities in ("both", "text")

    def validate(self) -> None:
        if self.modalities not in MODALITIES:
            raise ConfigError(f"modalities must be one of {MODALITIES}, got {self.modalities!r}")
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.modalities != "both":
            a = self.alignment
            if a.distribution or a.instance or a.token or self.classifier.auxiliary_heads:
                raise ConfigError("alignments and auxiliary heads need both modalities")
        if self.alignment.dim % self.alignment.heads:
            raise ConfigError(
                f"alignment.dim ({self.alignment.dim}) must be divisible by "
                f"alignment.heads ({self.alignment.heads})"
            )
        for name in ("dim", "heads", "gaussian_dim", "instance_dim", "self_attention_layers"):
            if getattr(self.alignment, name) < (0 if name == "self_attention_layers" else 1):
                raise ConfigError(f"alignment.{name} must be positive")
        if not 0 < self.alignment.temperature_init < 10:
            raise ConfigError("alignment.temperature_init must lie in (0, 10)")
        if len(self.emotions) < 2 or len(set(self.emotions)) != len(self.emotions):
            raise ConfigError("emotions must be at least two distinct names")
        for name, encoder in (("speech", self.speech), ("text", self.text)):
            if encoder.trainable_layers < -1:
                raise ConfigError(f"{name}.trainable_layers must be -1 (all), 0 (frozen) or N")
            if encoder.from_scratch and encoder.trainable_layers != -1:
                raise ConfigError(f"{name}: an encoder trained from scratch trains every layer")
        if self.speech.frame_pooling < 1:
            raise ConfigError("speech.frame_pooling must be at least 1")
        self.calibration.validate()
        if self.speech.model_type == "whisper" and self.speech.from_scratch:
            raise ConfigError("a Whisper speech encoder is read from an openai-whisper checkpoint")

    # -- (de)serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["emotions"] = list(self.emotions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MGCMAConfig:
        """Build from plain values, refusing unknown keys and wrong types with their path."""
        return build_dataclass(cls, data, "config")

    def override(self, dotted: dict[str, Any]) -> MGCMAConfig:
        """A copy with `{"alignment.dim": 64, ...}` applied, each value type-checked."""
        data = self.to_dict()
        for key, value in dotted.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"unknown config key {key!r}")
                node = node[part]
            # an encoder's `overrides` are transformers kwargs: any key may be added there
            if parts[-1] not in node and (len(parts) < 2 or parts[-2] != "overrides"):
                raise ConfigError(f"unknown config key {key!r}")
            node[parts[-1]] = value
        return MGCMAConfig.from_dict(data)


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
PRESETS: tuple[str, ...] = ("paper", "whisper_minilm", "compact")

COMPACT_W2V_BERT: dict[str, Any] = dict(
    # w2v-BERT (wav2vec2 family, conformer layers) over log-mel filterbanks: a raw-waveform CNN
    # front end costs 5-8x more to train on a CPU for the same frame rate (measured, 2 cores)
    hidden_size=128,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=256,
    feature_projection_input_dim=160,  # 80 mel bins × 2 stacked frames
    conv_depthwise_kernel_size=15,  # 300 ms of context in each conformer convolution
    mask_time_prob=0.05,  # SpecAugment-style time masking while training
    mask_time_length=5,
    layerdrop=0.0,
    add_adapter=False,
    vocab_size=32,
)

COMPACT_BERT: dict[str, Any] = dict(
    hidden_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=256,
    max_position_embeddings=128,
)


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """Instantiate dataclass `cls` from plain values, checking names and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) in {path}: {', '.join(unknown)}")
    kwargs = {name: _coerce(hints[name], value, f"{path}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except TypeError as error:  # pragma: no cover - dataclass signature mismatch
        raise ConfigError(f"{path}: {error}") from error


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, path)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, path)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    base = origin or hint
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path} must be a number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
        return value
    if base is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path} must be a mapping, got {value!r}")
        return dict(value)
    if base is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path} must be a list of strings, got {value!r}")
        return tuple(value)
    raise ConfigError(f"{path}: unsupported type {hint!r}")  # pragma: no cover
