"""The shipped default's preset: a frozen Whisper audio encoder and a frozen BERT (MiniLM).

Built offline from small random Whisper and BERT checkpoints written here; the real shipped
tiny.en is used where a test is about its exact computation or its transcripts.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess

import numpy as np
import pytest
import torch
import whisper
from safetensors.torch import load_file

from conftest import ROOT, require_tool, small_pretrained_config
from mgcma import whisper_backbone
from mgcma.asr import Transcriber
from mgcma.audio import load_audio
from mgcma.batch import pad_waveforms
from mgcma.checkpoint import CheckpointError, build_model, load_model, save_model
from mgcma.config import ConfigError, MGCMAConfig
from mgcma.model import MGCMA

SHIPPED_WHISPER = ROOT / "assets" / "backbones" / "whisper-tiny.en.pt"
SHIPPED_MINILM = ROOT / "assets" / "backbones" / "all-MiniLM-L6-v2"


TOP_LAYER = {"speech.trainable_layers": 1, "text.trainable_layers": 1}


def clips(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 11000, 24321)]


def test_preset_is_whisper_tiny_en_and_minilm_frozen():
    config = MGCMAConfig.preset("whisper_minilm")
    assert (config.speech.model_type, config.speech.backbone) == ("whisper", "tiny.en")
    assert config.text.backbone == "sentence-transformers/all-MiniLM-L6-v2"
    assert config.speech.trainable_layers == config.text.trainable_layers == 0


def test_build_model_loads_the_backbones_and_leaves_the_config_unchanged(backbones):
    config = small_pretrained_config(backbones)
    before = copy.deepcopy(config)
    model = build_model(config)
    assert config == before  # deep equality: neither sha256 nor hf_config written back
    assert config.speech.weights_sha256 == config.text.weights_sha256 == ""
    # what was loaded is recorded in the model's own copy, for its checkpoint
    assert model.config.speech.weights_sha256 == whisper_backbone.file_sha256(backbones[0])
    assert model.config.text.weights_sha256 == whisper_backbone.file_sha256(backbones[1])
    assert model.config.text.hf_config["hidden_size"] == 32
    assert model.config.speech.hf_config is None  # Whisper's architecture is in its file


def test_constructing_the_model_reads_no_file(backbones, monkeypatch):
    """Backbones and tokenizer are loaded by build_model; MGCMA(...) only assembles them."""
    import builtins

    import transformers

    loaded = build_model(small_pretrained_config(backbones)).eval()
    backbones_in = {
        "speech_backbone": loaded.speech_encoder.backbone,
        "text_backbone": loaded.text_encoder.backbone,
    }

    def no_io(*args, **kwargs):
        pytest.fail(f"the constructor read a file: {args[:1]}")

    for owner, name in (
        (builtins, "open"),
        (transformers.AutoModel, "from_pretrained"),
        (transformers.AutoTokenizer, "from_pretrained"),
        (whisper, "load_model"),
        (whisper_backbone, "load_whisper"),
        (whisper_backbone, "file_sha256"),
    ):
        monkeypatch.setattr(owner, name, no_io)
    model = MGCMA(loaded.config, loaded.tokenizer, **backbones_in).eval()
    # without the pretrained backbone it is refused, never built with random weights
    with pytest.raises(ConfigError, match="build_model"):
        MGCMA(loaded.config, loaded.tokenizer)
    with pytest.raises(ConfigError, match="pretrained.*build_model"):
        MGCMA(loaded.config, loaded.tokenizer, speech_backbone=backbones_in["speech_backbone"])
    monkeypatch.undo()  # a forward pass reads Whisper's mel filter bank
    model.load_state_dict(loaded.state_dict())  # the same architecture, the same tensor names
    speech, mask = pad_waveforms(clips())
    text = model.tokenize(["a", "b c", "d"])
    with torch.no_grad():
        assert torch.equal(model(speech, mask, **text).logits, loaded(speech, mask, **text).logits)


def test_builds_runs_and_batches_like_single_examples(backbones):
    model = build_model(small_pretrained_config(backbones)).eval()
    waves = clips()
    texts = ["i am so happy", "get out of my room right now", "what"]
    speech, mask = pad_waveforms(waves)
    batch = model(speech, mask, **model.tokenize(texts), return_attention=True)
    # one frame per 40 ms (Whisper's 20 ms, pooled in pairs), counted on each clip's own length
    expected = [(len(w) // 160 + 1) // 2 for w in waves]
    assert batch.speech_mask.sum(1).tolist() == [(n + 1) // 2 for n in expected]
    for row, (wave, text) in enumerate(zip(waves, texts, strict=True)):
        speech, mask = pad_waveforms([wave])
        alone = model(speech, mask, **model.tokenize([text]))
        assert torch.allclose(batch.logits[row], alone.logits[0], atol=1e-5)
    frames = int(batch.speech_mask[1].sum())  # the shortest clip
    assert frames < batch.speech_mask.shape[1]
    assert batch.attention_text_to_speech[1, :, :, frames:].abs().max() == 0  # padding unheard


def test_frozen_backbones_receive_no_gradient_and_stay_in_eval_mode(backbones):
    model = build_model(small_pretrained_config(backbones)).train()
    assert not model.speech_encoder.backbone.training and not model.text_encoder.backbone.training
    speech, mask = pad_waveforms(clips())
    out = model(speech, mask, **model.tokenize(["happy", "sad day", "get out"]))
    out.logits.sum().backward()
    for name, parameter in model.named_parameters():
        if ".backbone." in name:
            assert not parameter.requires_grad and parameter.grad is None, name
    assert model.speech_encoder.projection[0].weight.grad.abs().sum() > 0
    assert model.text_encoder.projection[0].weight.grad.abs().sum() > 0


def test_top_layers_can_be_unfrozen(backbones):
    model = build_model(
        small_pretrained_config(
            backbones, **{"speech.trainable_layers": 1, "text.trainable_layers": 1}
        )
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad and ".backbone." in n}
    assert any(n.startswith("speech_encoder.backbone.blocks.1.") for n in trainable)
    assert not any(n.startswith("speech_encoder.backbone.blocks.0.") for n in trainable)
    assert "speech_encoder.backbone.ln_post.weight" in trainable
    assert any(n.startswith("text_encoder.backbone.encoder.layer.1.") for n in trainable)
    assert not any(n.startswith("text_encoder.backbone.encoder.layer.0.") for n in trainable)
    assert not any("embeddings" in n or "conv" in n for n in trainable)
    # a trainable copy: the process's shared Whisper (the transcriber's) is never trained
    shared = whisper_backbone.load_whisper(small_pretrained_config(backbones).speech.backbone)
    assert model.speech_encoder.backbone is not shared.encoder


def test_checkpoint_names_frozen_backbones_instead_of_copying_them(backbones, tmp_path):
    model = build_model(small_pretrained_config(backbones)).eval()
    directory = save_model(model, tmp_path / "checkpoints" / "full")
    document = json.loads((directory / "config.json").read_text())["mgcma"]
    assert document["speech"]["backbone"].startswith("..")  # relative: the folder can move
    assert document["speech"]["weights_sha256"] == whisper_backbone.file_sha256(backbones[0])
    assert document["text"]["weights_sha256"] == whisper_backbone.file_sha256(backbones[1])
    stored = load_file(directory / "model.safetensors")
    assert not any(".backbone." in name for name in stored)
    assert any(name.startswith("speech_encoder.projection") for name in stored)
    loaded = load_model(directory)
    speech, mask = pad_waveforms(clips())
    text = model.tokenize(["a", "b c", "d"])
    assert torch.equal(model(speech, mask, **text).logits, loaded(speech, mask, **text).logits)
    # the loaded model hears with the process's one Whisper: same tensors, not a copy
    shared = whisper_backbone.load_whisper(backbones[0])
    assert loaded.speech_encoder.backbone.conv1.weight.data_ptr() == (
        shared.encoder.conv1.weight.data_ptr()
    )


def test_checkpoint_with_unfrozen_layers_stores_only_what_differs(backbones, tmp_path):
    config = small_pretrained_config(
        backbones, **{"speech.trainable_layers": 1, "text.trainable_layers": 1}
    )
    model = build_model(config).eval()
    with torch.no_grad():  # as if training had moved the top layers
        model.speech_encoder.backbone.blocks[1].mlp[0].weight.add_(0.5)
        model.text_encoder.backbone.encoder.layer[1].output.dense.weight.add_(0.5)
    directory = save_model(model, tmp_path / "partly")
    stored = load_file(directory / "model.safetensors")
    backbone_keys = {n for n in stored if ".backbone." in n}
    assert backbone_keys and all(
        ".blocks.1." in n or ".ln_post." in n or ".layer.1." in n for n in backbone_keys
    )
    loaded = load_model(directory)
    speech, mask = pad_waveforms(clips())
    text = model.tokenize(["a", "b c", "d"])
    assert torch.allclose(model(speech, mask, **text).logits, loaded(speech, mask, **text).logits)


@pytest.mark.parametrize("variant", ["speech_only", "text_only"])
def test_unimodal_ablations_save_and_load_with_only_their_backbone(backbones, tmp_path, variant):
    model = build_model(small_pretrained_config(backbones).ablation(variant)).eval()
    directory = save_model(model, tmp_path / variant)
    loaded = load_model(directory)
    speech, mask = pad_waveforms(clips())
    inputs = {"speech": speech, "speech_mask": mask} if variant == "speech_only" else {}
    if variant == "text_only":
        inputs = model.tokenize(["a", "b c", "d"])
    assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)


def test_changed_backbone_file_is_refused(backbones, tmp_path):
    whisper_copy = tmp_path / "whisper.pt"
    whisper_copy.write_bytes(backbones[0].read_bytes())
    config = small_pretrained_config(backbones, **{"speech.backbone": str(whisper_copy)})
    directory = save_model(build_model(config), tmp_path / "model")
    checkpoint = torch.load(whisper_copy, weights_only=True)
    checkpoint["model_state_dict"]["encoder.conv1.weight"] += 0.01
    torch.save(checkpoint, whisper_copy)
    with pytest.raises(CheckpointError, match="has changed"):
        load_model(directory)


def test_missing_backbone_falls_back_to_its_name_and_says_so_offline(backbones, tmp_path):
    bert_copy = tmp_path / "bert"
    bert_copy.mkdir()
    for file in backbones[1].iterdir():
        (bert_copy / file.name).write_bytes(file.read_bytes())
    config = small_pretrained_config(backbones, **{"text.backbone": str(bert_copy)})
    directory = save_model(build_model(config), tmp_path / "model")
    for file in bert_copy.iterdir():
        file.unlink()
    bert_copy.rmdir()
    # the Hub id is tried instead; offline (as the tests run) that fails with a clear message
    with pytest.raises(CheckpointError, match="all-MiniLM-L6-v2"):
        load_model(directory)


def test_missing_whisper_file_offline_names_the_file_and_does_not_download(
    backbones, tmp_path, monkeypatch
):
    whisper_copy = tmp_path / "whisper.pt"
    whisper_copy.write_bytes(backbones[0].read_bytes())
    config = small_pretrained_config(backbones, **{"speech.backbone": str(whisper_copy)})
    directory = save_model(build_model(config), tmp_path / "model")
    whisper_copy.unlink()
    monkeypatch.setenv("MGCMA_OFFLINE", "1")
    monkeypatch.setattr(whisper, "_download", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(CheckpointError, match="whisper.pt is missing.*offline"):
        load_model(directory)


def test_encoder_on_the_clips_own_length_equals_openai_whisper(tmp_path):
    """Our slicing reproduces AudioEncoder.forward with its positional table cut to the clip."""
    model = whisper_backbone.load_whisper(SHIPPED_WHISPER)
    samples = torch.from_numpy(clips(3)[2])
    mel = whisper_backbone.log_mel(samples, model.dims.n_mels)[None]  # (1, 80, F)
    ours = whisper_backbone.encode(model.encoder, mel)
    reference = copy.deepcopy(model.encoder)
    frames = (mel.shape[-1] + 1) // 2
    reference.positional_embedding = reference.positional_embedding[:frames]
    with torch.no_grad():
        expected = reference(mel)  # openai-whisper's own forward, on the same weights
    assert ours.shape == expected.shape == (1, frames, 384)
    assert torch.allclose(ours, expected, atol=1e-5)


def test_shipped_tiny_en_transcribes_espeak_with_word_times_inside_the_clip(tmp_path):
    espeak = require_tool("espeak-ng")
    wav = tmp_path / "sentence.wav"
    sentence = "please open the door and come inside"
    subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(wav), sentence], check=True)
    audio = load_audio(wav)
    transcriber = Transcriber(str(SHIPPED_WHISPER), device="cpu")
    transcript = transcriber.transcribe(audio.samples, language="en")
    heard = [w.strip(".,!").lower() for w in transcript.text.split()]
    assert heard == sentence.split(), transcript.text
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts) and all(
        0 <= w.start <= w.end <= audio.seconds for w in transcript.words
    )
    door = next(w for w in transcript.words if w.word.strip().lower() == "door")
    assert 0.5 < door.start < door.end < 0.7 * audio.seconds  # tiny.en's alignment heads
    # the same Whisper is the model's speech encoder: one set of weights in the process
    model = whisper_backbone.load_whisper(SHIPPED_WHISPER)
    assert transcriber._model is model


def test_shipped_minilm_tokenizer_round_trips_and_reads_whole_words():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(SHIPPED_MINILM))
    assert len(tokenizer) == 30522
    ids = tokenizer("I hate waiting in the queue")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "[CLS]", "i", "hate", "waiting", "in", "the", "queue", "[SEP]",
    ]  # fmt: skip
    assert tokenizer.decode(ids, skip_special_tokens=True) == "i hate waiting in the queue"


def test_analysis_flags_unknown_and_missing_transcripts(backbones):
    from mgcma.analysis import NO_TRANSCRIPT, Analyzer

    analyzer = Analyzer(build_model(small_pretrained_config(backbones)).eval(), device="cpu")
    wave = clips()[0]
    empty = analyzer.analyze(wave, 16000, "  ")
    assert empty.words == [] and NO_TRANSCRIPT in empty.notes
    assert set(empty.probs) == set(analyzer.model.emotions)
    nonsense = analyzer.analyze(wave, 16000, "zxq blorp fnarg")
    assert nonsense.known_word_share == 0.0
    assert any("text side is guessing" in note for note in nonsense.notes)
    known = analyzer.analyze(wave, 16000, "i am so happy to see you today!")
    assert known.known_word_share == 1.0 and not known.notes


def test_hidden_layer_reads_the_residual_stream_after_that_many_blocks(backbones):
    """speech.hidden_layer=k gives the states after Whisper's k-th block (0: the embeddings)."""
    whisper_path, _ = backbones
    encoder = whisper_backbone.load_whisper(whisper_path).encoder
    samples = torch.from_numpy(clips(4)[0])
    mel = whisper_backbone.log_mel(samples, encoder.conv1.in_channels)[None]  # (1, n_mels, F)
    captured = []
    hooks = [block.register_forward_hook(lambda _m, _i, out: captured.append(out))
             for block in encoder.blocks]  # fmt: skip
    with torch.no_grad():
        last = whisper_backbone.encode(encoder, mel)
        for hook in hooks:
            hook.remove()
        assert len(captured) == len(encoder.blocks) >= 2
        for layer in range(1, len(encoder.blocks) + 1):
            assert torch.equal(whisper_backbone.encode(encoder, mel, layer), captured[layer - 1])
        assert torch.equal(encoder.ln_post(captured[-1]), last)
        assert not torch.allclose(whisper_backbone.encode(encoder, mel, 1), last)

    model = build_model(small_pretrained_config(backbones, **{"speech.hidden_layer": 1})).eval()
    speech, mask = pad_waveforms([samples.numpy()])
    states, _ = model.speech_encoder.backbone_states(speech, mask)
    assert torch.allclose(states, captured[0], atol=1e-6)
    with pytest.raises(ConfigError, match="hidden_layer=9 but Whisper's encoder has"):
        build_model(small_pretrained_config(backbones, **{"speech.hidden_layer": 9}))


