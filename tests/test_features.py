"""The feature cache: what it returns is what a fresh forward returns, keyed by content."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import small_pretrained_config
from mgcma.batch import pad_waveforms
from mgcma.checkpoint import build_model
from train.augment import Augmenter
from train.data import Collator, EmotionDataset, model_inputs
from train.features import FeatureCache, cacheable
from train.manifest import load_manifest
from train.settings import AugmentSettings


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three short noise clips in a manifest (the cache does not care what the sound is)."""
    folder = tmp_path_factory.mktemp("cache-corpus")
    rng = np.random.default_rng(1)
    lines = []
    for index, (seconds, text, label) in enumerate(
        [(1.0, "i am so happy", "happy"), (0.7, "get out", "angry"), (1.3, "", "sad")]
    ):
        samples = (rng.standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
        sf.write(folder / f"{index}.wav", samples, 16000, subtype="FLOAT")
        lines.append(
            {"id": f"u{index}", "audio": f"{index}.wav", "text": text or "hm", "label": label,
             "speaker": f"s{index}", "group": "g1"}
        )  # fmt: skip
    (folder / "manifest.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return load_manifest(folder / "manifest.jsonl")


@pytest.fixture(scope="module")
def model(backbones):
    torch.manual_seed(0)
    return build_model(small_pretrained_config(backbones)).eval()


def test_cached_states_equal_a_fresh_forward(model, corpus, tmp_path):
    cache = FeatureCache(tmp_path / "cache", model, max_seconds=8.0)
    assert cache.fill(corpus, progress=False) == len(corpus)
    assert cache.fill(corpus, progress=False) == 0  # everything is read back, nothing recomputed
    for utterance in corpus:
        samples, _ = sf.read(utterance.audio, dtype="float32")
        speech, mask = pad_waveforms([samples])
        fresh, frame_mask = model.speech_encoder.backbone_states(speech, mask)
        cached, stretch = cache.speech(utterance)
        assert stretch == 1.0 and cached.dtype == torch.float16
        assert cached.shape == fresh[0][frame_mask[0]].shape
        assert torch.allclose(cached.float(), fresh[0], atol=2e-3, rtol=2e-3)
        ids = cache.token_ids(utterance.text)
        text = model.tokenize([utterance.text])
        fresh_text = model.text_encoder.backbone_states(text["input_ids"], text["text_mask"])
        assert torch.allclose(cache.text(ids).float(), fresh_text[0], atol=2e-3, rtol=2e-3)


def test_a_cached_batch_gives_the_logits_of_the_audio_batch(model, corpus, tmp_path):
    cache = FeatureCache(tmp_path / "cache", model, max_seconds=8.0)
    collate = Collator(model.tokenizer, model.config.text.max_tokens)
    from_audio = collate([EmotionDataset(corpus)[i] for i in range(len(corpus))])
    from_cache = collate([EmotionDataset(corpus, features=cache)[i] for i in range(len(corpus))])
    assert from_cache["speech"] is None and from_cache["speech_features"] is not None
    with torch.no_grad():
        expected = model(**model_inputs(from_audio, "cpu")).logits
        got = model(**model_inputs(from_cache, "cpu")).logits
    assert torch.allclose(expected, got, atol=1e-2)
    assert (expected.argmax(-1) == got.argmax(-1)).all()


def test_keys_follow_content_encoder_and_augmentation(model, corpus, tmp_path):
    augment = Augmenter(AugmentSettings(probability=1.0))
    cache = FeatureCache(tmp_path / "cache", model, max_seconds=8.0, augment=augment, copies=2)
    first = corpus[0]
    moved = tmp_path / "elsewhere.wav"
    shutil.copy(first.audio, moved)
    same_sound = type(first)(**{**first.__dict__, "audio": moved})
    assert cache.speech_path(same_sound, 0) == cache.speech_path(first, 0)  # content, not path
    assert len({cache.speech_path(first, c) for c in range(3)}) == 3  # each copy its own entry
    other = FeatureCache(tmp_path / "cache", model, max_seconds=4.0)  # clips cut differently
    assert other.speech_path(first, 0) != cache.speech_path(first, 0)
    cache.fill([first], progress=False)
    clean, _ = cache.speech(first, 0)
    augmented, stretch = cache.speech(first, 1)
    assert not torch.equal(clean[: len(augmented)], augmented[: len(clean)])
    assert 0.85 < stretch < 1.15  # speed perturbation: the dataset stretches word times by it


def test_only_frozen_backbones_are_cached(backbones):
    partly = build_model(small_pretrained_config(backbones, **{"text.trainable_layers": 1}))
    assert not cacheable(partly)
    with pytest.raises(ValueError, match="frozen"):
        FeatureCache("unused", partly, max_seconds=8.0)


def test_fit_with_a_feature_cache_trains_from_cached_states_and_reuses_them(
    backbones, tiny_corpus, tmp_path
):
    """A whisper_minilm run on real espeak-ng speech: the cache is filled once, then read."""
    import yaml

    from train.fit import fit
    from train.settings import load_experiment

    document = {
        "preset": "whisper_minilm",
        "model": {
            "speech.backbone": str(backbones[0]),
            "text.backbone": str(backbones[1]),
            "alignment.dim": 32,
            "alignment.heads": 2,
            "classifier.hidden": 32,
        },
        "data": {
            "manifest": str(tiny_corpus),
            "test_group": "g1",
            "val_fraction": 0.2,
            "feature_cache": "cache",
            "text_dropout": 0.2,
        },
        "augment": {"copies": 1},
        "optim": {"epochs": 2, "batch_size": 4, "seed": 3},
    }
    path = tmp_path / "cached.yaml"
    path.write_text(yaml.safe_dump(document))
    result = fit(load_experiment(path), tmp_path / "run", progress=False)
    stored = sorted((tmp_path / "cache" / "speech").rglob("*.safetensors"))
    # 16 clips: each clean, and each training clip once augmented
    train_count = json.loads((tmp_path / "run" / "splits.json").read_text())["train"]["count"]
    assert len(stored) == 16 + train_count
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert result["test"]["count"] == splits["test"]["count"] > 0
    assert set(result["test_by_corpus"]) == {"synthetic"}
    again = fit(load_experiment(path), tmp_path / "again", progress=False)
    assert sorted((tmp_path / "cache" / "speech").rglob("*.safetensors")) == stored
    timeless = [{k: v for k, v in h.items() if k != "seconds"} for h in result["history"]]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in again["history"]] == timeless


def test_text_corpus_rows_read_cached_states_equal_to_a_fresh_forward(model, tmp_path):
    from train.text_corpus import TextCorpus

    cache = FeatureCache(tmp_path / "cache", model, max_seconds=8.0)
    texts = ["i am so happy today", "get out", "this is fine i guess", "so sad"]
    corpus = TextCorpus(
        texts, [1, 2, 0, 3], model.tokenizer, model.config.text.max_tokens, 6, features=cache
    )
    inputs, labels = corpus.batch(epoch=0, step=0)
    assert (
        inputs["text_features"].shape[:2]
        == inputs["input_ids"].shape
        == (6, inputs["text_mask"].shape[1])
    )
    with torch.inference_mode():
        fresh = model.text_encoder.backbone_states(inputs["input_ids"], inputs["text_mask"])
    mask = inputs["text_mask"]
    assert torch.allclose(inputs["text_features"][mask], fresh[mask], atol=2e-3, rtol=2e-3)
    assert (inputs["text_features"][~mask] == 0).all()
    again, same_labels = corpus.batch(epoch=0, step=0)
    assert torch.equal(labels, same_labels) and torch.equal(again["input_ids"], inputs["input_ids"])
    other, _ = corpus.batch(epoch=0, step=1)  # a fresh draw every step
    assert not torch.equal(other["input_ids"], inputs["input_ids"])
    calls = []
    encoder = model.text_encoder
    original = encoder.backbone_states
    encoder.backbone_states = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        TextCorpus(texts, [1, 2, 0, 3], model.tokenizer, 64, 6, features=cache)
    finally:
        del encoder.backbone_states
    assert calls == []  # every text was cached by the first corpus


def test_files_once_read_stay_in_memory_within_the_budget(model, corpus, tmp_path, monkeypatch):
    import train.features as features

    reads = []
    original = features.load_file
    monkeypatch.setattr(features, "load_file", lambda path: reads.append(path) or original(path))
    held = FeatureCache(tmp_path / "held", model, max_seconds=8.0)
    held.fill(corpus, progress=False)
    first, _ = held.speech(corpus[0])
    again, _ = FeatureCache(tmp_path / "held", model, max_seconds=8.0).speech(corpus[0])
    assert len(reads) == 1 and again is first  # a second cache of the process reads no file
    ids = held.token_ids(corpus[0].text)
    assert held.text(ids) is held.text(ids) and len(reads) == 2
    unheld = FeatureCache(tmp_path / "unheld", model, max_seconds=8.0, memory_mb=0)
    unheld.fill(corpus, progress=False)
    one, _ = unheld.speech(corpus[1])
    two, _ = unheld.speech(corpus[1])
    assert len(reads) == 4 and torch.equal(one, two)  # no budget: read each time, same states


def test_a_rewritten_clip_gets_a_new_key(model, tmp_path):
    import os

    rng = np.random.default_rng(5)
    path = tmp_path / "clip.wav"
    sf.write(path, (rng.standard_normal(16000) * 0.1).astype(np.float32), 16000, subtype="FLOAT")
    utterance = type("U", (), {"audio": str(path)})()
    before = FeatureCache(tmp_path / "c", model, max_seconds=8.0).speech_path(utterance, 0)
    sf.write(path, (rng.standard_normal(16000) * 0.1).astype(np.float32), 16000, subtype="FLOAT")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a later write
    after = FeatureCache(tmp_path / "c", model, max_seconds=8.0).speech_path(utterance, 0)
    assert before != after  # the decoded samples are keyed again, not remembered by name


def test_the_text_head_scores_sentences_from_cached_states_as_from_the_backbone(model, tmp_path):
    from train.evaluate import evaluate_text_head

    texts = ["i am so happy today", "get out of here", "this is fine i guess", "so sad", "ok"]
    labels = [1, 2, 0, 3, 0]
    assert model.text_head is not None
    fresh = evaluate_text_head(model, texts, labels, batch_size=2)
    cache = FeatureCache(tmp_path / "cache", model, max_seconds=8.0)
    cached = evaluate_text_head(model, texts, labels, batch_size=2, features=cache)
    assert cached["confusion"] == fresh["confusion"] and cached["ua"] == fresh["ua"]
    calls = []
    encoder = model.text_encoder
    original = encoder.backbone_states
    encoder.backbone_states = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        again = evaluate_text_head(model, texts, labels, batch_size=2, features=cache)
    finally:
        del encoder.backbone_states
    assert calls == [] and again["confusion"] == fresh["confusion"]  # read back, not recomputed


def _write_alike(path: str, count: int, barrier) -> None:
    np.random.seed(1)  # each fit of an ablation seeds numpy the same way
    for i in range(count):
        barrier.wait()  # both write their i-th time at once
        FeatureCache._write(Path(path), states=torch.full((3, 2), float(i)))


def test_two_processes_seeded_alike_can_fill_one_cache_entry_side_by_side(tmp_path):
    """`ablate --jobs 2` runs fits seeded alike; both may write the same entry at once. Each
    write stages under a name of its own, so neither loses its staged file to the other."""
    import multiprocessing

    from safetensors.torch import load_file

    target = tmp_path / "speech" / "ab" / "entry.safetensors"
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2, timeout=20)
    workers = [
        context.Process(target=_write_alike, args=(str(target), 100, barrier)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert load_file(target)["states"].shape == (3, 2)
    assert sorted(p.name for p in target.parent.iterdir()) == ["entry.safetensors"]
