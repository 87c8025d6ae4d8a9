"""Shared fixtures: tiny models built offline, and a rule for tests that need system tools."""

from __future__ import annotations

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MGCMA_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from mgcma.config import MGCMAConfig  # noqa: E402
from mgcma.model import MGCMA  # noqa: E402
from mgcma.tokenizer import train_tokenizer  # noqa: E402

SENTENCES = [
    "i am so happy to see you today",
    "this is terrible and i am furious",
    "the meeting is at three o'clock",
    "i miss her so much it hurts",
    "what a wonderful surprise",
    "get out of my room right now",
    "the report is on the table",
    "nobody came to my party",
]


def require_tool(name: str) -> str:
    """Path of a system tool; skip without it, but fail in CI where it must be installed."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return path


TINY_WAV2VEC2 = dict(  # the raw-waveform front end (the paper preset's family), shrunk
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=[16] * 7,
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    mask_time_prob=0.05,
    mask_time_length=2,
    vocab_size=32,
)


def tiny_config(front_end: str = "fbank", **overrides) -> MGCMAConfig:
    """The compact preset shrunk further, so a forward pass takes milliseconds.

    front_end "fbank" keeps the compact preset's w2v-BERT encoder; "waveform" swaps in a wav2vec2
    encoder that reads raw samples.
    """
    config = MGCMAConfig.preset("compact")
    if front_end == "waveform":
        config.speech.model_type = "wav2vec2"
        config.speech.overrides = dict(TINY_WAV2VEC2)
    else:
        config.speech.overrides.update(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            conv_depthwise_kernel_size=5,
        )
    config.text.overrides.update(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    config.alignment.dim = 32
    config.alignment.heads = 2
    config.alignment.gaussian_dim = 8
    config.alignment.instance_dim = 16
    config.classifier.hidden = 32
    return config.override(overrides) if overrides else config


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(SENTENCES * 3, vocab_size=300)


@pytest.fixture
def tiny_model(tokenizer) -> MGCMA:
    torch.manual_seed(0)
    return MGCMA(tiny_config(), tokenizer).eval()
