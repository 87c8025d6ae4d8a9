"""MGCMA: Multi-Granularity Cross-Modal Alignment for speech + text emotion recognition.

>>> import mgcma
>>> model = mgcma.load_model("assets/checkpoints/whisper_minilm")
>>> analysis = mgcma.Analyzer(model).analyze(waveform, 16000, "I can't believe you did that")
>>> analysis.label, analysis.probs  # and every artifact the app draws
"""

from mgcma.analysis import Analysis, Analyzer
from mgcma.bank import ReferenceBank
from mgcma.checkpoint import CheckpointError, load_model
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
    "ReferenceBank",
    "CheckpointError",
    "load_model",
]
