"""Shared fixtures: tiny models built offline, and a rule for tests that need system tools."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MGCMA_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import whisper  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

from demo import harness  # noqa: E402
from demo.harness import free_port  # noqa: E402
from mgcma.config import MGCMAConfig  # noqa: E402
from mgcma.model import MGCMA  # noqa: E402
from mgcma.tokenizer import train_tokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
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
def tiny_corpus(tmp_path_factory):
    """A real espeak-ng corpus of 16 utterances (4 per emotion) over the 5 voice groups.

    One voice per group (each group's first): 16 utterances over the default 20 voices would
    leave some group without any.
    """
    require_tool("espeak-ng")
    from train.synth import VOICE_GROUPS, generate_corpus

    return generate_corpus(
        tmp_path_factory.mktemp("corpus"),
        per_class=4,
        seed=3,
        workers=1,
        voices=[voices[0] for voices in VOICE_GROUPS.values()],
        progress=False,
    )


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(SENTENCES * 3, vocab_size=300)


@pytest.fixture
def tiny_model(tokenizer) -> MGCMA:
    torch.manual_seed(0)
    return MGCMA(tiny_config(), tokenizer).eval()


@pytest.fixture(scope="session")
def backbones(tmp_path_factory) -> tuple[Path, Path]:
    """(a random 2-layer Whisper .pt, a random 2-layer BERT directory with its tokenizer)."""
    folder = tmp_path_factory.mktemp("backbones")
    dims = whisper.model.ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=2,
        n_vocab=51864, n_text_ctx=448, n_text_state=32, n_text_head=2, n_text_layer=1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = whisper.model.Whisper(dims)
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)
    whisper_path = folder / "whisper-random.pt"
    torch.save(
        {"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, whisper_path
    )
    tokenizer = train_tokenizer(SENTENCES * 3, vocab_size=300)
    bert = BertModel(
        BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )  # fmt: skip
    )
    bert_dir = folder / "bert-random"
    bert.save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    return whisper_path, bert_dir


def small_pretrained_config(backbones, **overrides) -> MGCMAConfig:
    whisper_path, bert_dir = backbones
    config = MGCMAConfig.preset("whisper_minilm").override(
        {
            "speech.backbone": str(whisper_path),
            "text.backbone": str(bert_dir),
            "alignment.dim": 32,
            "alignment.heads": 2,
            "alignment.gaussian_dim": 8,
            "alignment.instance_dim": 16,
            "classifier.hidden": 32,
            **overrides,
        }
    )
    return config


# -- the app, served for real ---------------------------------------------------------------


@pytest.fixture(scope="session")
def app_assets(tmp_path_factory, tiny_corpus, tokenizer):
    """A tiny checkpoint (and its no-instance ablation), examples and a bank, like assets/."""
    from mgcma.checkpoint import save_model
    from mgcma.model import MGCMA
    from train.bank import build_bank
    from train.examples import write_examples

    root = tmp_path_factory.mktemp("assets")
    torch.manual_seed(0)
    checkpoint = save_model(MGCMA(tiny_config(), tokenizer), root / "checkpoints" / "compact")
    ablation = MGCMA(tiny_config().ablation("no_instance"), tokenizer)
    save_model(ablation, root / "checkpoints" / "no_instance")
    write_examples(tiny_corpus, root / "examples", ["g1", "g2", "g3", "g4", "g5"], 10.0)
    build_bank(checkpoint, tiny_corpus, progress=False).save(root / "bank")
    return root


def start_app(assets: Path, port: int, **env) -> subprocess.Popen:
    """The app on the tiny assets (Whisper "tiny", which cannot load offline); its log file is
    `process.log_path`."""
    log_path = assets / f"app-{port}.log"
    process, _ = harness.start_app(
        assets / "checkpoints" / "compact",
        port,
        log_path,
        bank=assets / "bank",
        examples=assets / "examples",
        env={"MGCMA_WHISPER": "tiny", **env},
        timeout_s=120,
    )
    process.log_path = log_path
    return process


@pytest.fixture(scope="module")
def explorer(app_assets):
    """The app's loaded models and data in-process, on the tiny assets."""
    from demo.service import Explorer
    from demo.settings import Settings

    return Explorer(
        Settings(
            checkpoint=str(app_assets / "checkpoints" / "compact"),
            bank=str(app_assets / "bank"),
            examples=str(app_assets / "examples"),
            whisper="tiny",
        )
    )


@pytest.fixture(scope="session")
def app_url(app_assets):
    port = free_port()
    process = start_app(app_assets, port)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(timeout=30)


# -- a corpus any model can learn ----------------------------------------------------------


PITCH_HZ = {"neutral": 150.0, "happy": 300.0, "angry": 600.0, "sad": 1200.0}
SENTENCE = {
    "neutral": "the table is brown",
    "happy": "what a lovely day",
    "angry": "get out of here now",
    "sad": "i miss her so much",
}


def tone_corpus(folder: Path, per_class: int = 4) -> Path:
    """Each emotion with its own tone and its own sentence, in groups g1-g3: a model that learns
    anything gets the held-out group right, where chance is 25 %."""
    rng = np.random.default_rng(0)
    seconds = np.arange(4800) / 16000  # 0.3 s
    lines = []
    for group in ("g1", "g2", "g3"):
        for label, hertz in PITCH_HZ.items():
            for index in range(per_class):
                pitch = hertz * (1 + 0.02 * rng.standard_normal())
                wave = 0.3 * np.sin(2 * np.pi * pitch * seconds)
                wave += 0.01 * rng.standard_normal(seconds.size)
                name = f"{group}-{label}-{index}"
                sf.write(folder / f"{name}.wav", wave.astype(np.float32), 16000)
                lines.append(
                    {"id": name, "audio": f"{name}.wav", "text": SENTENCE[label],
                     "label": label, "speaker": f"{group}-speaker", "group": group}
                )  # fmt: skip
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest
