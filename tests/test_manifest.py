"""Manifests (validation, splits) and the data pipeline on them: dataset, collator, sampler."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mgcma.constants import EMOTIONS, SAMPLE_RATE
from mgcma.tokenizer import train_tokenizer
from train.data import Collator, EmotionDataset, LengthBucketSampler, audio_seconds
from train.manifest import (
    ManifestError,
    Utterance,
    groups,
    load_manifest,
    split_by_group,
    validation_split,
    write_manifest,
)

SENTENCES = [
    "i am so happy today",
    "get out of my room",
    "the report is on the table",
    "i miss her so much",
    "what a lovely surprise",
]


def _record(index: int, **changes) -> dict:
    record = {
        "id": f"utt{index:03d}",
        "audio": f"wavs/utt{index:03d}.wav",
        "text": SENTENCES[index % len(SENTENCES)],
        "label": EMOTIONS[index % len(EMOTIONS)],
        "speaker": f"spk{index % 6}",
        "group": f"g{index % 3}",
    }
    record.update(changes)
    return record


def _write_lines(path: Path, lines: list) -> Path:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A 12-utterance manifest whose wav files exist, 0.1 s to 1.2 s long."""
    (tmp_path / "wavs").mkdir()
    records = []
    for index in range(12):
        samples = 0.1 * np.sin(np.arange(1600 * (index + 1)) * 0.05).astype(np.float32)
        sf.write(tmp_path / "wavs" / f"utt{index:03d}.wav", samples, SAMPLE_RATE)
        records.append(_record(index))
    records[0]["words"] = [
        {"word": "i", "start": 0.0, "end": 0.02},
        {"word": "am", "start": 0.02, "end": 0.05},
    ]
    records[1]["cue"] = "prosody"
    return _write_lines(tmp_path / "manifest.jsonl", records[:6] + [""] + records[6:])


# ----------------------------------------------------------------------------- loading


def test_load_resolves_paths_and_keeps_words_and_extra(corpus):
    utterances = load_manifest(corpus)
    assert len(utterances) == 12  # the blank line is skipped
    first = utterances[0]
    assert first.audio == corpus.parent / "wavs" / "utt000.wav" and first.audio.is_absolute()
    assert first.words == (("i", 0.0, 0.02), ("am", 0.02, 0.05))
    assert utterances[1].extra == {"cue": "prosody"} and utterances[1].words is None


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"id": "x", "audio": ', "not valid JSON"),
        ('["a", "list"]', "expected a JSON object, got list"),
        (_record(99, label="joy"), "label 'joy' is not one of neutral, happy, angry, sad"),
        ({k: v for k, v in _record(99).items() if k != "speaker"}, "missing key 'speaker'"),
        (_record(99, group=1), "'group' must be a string, got int 1"),
        (_record(1), "id 'utt001' repeats line 2"),
        (
            _record(
                99,
                words=[
                    {"word": "a", "start": 0.5, "end": 0.6},
                    {"word": "b", "start": 0.2, "end": 0.3},
                ],
            ),
            "word times must increase",
        ),
        (
            _record(99, words=[{"word": "a", "start": 0.5, "end": 0.4}]),
            "word 1 ('a') starts at 0.5 s, after its end 0.4 s",
        ),
        (_record(99, words=[{"word": "a", "start": 0.1}]), "word 1 must be an object with 'word'"),
    ],
)
def test_a_bad_line_is_refused_with_its_line_number(tmp_path, bad_line, message):
    lines = [_record(0), _record(1), "", _record(2), _record(3), _record(4), bad_line, _record(5)]
    path = _write_lines(tmp_path / "manifest.jsonl", lines)
    with pytest.raises(ManifestError) as error:
        load_manifest(path, check_audio=False)
    assert f"manifest.jsonl line 7: {message}" in str(error.value)