def test_hidden_layer_is_part_of_the_feature_cache_key(backbones, tmp_path):
    from train.features import FeatureCache

    top = build_model(small_pretrained_config(backbones))
    middle = build_model(small_pretrained_config(backbones, **{"speech.hidden_layer": 1}))
    last = build_model(small_pretrained_config(backbones, **{"speech.hidden_layer": -1}))
    identity = [
        FeatureCache(tmp_path, m, max_seconds=8.0).speech_identity for m in (top, middle, last)
    ]
    assert identity[0] == identity[2] != identity[1]  # the default keeps today's cache valid


def test_layer_mix_is_a_learned_weighted_sum_of_every_layer(backbones, tmp_path):
    """speech.layer_mix: equal weights at first (the mean of the layers), trained like any other
    parameter, its states cached with every layer and read back to the same logits."""
    from train.features import FeatureCache

    config = small_pretrained_config(backbones, **{"speech.layer_mix": True})
    model = build_model(config).eval()
    encoder = model.speech_encoder.backbone
    samples = torch.from_numpy(clips(5)[0])
    speech, mask = pad_waveforms([samples.numpy()])
    states, frame_mask = model.speech_encoder.backbone_states(speech, mask)
    layers = len(encoder.blocks) + 1
    assert states.shape[2] == layers == model.speech_encoder.layer_weights.numel()
    mel = whisper_backbone.log_mel(samples, encoder.conv1.in_channels)[None]
    with torch.no_grad():
        assert torch.allclose(states[:, :, 0], whisper_backbone.encode(encoder, mel, 0), atol=1e-6)
        assert torch.allclose(states[:, :, -1], whisper_backbone.encode(encoder, mel), atol=1e-6)
    model.speech_encoder.config = dataclasses.replace(
        model.speech_encoder.config, frame_pooling=1
    )  # compare frames one to one
    with torch.no_grad():
        mixed, _ = model.speech_encoder(None, None, states, frame_mask)
        expected = model.speech_encoder.projection(states.mean(dim=2))
    assert torch.allclose(mixed, expected, atol=1e-5)  # zeros → softmax → equal weights
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "speech_encoder.layer_weights" in trainable
    cache = FeatureCache(tmp_path, build_model(config), max_seconds=8.0)
    assert (
        cache.speech_identity
        != FeatureCache(
            tmp_path, build_model(small_pretrained_config(backbones)), max_seconds=8.0
        ).speech_identity
    )
    with pytest.raises(ConfigError, match="layer_mix mixes every layer"):
        small_pretrained_config(backbones, **{"speech.layer_mix": True, "speech.hidden_layer": 1})


