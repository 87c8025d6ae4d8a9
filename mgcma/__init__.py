"""MGCMA: Multi-Granularity Cross-Modal Alignment for speech + text emotion recognition.

>>> import mgcma
>>> model = mgcma.load_model("assets/checkpoints/whisper_minilm")
>>> audio = mgcma.load_audio("clip.wav")  # decoded once: 16-kHz mono float32
>>> analysis = mgcma.Analyzer(model).analyze(audio, text="I can't believe you did that")
>>> analysis.label, analysis.probs  # and every artifact the app draws

A new model for training: ``mgcma.build_model(mgcma.MGCMAConfig.preset("whisper_minilm"))``
(its pretrained backbones loaded); ``mgcma.save_model(model, directory)`` writes a checkpoint.
"""

from mgcma.analysis import Analysis, Analyzer
from mgcma.audio import Audio, load_audio
from mgcma.bank import ReferenceBank
from mgcma.checkpoint import CheckpointError, build_model, load_model, save_model
from mgcma.config import MGCMAConfig
from mgcma.constants import EMOTIONS, SAMPLE_RATE
from mgcma.model import MGCMA

__all__ = [
    "EMOTIONS",
    "SAMPLE_RATE",
    "MGCMA",
    "MGCMAConfig",
    "Analysis",
    "Analyzer",
    "Audio",
    "load_audio",
    "ReferenceBank",
    "CheckpointError",
    "build_model",
    "load_model",
    "save_model",
]