def test_missing_audio_files_are_listed_together(tmp_path):
    path = _write_lines(tmp_path / "manifest.jsonl", [_record(i) for i in range(14)])
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    text = str(error.value)
    assert "14 of 14 audio files are missing" in text
    assert "line 1:" in text and "utt009.wav" in text and "utt010.wav" not in text
    assert "and 4 more" in text
    assert len(load_manifest(path, check_audio=False)) == 14


def test_empty_manifest_and_custom_labels(tmp_path):
    with pytest.raises(ManifestError, match="no utterances"):
        load_manifest(_write_lines(tmp_path / "empty.jsonl", ["", "  "]))
    path = _write_lines(tmp_path / "joy.jsonl", [_record(0, label="joy")])
    assert load_manifest(path, check_audio=False, labels=("joy", "calm"))[0].label == "joy"


def test_write_then_load_round_trip(corpus, tmp_path):
    utterances = load_manifest(corpus)
    copy = write_manifest(utterances, tmp_path / "elsewhere" / "copy.jsonl")
    assert json.loads(copy.read_text().splitlines()[0])["audio"] == "../wavs/utt000.wav"
    assert load_manifest(copy) == utterances


# ----------------------------------------------------------------------------- splits


def _many(count: int = 300) -> list[Utterance]:
    rng = np.random.default_rng(0)
    labels = rng.choice(EMOTIONS, size=count, p=[0.4, 0.3, 0.2, 0.1])
    return [
        Utterance(
            f"u{i}", Path(f"/x/u{i}.wav"), "text", str(label), f"s{i % 10}", f"Session{i % 5 + 1}"
        )
        for i, label in enumerate(labels)
    ]


def test_split_by_group_and_validation_from_training_groups_only():
    utterances = _many()
    assert groups(utterances) == [f"Session{i}" for i in range(1, 6)]
    train, test = split_by_group(utterances, "Session3")
    assert {u.group for u in test} == {"Session3"} and "Session3" not in groups(train)
    fit, validation = validation_split(train, fraction=0.1, seed=7)
    assert not {u.group for u in validation} & {"Session3"}
    assert {u.id for u in fit} | {u.id for u in validation} == {u.id for u in train}
    assert not {u.id for u in fit} & {u.id for u in validation}
    with pytest.raises(ManifestError, match="test group 'Session9' is not one of"):
        split_by_group(utterances, "Session9")


def test_validation_split_is_stratified_and_deterministic():
    train = _many()
    fit, validation = validation_split(train, fraction=0.2, seed=1)
    totals, held = Counter(u.label for u in train), Counter(u.label for u in validation)
    for label in EMOTIONS:
        assert held[label] == round(0.2 * totals[label])
    assert validation_split(train, fraction=0.2, seed=1) == (fit, validation)
    assert validation_split(train, fraction=0.2, seed=2)[1] != validation
    tiny = _many(6)  # every label still keeps a training utterance
    assert {u.label for u in validation_split(tiny, 0.5)[0]} == {u.label for u in tiny}


# ----------------------------------------------------------------------------- data


def test_dataset_items_and_audio_seconds(corpus):
    utterances = load_manifest(corpus)
    seconds = audio_seconds(utterances)
    np.testing.assert_allclose(seconds, [0.1 * (i + 1) for i in range(12)])
    dataset = EmotionDataset(utterances, max_seconds=0.5)
    item = dataset[3]
    assert item["speech"].dtype == np.float32 and item["speech"].shape == (6400,)
    assert dataset[11]["speech"].shape == (8000,)  # cut at max_seconds
    assert item["label"] == EMOTIONS.index(utterances[3].label) and item["id"] == "utt003"
    louder = EmotionDataset(utterances, augment=lambda samples, rng: samples * 2.0)
    np.testing.assert_allclose(louder[3]["speech"], 2.0 * item["speech"], rtol=1e-6)


