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
import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pydantic

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
    # which of the backbone's layers the model reads: -1 the last (Whisper: after its final
    # LayerNorm), k >= 0 the output of layer k (0: the input embeddings). `python -m train probe`
    # on Whisper tiny.en, 5 held-out groups: RAVDESS emotion 0.77 UA at layer 2 against 0.76 for
    # the last; the synthetic corpus's prosody emotion 0.66 at layer 2, 0.71 at 0, 0.56 for the
    # last. The shipped default trained on layer 2 did not gain (fold g1: RAVDESS 67.2 against
    # 70.3, synthetic 69.7 against 69.6), so the default stays on the last layer.
    hidden_layer: int = -1
    # instead of one layer: a learned softmax-weighted sum of every layer (SUPERB's weighted sum;
    # the embeddings, each block, the last after its LayerNorm); caches hold every layer
    layer_mix: bool = False
    # also read this layer beside `hidden_layer` (0: the embeddings): the two are concatenated
    # before the projection, so neither is blended into the other. A linear probe reads how a
    # synthetic clip was said from tiny.en's embeddings better than from its last layer (1,500
    # clips at -25 dBFS, 5 held-out voice groups: 0.66 against 0.56 UA); trained with
    # extra_layer 0 (fold g1, one seed) the speech head gained 2 points of that and RAVDESS lost
    # 8; extra_layer 1 with modality targets, five folds: +0.9 points overall (README), the
    # shipped YAML's setting (train/configs/whisper_minilm.yaml); a preset alone reads one layer
    extra_layer: int | None = None
    # scale every clip to this active speech level (dBFS) before the encoder, in training and
    # serving alike (mgcma/level.py): the microphone's gain then no longer moves the decision.
    # None reads the clip at its recorded level (Whisper's features move with it)
    input_level_dbfs: float | None = None
    # leading and trailing pauses longer than this (seconds) are cut to it before the encoder,
    # in training and serving alike (mgcma/pauses.py): RAVDESS's clips hold about a second of
    # silence on either side, a microphone's often more. None reads the clip as it is
    max_pause_seconds: float | None = None
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
    # not in the paper: with the token level on, the fusion MLP also reads the self-attended
    # pooled streams (what it reads without the token level) beside the two cross-attended ones,
    # so removing the token level never removes what the classifier could read before it
    read_pooled: bool = False
    # not in the paper: the fused logits start from the voice-first reading of the two auxiliary
    # heads (the voice's emotion, or the words' where the voice is neutral; mgcma/prior.py) and
    # the fusion MLP adds its correction. Needs the auxiliary heads and a "neutral" emotion
    voice_first: bool = False
    # not in the paper: a logistic regression on the speech backbone's states mean-pooled over the
    # clip, fitted on the training split's human voices after training (train/voice_probe.py);
    # its log-probabilities are added to the fused and speech logits where the voice gate hears a
    # human voice (mgcma/voices.py). voice_probe_c: its inverse L2 strength (sklearn's C)
    voice_probe: bool = False
    voice_probe_c: float = 0.1


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
    # the auxiliary heads learn what each modality says by itself where the data knows it (the
    # synthetic corpus's prosody_emotion and text_emotion), not the label: a conflict clip's
    # words are not angry, a "words" clip's voice is not happy (not in the paper)
    modality_targets: bool = False
    # λ_gate: binary cross-entropy of the voice gate (classifier.voice_probe) against the voice
    # a training clip is known to have (synthetic for the synthetic corpus, human otherwise)
    voice_gate_weight: float = 0.1


@dataclass
class CalibrationConfig:
    """Temperature scaling (Guo et al. 2017): probabilities are softmax(logits / T) per head.

    Fitted after training on the validation split (``train.calibrate``); 1.0 leaves a head's
    probabilities as trained. The predicted emotion never changes, only how sure it is.

    Validation's speakers are training speakers. With a voice gate (``classifier.voice_probe``)
    a human voice gets its own temperatures, fitted by a cross-validation on the test speakers
    of its other folds (``train.unheard``), and a clip's temperature is
    w · T + (1 − w) · T_human, w being how synthetic the gate hears the voice; None: T alone.
    """

    fused: float = 1.0
    speech: float = 1.0  # the auxiliary speech-only head
    text: float = 1.0  # the auxiliary text-only head
    fitted_on: str = ""  # what the temperatures were fitted on, e.g. "validation, 336 utterances"
    fused_human: float | None = None  # a human voice's fused temperature (needs the voice gate)
    speech_human: float | None = None  # … and its speech head's
    fitted_on_human: str = ""  # e.g. "human voices of unheard speakers: folds g2–g5, 448 clips"

    def validate(self) -> None:
        for name in ("fused", "speech", "text", "fused_human", "speech_human"):
            value = getattr(self, name)
            if value is None and name.endswith("_human"):
                continue
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"calibration.{name} must be a positive number, got {value}")


