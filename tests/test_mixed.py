"""Several corpora in one experiment: folds across corpora, sampling weights, text dropout."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcma.config import ConfigError
from train.data import EmotionDataset, LengthBucketSampler, nonsense_transcript
from train.fit import split_data
from train.manifest import Utterance, folds, load_manifest, split_by_group
from train.mix import load_utterances, utterance_weights
from train.settings import load_experiment


def utterance(index: int, group: str, label: str = "sad") -> Utterance:
    return Utterance(
        id=f"u{index}", audio=Path("a.wav"), text="the door", label=label,
        speaker=f"{group}-s", group=group, words=None, extra={},
    )  # fmt: skip


def test_a_fold_holds_out_its_group_in_every_corpus():
    utterances = [
        utterance(i, g) for i, g in enumerate(["g1", "ravdess-g1", "g2", "ravdess-g2", "g1"])
    ]
    assert folds(utterances) == ["g1", "g2"]
    train, test = split_by_group(utterances, "g1")
    assert sorted({u.group for u in test}) == ["g1", "ravdess-g1"]
    assert {u.group for u in train} == {"g2", "ravdess-g2"}
    train, test = split_by_group(utterances, "ravdess-g2")  # a group alone: only that group
    assert {u.group for u in test} == {"ravdess-g2"} and len(train) == 4


def test_weights_draw_each_utterance_as_often_as_its_corpus_says():
    weights = [2.0] * 4 + [0.5] * 8  # 8 + 4 draws per epoch
    sampler = LengthBucketSampler(np.ones(12), 3, weights=weights, seed=1)
    drawn = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 4  # 12 draws in batches of 3: DDP needs this
        counts = Counter(i for batch in batches for i in batch)
        assert all(counts[i] == 2 for i in range(4))
        half = {i for i in range(4, 12) if counts[i]}
        assert len(half) == 4 and all(counts[i] == 1 for i in half)
        drawn.append(half)
    assert len({frozenset(h) for h in drawn}) > 1  # another half of the light corpus
    with pytest.raises(ValueError, match="positive"):
        LengthBucketSampler(np.ones(3), 2, weights=[1.0, 0.0, 1.0])


def test_text_dropout_replaces_some_transcripts_and_keeps_labels(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(8000, np.float32), 16000)
    utterances = [
        Utterance(f"u{i}", tmp_path / "a.wav", "i am so happy", "happy", "s", "g1", None, {})
        for i in range(400)
    ]
    dataset = EmotionDataset(utterances, text_dropout=0.2)
    texts = [dataset._text(i, u)[0] for i, u in enumerate(utterances)]
    replaced = [t for t in texts if t != "i am so happy"]
    assert 0.12 < len(replaced) / len(texts) < 0.28
    assert 0.3 < sum(t == "" for t in replaced) / len(replaced) < 0.7
    assert dataset[0]["label"] == dataset.label_index["happy"]
    assert nonsense_transcript(3) == nonsense_transcript(3) != nonsense_transcript(4)
    dataset.set_epoch(1)
    assert [dataset._text(i, u)[0] for i, u in enumerate(utterances)] != texts  # new each epoch
    with pytest.raises(ValueError, match="text_dropout"):
        EmotionDataset(utterances, text_dropout=1.0)


def _manifest(folder: Path, prefix: str, groups: list[str]) -> Path:
    folder.mkdir(parents=True)
    sf.write(folder / "a.wav", np.zeros(8000, np.float32), 16000)
    lines = [
        {"id": f"{prefix}{i}", "audio": "a.wav", "text": "hello there", "label": label,
         "speaker": f"{prefix}-{group}", "group": group}
        for i, (group, label) in enumerate(
            (g, lab) for g in groups for lab in ("neutral", "happy", "angry", "sad")
        )
    ]  # fmt: skip
    (folder / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder / "manifest.jsonl"


def test_an_experiment_mixes_manifests_with_weights(tmp_path):
    _manifest(tmp_path / "synth", "s", ["g1", "g2"])
    _manifest(tmp_path / "real", "r", ["real-g1", "real-g2"])
    config = tmp_path / "mix.yaml"
    config.write_text(
        "preset: compact\ndata:\n  test_group: g1\n  val_fraction: 0.0\n  manifests:\n"
        "    synth/manifest.jsonl: 1.0\n    real/manifest.jsonl: 3.0\n"
    )
    experiment = load_experiment(config)
    assert len(load_utterances(experiment)) == 16
    train, _, test = split_data(experiment, None)
    assert {u.group for u in test} == {"g1", "real-g1"}
    weights = utterance_weights(experiment, train)
    assert sorted(Counter(weights.tolist()).items()) == [(1.0, 4), (3.0, 4)]
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text().replace("3.0", "-1"))
    with pytest.raises(ConfigError, match="positive"):
        load_experiment(bad).manifest_weights()
    _manifest(tmp_path / "clash", "s", ["g3"])  # the same ids as synth/
    clash = tmp_path / "clash.yaml"
    clash.write_text(config.read_text().replace("real/", "clash/"))
    with pytest.raises(ValueError, match="share utterance ids"):
        load_utterances(load_experiment(clash))


def test_real_examples_take_one_unheard_actor_per_emotion(tmp_path):
    from train.examples import choose_real

    def clip(index, label, actor, intensity, group="ravdess-g1"):
        extra = {"intensity": intensity, "licence": "CC BY-NC-SA 4.0", "corpus": "ravdess"}
        return Utterance(
            f"r{index}", tmp_path / f"{index}.flac", "Kids are talking by the door", label,
            f"ravdess-actor-{actor}", group, None, extra,
        )  # fmt: skip

    clips = [
        clip(0, "neutral", "01", "normal"),
        clip(1, "happy", "01", "normal"),
        clip(2, "happy", "01", "strong"),
        clip(3, "happy", "02", "strong"),
        clip(4, "angry", "03", "strong", group="ravdess-g2"),  # a heard actor: never chosen
        clip(5, "angry", "02", "strong"),
        clip(6, "sad", "11", "strong"),
    ]
    chosen = choose_real(clips, ["ravdess-g1"])
    assert [u.label for u in chosen] == ["neutral", "happy", "angry", "sad"]
    assert chosen[1].extra["intensity"] == "strong" and chosen[1].speaker != chosen[0].speaker
    assert all(u.group == "ravdess-g1" for u in chosen)


def _conflict_and_words(folder: Path, audio: np.ndarray) -> tuple[Utterance, Utterance]:
    """A conflict clip (angry voice, happy words) and a words-only one (neutral voice, sad
    words), both saying `audio`."""
    sf.write(folder / "a.wav", audio, 16000)
    conflict = Utterance(
        "c", folder / "a.wav", "what a lovely day", "angry", "s", "g1", None,
        {"prosody_emotion": "angry", "text_emotion": "happy", "cue": "conflict"},
    )  # fmt: skip
    words = Utterance(
        "w", folder / "a.wav", "i miss her so much", "sad", "s", "g1", None,
        {"prosody_emotion": "neutral", "text_emotion": "sad", "cue": "words"},
    )  # fmt: skip
    return conflict, words


def test_modality_labels_say_what_the_voice_and_the_words_say_alone(tmp_path):
    conflict, words = _conflict_and_words(tmp_path, np.zeros(8000, np.float32))
    real = Utterance("r", tmp_path / "a.wav", "kids are talking", "happy", "s", "g1", None, {})
    dataset = EmotionDataset([conflict, words, real])
    index = dataset.label_index
    items = [dataset[i] for i in range(3)]
    assert [(i["label"], i["speech_label"], i["text_label"]) for i in items] == [
        (index["angry"], index["angry"], index["happy"]),
        (index["sad"], index["neutral"], index["sad"]),
        (index["happy"], index["happy"], index["happy"]),  # a corpus that does not say: the label
    ]
    # a transcript replaced by nothing or made-up words says no emotion: the words' head learns
    # neutral there, the voice's and the fused label stay
    dropped = EmotionDataset([conflict] * 200, text_dropout=0.5)
    replaced = 0
    for i in range(200):
        item = dropped[i]
        kept = item["text"] == conflict.text
        replaced += not kept
        assert item["text_label"] == (index["happy"] if kept else index["neutral"])
        assert (item["label"], item["speech_label"]) == (index["angry"], index["angry"])
    assert 60 < replaced < 140
    # emotions without a neutral class: the label, as before
    no_neutral = EmotionDataset([conflict] * 50, text_dropout=0.5, labels=("happy", "angry"))
    two = no_neutral.label_index
    for i in range(50):
        item = no_neutral[i]
        kept = item["text"] == conflict.text
        assert item["text_label"] == (two["happy"] if kept else two["angry"])


@pytest.mark.parametrize("modality_targets", [False, True])
def test_evaluation_gives_each_head_the_targets_it_learned(tiny_model, tmp_path, modality_targets):
    from train.evaluate import evaluate

    noise = 0.1 * np.random.default_rng(0).standard_normal(16000)
    conflict, words = _conflict_and_words(tmp_path, noise)
    tiny_model.config.loss.modality_targets = modality_targets
    try:
        scores = evaluate(tiny_model, [conflict, words], with_logits=True)
    finally:
        tiny_model.config.loss.modality_targets = False
    index = {e: i for i, e in enumerate(tiny_model.emotions)}
    labels = [index["angry"], index["sad"]]
    assert scores["labels"].tolist() == labels
    targets = {head: t.tolist() for head, t in scores["targets"].items()}
    assert targets["fused"] == labels
    if modality_targets:
        assert targets["speech"] == [index["angry"], index["neutral"]]
        assert targets["text"] == [index["happy"], index["sad"]]
    else:
        assert targets["speech"] == targets["text"] == labels


def test_heldout_copies_a_folds_clips_with_a_manifest_that_loads(tmp_path):
    from train.heldout import write_heldout
    from train.manifest import ManifestError

    sf.write(tmp_path / "a.flac", np.zeros(8000, np.float32), 16000)
    lines = [
        {"id": f"r{i}", "audio": "a.flac", "text": "kids are talking by the door",
         "label": label, "speaker": f"actor-{i}", "group": group, "licence": "CC BY-NC-SA 4.0"}
        for i, (label, group) in enumerate([("sad", "g1"), ("happy", "g2"), ("angry", "g1")])
    ]  # fmt: skip
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = write_heldout(tmp_path / "m.jsonl", tmp_path / "out", ["g1"])
    shipped = load_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [u.id for u in shipped] == ["r0", "r2"] == [r["id"] for r in rows]
    assert [u.label for u in shipped] == ["sad", "angry"]
    assert all(u.audio.is_file() and u.audio.parent == tmp_path / "out" for u in shipped)
    assert shipped[0].extra["licence"] == "CC BY-NC-SA 4.0"
    with pytest.raises(ManifestError, match="no utterance of groups"):
        write_heldout(tmp_path / "m.jsonl", tmp_path / "none", ["g9"])


def test_clips_are_scored_by_cue_and_the_differing_cues_together():
    from train.mix import scores_by_cue

    emotions = ("neutral", "happy", "angry", "sad")
    cues = ["both", "both", "prosody", "prosody", "words", "conflict", None]
    utterances = [
        Utterance(
            id=f"u{i}",
            audio=Path("a.wav"),
            text="the door",
            label="sad",
            speaker="s",
            group="g1",
            extra={} if cue is None else {"cue": cue},
        )  # fmt: skip
        for i, cue in enumerate(cues)
    ]
    #                  both: right, wrong   prosody: right, right  words: wrong  conflict: right
    labels, predictions = [1, 2, 3, 2, 1, 3, 0], [1, 0, 3, 2, 0, 3, 0]
    pairs = enumerate(zip(labels, predictions, strict=True))
    rows = [{"id": f"u{i}", "label": y, "prediction": p} for i, (y, p) in pairs]
    scores = scores_by_cue(utterances, rows, emotions)
    assert set(scores) == {"both", "prosody", "words", "conflict", "disagree"}  # u6 names none
    assert scores["both"]["wa"] == 0.5 and scores["prosody"]["ua"] == 1.0
    assert scores["words"]["ua"] == 0.0 and scores["conflict"]["count"] == 1
    # prosody, words and conflict pooled: 3 of 4 right; UA over the classes present (happy 0/1,
    # angry 1/1, sad 2/2), predictions of an absent class (neutral) only cost their own row
    assert scores["disagree"]["count"] == 4 and scores["disagree"]["wa"] == 0.75
    assert scores["disagree"]["ua"] == pytest.approx((0 + 1 + 1) / 3)
    assert scores_by_cue(utterances[-1:], rows[-1:], emotions) == {}