def test_layer_mix_weights_survive_save_and_load(backbones, tmp_path):
    model = build_model(small_pretrained_config(backbones, **{"speech.layer_mix": True})).eval()
    with torch.no_grad():
        model.speech_encoder.layer_weights.copy_(torch.tensor([2.0, -1.0, 0.5]))
    save_model(model, tmp_path / "mixed")
    loaded = load_model(tmp_path / "mixed").eval()
    assert torch.equal(loaded.speech_encoder.layer_weights, model.speech_encoder.layer_weights)
    speech, mask = pad_waveforms(clips(6))
    tokens = model.tokenize(["so happy", "leave now", "what"])
    with torch.no_grad():
        assert torch.allclose(
            model(speech, mask, **tokens).logits, loaded(speech, mask, **tokens).logits, atol=1e-5
        )


def test_extra_layer_is_read_beside_the_main_one_and_projected_with_it(backbones, tmp_path):
    """speech.extra_layer=0: the embeddings beside the last layer, concatenated before the
    projection (neither blended into the other), cached under their own key."""
    from train.features import FeatureCache

    config = small_pretrained_config(backbones, **{"speech.extra_layer": 0})
    model = build_model(config).eval()
    encoder = model.speech_encoder.backbone
    samples = torch.from_numpy(clips(6)[0])
    speech, mask = pad_waveforms([samples.numpy()])
    states, frame_mask = model.speech_encoder.backbone_states(speech, mask)  # (1, T_s, 2, D_s)
    mel = whisper_backbone.log_mel(samples, encoder.conv1.in_channels)[None]
    with torch.no_grad():
        assert states.shape[2] == 2
        assert torch.allclose(states[:, :, 0], whisper_backbone.encode(encoder, mel), atol=1e-6)
        assert torch.allclose(states[:, :, 1], whisper_backbone.encode(encoder, mel, 0), atol=1e-6)
    width = encoder.ln_post.normalized_shape[0]
    linear = model.speech_encoder.projection[0]
    assert linear.in_features == 2 * width
    model.speech_encoder.config = dataclasses.replace(
        model.speech_encoder.config, frame_pooling=1
    )  # compare frames one to one
    with torch.no_grad():
        projected, _ = model.speech_encoder(None, None, states, frame_mask)
        # the embeddings' half of the weights moves the output: both layers are read
        linear.weight[:, width:] = 0
        last_only, _ = model.speech_encoder(None, None, states, frame_mask)
        expected = model.speech_encoder.projection[1](states[:, :, 0] @ linear.weight[:, :width].T
                                                      + linear.bias)  # fmt: skip
    assert torch.allclose(last_only, expected, atol=1e-5)
    assert not torch.allclose(projected, last_only)
    plain = FeatureCache(tmp_path, build_model(small_pretrained_config(backbones)), max_seconds=8.0)
    extra = FeatureCache(tmp_path, build_model(config), max_seconds=8.0)
    assert plain.speech_identity != extra.speech_identity
    for bad, message in (
        ({"speech.extra_layer": 9}, "extra_layer=9 but Whisper's encoder has"),
        ({"speech.extra_layer": 0, "speech.layer_mix": True}, "already reads every layer"),
        ({"speech.extra_layer": 1, "speech.hidden_layer": 1}, "other than speech.hidden_layer"),
    ):
        with pytest.raises(ConfigError, match=message):
            build_model(small_pretrained_config(backbones, **bad))