@pydantic.with_config(extra="forbid")  # in every section: build_dataclass refuses unknown keys
@dataclass
class MGCMAConfig:
    speech: SpeechEncoderConfig = field(default_factory=SpeechEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    modalities: str = "both"  # "speech" and "text" are the unimodal ablations
    emotions: tuple[str, ...] = EMOTIONS
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
            config.classifier.voice_first = False
            if variant == "text_only":  # no voice to read
                config.classifier.voice_probe = False
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
        if self.classifier.voice_first and not self.classifier.auxiliary_heads:
            raise ConfigError("classifier.voice_first reads the auxiliary heads: switch them on")
        if self.classifier.voice_probe and not self.uses_speech:
            raise ConfigError("classifier.voice_probe reads the voice: it needs a speech side")
        if self.classifier.voice_probe_c <= 0:
            raise ConfigError("classifier.voice_probe_c must be positive")
        if self.classifier.voice_first and "neutral" not in self.emotions:
            raise ConfigError("classifier.voice_first defers to the words on 'neutral': add it")
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
        if self.speech.hidden_layer < -1:
            raise ConfigError("speech.hidden_layer must be -1 (the last layer) or a layer number")
        level = self.speech.input_level_dbfs
        if level is not None and not -60.0 <= level <= 0.0:
            raise ConfigError(f"speech.input_level_dbfs must lie in [-60, 0] dBFS, got {level}")
        pause = self.speech.max_pause_seconds
        if pause is not None and not 0.1 <= pause <= 30.0:
            raise ConfigError(f"speech.max_pause_seconds must lie in [0.1, 30] s, got {pause}")
        extra = self.speech.extra_layer
        if extra is not None and (extra < 0 or extra == self.speech.hidden_layer):
            raise ConfigError("speech.extra_layer is a layer number other than speech.hidden_layer")
        if extra is not None and self.speech.layer_mix:
            raise ConfigError("speech.layer_mix already reads every layer: drop speech.extra_layer")
        if self.speech.layer_mix and self.speech.hidden_layer != -1:
            raise ConfigError("speech.layer_mix mixes every layer: leave speech.hidden_layer at -1")
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
            set_dotted(data, key, value)
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


def set_dotted(data: dict, key: str, value: Any, *, known_only: bool = True) -> None:
    """`data["a"]["b"] = value` for `key` "a.b", as `--a.b=value` overrides set it.

    `known_only` refuses a key that `data` lacks, except in an encoder's `overrides` (transformers
    kwargs: any key may be added there); without it missing sections are made, and the dataclass
    check that follows names any key it does not know.
    """
    *sections, name = key.split(".")
    node = data
    for section in sections:
        node = node.get(section) if known_only else node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"unknown config key {key!r}")
    if known_only and name not in node and sections[-1:] != ["overrides"]:
        raise ConfigError(f"unknown config key {key!r}")
    node[name] = value


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """Instantiate dataclass `cls` from plain values, checking names and types recursively.

    The values are those of a YAML or JSON file, checked as pydantic checks JSON in strict mode: no
    unknown keys, no bool for a number, an int is a float, a list of strings is a tuple.
    """

    def refuse(value: Any) -> Any:
        raise ConfigError(f"{path}: {value!r} is not a plain value (string, number, list, ...)")

    try:
        return _adapter(cls).validate_json(json.dumps(data, default=refuse), strict=True)
    except pydantic.ValidationError as error:
        raise _config_error(error.errors(), path) from None


_adapter = functools.cache(pydantic.TypeAdapter)
# pydantic's error types → what the value must be, in the words the CLI has always used
_EXPECTED = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "dict_type": "a mapping",
    "dataclass_type": "a mapping",
    "tuple_type": "a list of strings",
}


def _config_error(errors: list[dict], path: str) -> ConfigError:
    """pydantic's first error as one line that names the key, e.g. `config.alignment.dim`."""
    kind, loc = errors[0]["type"], errors[0]["loc"]
    if kind == "value_error":  # raised by a dataclass's own validate(): already one line
        cause = errors[0]["ctx"]["error"]
        return cause if isinstance(cause, ConfigError) else ConfigError(f"{path}: {cause}")
    if kind == "unexpected_keyword_argument":
        names = sorted(str(error["loc"][-1]) for error in errors if error["loc"][:-1] == loc[:-1])
        return ConfigError(f"unknown key(s) in {'.'.join((path, *loc[:-1]))}: {', '.join(names)}")
    where = ".".join((path, *map(str, loc)))
    if kind not in _EXPECTED:  # pragma: no cover - no field here has another kind of type
        return ConfigError(f"{where}: {errors[0]['msg']}")
    return ConfigError(f"{where} must be {_EXPECTED[kind]}, got {errors[0]['input']!r}")