def test_collator_shapes_masks_and_token_ids(corpus):
    tokenizer = train_tokenizer(SENTENCES * 3, vocab_size=200)
    report_id = tokenizer.convert_tokens_to_ids("report")
    assert report_id != tokenizer.unk_token_id
    assert tokenizer("report")["input_ids"] == [
        tokenizer.cls_token_id,
        report_id,
        tokenizer.sep_token_id,
    ]
    utterances = load_manifest(corpus)
    dataset = EmotionDataset(utterances)
    items = [dataset[i] for i in (0, 5, 2)]
    batch = Collator(tokenizer, max_tokens=6)(items)
    assert batch["speech"].shape == (3, 9600) and batch["speech"].dtype == torch.float32
    assert batch["speech_mask"].sum(1).tolist() == [1600, 9600, 4800]
    assert batch["input_ids"].shape[1] <= 6 and batch["input_ids"].dtype == torch.long
    expected_tokens = [min(6, len(tokenizer(item["text"])["input_ids"])) for item in items]
    assert batch["text_mask"].sum(1).tolist() == expected_tokens
    assert batch["labels"].tolist() == [item["label"] for item in items]
    assert batch["labels"].dtype == torch.long and batch["ids"] == ["utt000", "utt005", "utt002"]
    speech_only = Collator(None, max_tokens=6)(items)
    assert speech_only["input_ids"] is None and speech_only["speech"].shape == (3, 9600)


def _lengths(count: int = 1003) -> np.ndarray:
    return np.random.default_rng(3).uniform(0.5, 20.0, size=count)


def test_length_bucket_sampler_covers_every_index_in_similar_length_batches():
    lengths = _lengths()
    sampler = LengthBucketSampler(lengths, 16, seed=0, bucket_size_multiplier=20)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 63
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    spread = np.mean([np.ptp(lengths[batch]) for batch in batches])
    shuffled = np.random.default_rng(0).permutation(len(lengths))
    random_spread = np.mean([np.ptp(lengths[shuffled[i : i + 16]]) for i in range(0, 992, 16)])
    assert spread < 0.1 * random_spread


def test_length_bucket_sampler_is_deterministic_per_seed_and_epoch():
    lengths = _lengths()
    first, again = (LengthBucketSampler(lengths, 16, seed=5) for _ in range(2))
    assert list(first) == list(again)
    first.set_epoch(1)
    assert list(first) != list(again)
    again.set_epoch(1)
    assert list(first) == list(again)
    ordered = LengthBucketSampler(lengths, 16, shuffle=False)
    assert list(ordered) == list(LengthBucketSampler(lengths, 16, shuffle=False))
    dropped = list(LengthBucketSampler(lengths, 16, drop_last=True))
    assert len(dropped) == 62 and all(len(batch) == 16 for batch in dropped)


@pytest.mark.parametrize("drop_last", [False, True])
def test_length_bucket_sampler_shards_batches_across_ranks(drop_last):
    lengths = _lengths(1000)  # 63 batches of 16 (the last one of 8)
    shards = [
        list(
            LengthBucketSampler(lengths, 16, seed=2, num_replicas=4, rank=rank, drop_last=drop_last)
        )
        for rank in range(4)
    ]
    counts = {len(shard) for shard in shards}
    assert counts == {15 if drop_last else 16}
    assert all(
        len(s) == len(LengthBucketSampler(lengths, 16, num_replicas=4, rank=0, drop_last=drop_last))
        for s in shards
    )
    flat = [i for shard in shards for batch in shard for i in batch]
    single = list(LengthBucketSampler(lengths, 16, seed=2, drop_last=drop_last))
    assert {tuple(b) for s in shards for b in s} <= {tuple(b) for b in single}
    if drop_last:  # 60 of the 62 whole batches, none shared
        assert len(flat) == len(set(flat)) == 960
    else:  # every index; only the filler (a repeat of the first batch) appears twice
        assert set(flat) == set(range(1000)) and len(flat) - len(set(flat)) == len(single[0])
