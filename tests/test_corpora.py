"""RAVDESS and GoEmotions readers on miniature releases written here, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from train.__main__ import main as train_main
from train.goemotions import (
    DROPPED_DISAGREE,
    DROPPED_MALFORMED,
    DROPPED_OTHER,
    GoEmotionsError,
    comment_label,
    load_text_manifest,
    read_goemotions,
)
from train.manifest import load_manifest
from train.ravdess import actor_groups, read_ravdess

# actor folder -> clip names; .wav as in the official release, .flac as in resampled copies
RAVDESS_TREE = {
    "Actor_01": [
        "03-01-01-01-01-01-01.wav",  # neutral
        "03-01-02-01-01-01-01.flac",  # calm
        "03-01-03-02-02-01-01.flac",  # happy, strong, "Dogs are sitting by the door"
        "03-01-06-01-01-01-01.wav",  # fearful: outside the four classes
        "03-02-03-01-01-01-01.wav",  # song, not speech
    ],
    "Actor_02": ["03-01-04-01-01-01-02.flac", "03-01-01-01-01-01-02.wav"],  # sad, neutral
    "Actor_03": ["03-01-05-02-01-01-03.wav", "03-01-02-02-02-02-03.wav"],  # angry, calm
    "Actor_04": [
        "03-01-04-02-02-02-04.flac",  # sad
        "03-01-05-01.wav",  # malformed: four fields
        "03-01-09-01-01-01-04.wav",  # malformed: emotion 09
        "03-01-05-01-01-01-05.flac",  # malformed: actor 05 in the Actor_04 folder
    ],
}
MALFORMED = ("03-01-05-01.wav", "03-01-09-01-01-01-04.wav", "03-01-05-01-01-01-05.flac")


@pytest.fixture(scope="module")
def ravdess_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("release") / "Audio_Speech_Actors_01-24"
    tone = (0.1 * np.sin(np.linspace(0, 40 * np.pi, 800))).astype(np.float32)
    for actor, names in RAVDESS_TREE.items():
        (root / actor).mkdir(parents=True)
        for name in names:
            sf.write(root / actor / name, tone, 16000, subtype="PCM_16")
    (root / "README.md").write_text("not audio\n")
    return root


def _by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["id"].removeprefix("ravdess-"): row for row in rows}


def test_ravdess_labels_and_skipped_clips(ravdess_root):
    rows, report = read_ravdess(ravdess_root, calm="drop", n_groups=2)
    by_id = _by_id(rows)
    assert by_id["03-01-01-01-01-01-01"]["label"] == "neutral"
    assert by_id["03-01-04-01-01-01-02"]["label"] == "sad"
    assert by_id["03-01-05-02-01-01-03"]["label"] == "angry"
    happy = by_id["03-01-03-02-02-01-01"]
    assert happy["label"] == "happy" and happy["intensity"] == "strong"
    assert happy["text"] == "Dogs are sitting by the door"
    assert by_id["03-01-01-01-01-01-01"]["text"] == "Kids are talking by the door"
    # the emotion is in the voice; both statements are neutral words
    assert {(row["prosody_emotion"], row["text_emotion"]) for row in rows} == {
        (row["label"], "neutral") for row in rows
    }
    assert not {"03-01-02-01-01-01-01", "03-01-06-01-01-01-01", "03-02-03-01-01-01-01"} & set(by_id)
    assert report.skipped["calm (--calm drop)"] == 2
    assert report.skipped["fearful (not one of the four classes)"] == 1
    assert report.skipped["song, not speech (vocal channel 02)"] == 1
    assert len(rows) == report.total == 6
    assert {row["corpus"] for row in rows} == {"ravdess"}
    assert {row["licence"] for row in rows} == {"CC BY-NC-SA 4.0"}


def test_ravdess_calm_as_neutral_is_marked(ravdess_root):
    rows, report = read_ravdess(ravdess_root, calm="neutral", n_groups=2)
    calm = _by_id(rows)["03-01-02-01-01-01-01"]
    assert calm["label"] == "neutral" and calm["ravdess_emotion"] == "calm"
    assert _by_id(rows)["03-01-01-01-01-01-01"]["ravdess_emotion"] == "neutral"
    assert len(rows) == 8 and report.labels["neutral"] == 4
    assert not any("calm" in reason for reason in report.skipped)


def test_ravdess_speakers_and_actor_disjoint_groups(ravdess_root):
    rows, report = read_ravdess(ravdess_root, n_groups=2)
    by_id = _by_id(rows)
    assert by_id["03-01-04-01-01-01-02"]["speaker"] == "ravdess-actor-02"
    assert by_id["03-01-04-01-01-01-02"]["gender"] == "female"
    # males 01, 03 then females 02, 04, dealt in turn: each group one man and one woman
    assert report.group_actors == {"ravdess-g1": ["01", "02"], "ravdess-g2": ["03", "04"]}
    speakers = {row["group"]: set() for row in rows}
    for row in rows:
        speakers[row["group"]].add(row["speaker"])
    assert speakers["ravdess-g1"].isdisjoint(speakers["ravdess-g2"])


def test_twenty_actors_make_five_balanced_groups():
    groups = actor_groups([f"{number:02d}" for number in range(20, 0, -1)])
    members: dict[str, list[str]] = {}
    for actor, group in groups.items():
        members.setdefault(group, []).append(actor)
    assert sorted(members) == [f"ravdess-g{number}" for number in range(1, 6)]
    assert members["ravdess-g1"] == ["01", "11", "02", "12"]
    assert members["ravdess-g5"] == ["09", "19", "10", "20"]
    for actors in members.values():
        assert sum(int(a) % 2 for a in actors) == 2 and len(actors) == 4  # 2 male + 2 female
    assert len(groups) == 20


def test_ravdess_malformed_names_are_reported_not_fatal(ravdess_root):
    rows, report = read_ravdess(ravdess_root, n_groups=2)
    assert report.skipped["malformed file name"] == 3
    assert sorted(Path(p.split(": ")[0]).name for p in report.malformed) == sorted(MALFORMED)
    assert any("folder is Actor_04" in problem for problem in report.malformed)
    assert "03-01-09-01-01-01-04.wav" in report.format()
    assert not {Path(name).stem for name in MALFORMED} & set(_by_id(rows))


def test_ravdess_command_writes_relative_loadable_manifest(ravdess_root, tmp_path, capsys):
    out = tmp_path / "manifests" / "ravdess.jsonl"
    argv = ["ravdess", "--root", str(ravdess_root), "--out", str(out), "--groups", "2"]
    assert train_main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 6 utterances" in printed and "actors 01 02" in printed
    assert "skipped, malformed file name: 3" in printed
    first = json.loads(out.read_text().splitlines()[0])
    assert first["audio"].startswith("../../") and not Path(first["audio"]).is_absolute()
    utterances = load_manifest(out)
    assert len(utterances) == 6 and all(u.audio.is_file() for u in utterances)
    assert {u.audio.suffix for u in utterances} == {".wav", ".flac"}
    assert utterances[0].extra["corpus"] == "ravdess"


def test_ravdess_root_without_clips_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "never.jsonl"
    assert train_main(["ravdess", "--root", str(tmp_path / "empty"), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and "no .wav or .flac" in error and error.count("\n") == 1
    assert train_main(["ravdess", "--root", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "not found" in capsys.readouterr().err and not out.exists()


# ----------------------------------------------------------------------------- GoEmotions

EMOTION_NAMES = ["joy", "love", "anger", "sadness", "fear", "surprise", "curiosity", "neutral"]
# curiosity is in the joy group here (the official file puts it under surprise): the classes
# must come from the mapping file, not from a list in the reader
EKMAN_MAPPING = {
    "anger": ["anger"],
    "fear": ["fear"],
    "joy": ["joy", "love", "curiosity"],
    "sadness": ["sadness"],
    "surprise": ["surprise"],
}
SPLIT_ROWS = {
    "train": [
        ("I love it, what joy", "0,1", "c1"),  # joy + love agree: happy
        ("So annoyed right now", "2", "c2"),
        ("Great, and I hate it", "0,2", "c3"),  # joy + anger disagree: dropped
        ("The bus is at six", "7", "c4"),
        ("Fine I guess, yay", "7,0", "c5"),  # neutral + joy disagree: dropped
        ("That is scary", "4", "c6"),  # fear: outside the four classes
        ("Wow, lovely", "5,0", "c7"),  # surprise + joy: dropped
        ("Why would [NAME] do that?", "6", "c8"),  # curiosity: happy through the mapping
        ("broken row", "99", "c9"),  # label id out of range
    ],
    "dev": [("I miss him", "3", "d1")],
    "test": [("Okay then", "7", "t1"), ("Yay!", "0", "t2")],
}


@pytest.fixture
def goemotions_root(tmp_path: Path) -> Path:
    root = tmp_path / "goemotions"
    root.mkdir()
    (root / "emotions.txt").write_text("\n".join(EMOTION_NAMES) + "\n")
    (root / "ekman_mapping.json").write_text(json.dumps(EKMAN_MAPPING))
    for split, rows in SPLIT_ROWS.items():
        lines = ["\t".join(row) for row in rows]
        (root / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_goemotions_mapping_and_multi_label_rule(goemotions_root):
    rows, report = read_goemotions(goemotions_root)
    labels = {row["id"]: row["label"] for row in rows}
    assert labels == {
        "goemotions-c1": "happy",
        "goemotions-c2": "angry",
        "goemotions-c4": "neutral",
        "goemotions-c8": "happy",
        "goemotions-d1": "sad",
        "goemotions-t1": "neutral",
        "goemotions-t2": "happy",
    }
    assert rows[0]["goemotions_labels"] == ["joy", "love"] and report.multi_label_kept == 1
    assert report.dropped == {
        ("train", DROPPED_DISAGREE): 2,  # joy + anger, neutral + joy
        ("train", DROPPED_OTHER): 2,  # fear, surprise + joy
        ("train", DROPPED_MALFORMED): 1,
    }
    assert "train.tsv line 9" in report.malformed[0]
    assert comment_label(["neutral", "joy"], {"neutral": "neutral", "joy": "happy"})[0] is None


def test_goemotions_official_splits_are_kept(goemotions_root):
    rows, report = read_goemotions(goemotions_root)
    assert [row["split"] for row in rows] == ["train"] * 4 + ["dev"] + ["test"] * 2
    assert all(row["group"] == row["split"] for row in rows)
    assert report.kept["test", "happy"] == 1 and report.kept["dev", "sad"] == 1


def test_goemotions_command_and_text_manifest_loader(goemotions_root, tmp_path, capsys):
    out = tmp_path / "text" / "goemotions.jsonl"
    assert train_main(["goemotions", "--root", str(goemotions_root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 7 comments" in printed and "dropped, labels of different classes" in printed
    records = load_text_manifest(out)
    assert [r["id"] for r in records][:2] == ["goemotions-c1", "goemotions-c2"]
    assert records[4]["corpus"] == "goemotions" and records[4]["split"] == "dev"


def test_text_manifest_loader_names_the_bad_line(tmp_path):
    good = {"id": "a", "text": "hi", "label": "happy", "split": "train", "speaker": "s"}
    good["group"] = "train"
    bad_lines = {
        "label 'fearful'": {**good, "id": "b", "label": "fearful"},
        "split 'validation'": {**good, "id": "b", "split": "validation"},
        "missing key": {key: value for key, value in good.items() if key != "text"},
        "repeats line 1": good,
    }
    for problem, record in bad_lines.items():
        path = tmp_path / "text.jsonl"
        path.write_text(json.dumps(good) + "\n\n" + json.dumps(record) + "\n")
        with pytest.raises(ValueError, match=f"line 3: .*{problem}"):
            load_text_manifest(path)
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        load_text_manifest(path)


def test_goemotions_mapping_must_cover_every_emotion(goemotions_root, capsys):
    mapping = {**EKMAN_MAPPING, "joy": ["joy", "love"]}  # curiosity left without a group
    (goemotions_root / "ekman_mapping.json").write_text(json.dumps(mapping))
    with pytest.raises(GoEmotionsError, match="puts no group on curiosity"):
        read_goemotions(goemotions_root)
    assert train_main(["goemotions", "--root", str(goemotions_root / "x"), "--out", "x"]) == 2
    assert "not found" in capsys.readouterr().err
