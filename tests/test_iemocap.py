"""IEMOCAP reading: a miniature release in the official layout, with every kind of label."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from train.iemocap import (
    STANDARD_TOTAL,
    IemocapError,
    add_arguments,
    main,
    read_iemocap,
    speaker_of,
    write_manifest,
)
from train.manifest import load_manifest

# session -> dialog -> [(utterance suffix, IEMOCAP label, transcript or None)]
TREE = {
    "Session1": {
        "Ses01F_impro01": [
            ("F000", "neu", "Excuse me."),
            ("M000", "exc", "Do you have your forms?"),
            ("F001", "fru", "Yeah."),
            ("M001", "ang", "Get out of here."),
        ],
        "Ses01M_script01_1": [
            ("F000", "hap", "What a lovely day."),
            ("M000", "sad", "I miss her."),
            ("M001", "xxx", "Well."),
        ],
    },
    "Session2": {
        "Ses02F_impro02": [
            ("F000", "sad", "It hurts."),
            ("M000", "neu", "The report is on the table."),
            ("F001", "sur", "Really?"),
            ("M001", "ang", None),  # labelled, but no transcript line
        ],
    },
    "Session3": {
        "Ses03M_impro03": [
            ("M000", "exc", "We won!"),
            ("F000", "neu", "Okay [LAUGHTER] sure."),
            ("F001", "hap", "Great news."),  # its wav file is missing
        ],
    },
}
MISSING_WAV = "Ses03M_impro03_F001"


def _evaluation_line(index: int, utterance_id: str, label: str) -> str:
    start = 1.0 + 3.0 * index
    return f"[{start:.4f} - {start + 2.0:.4f}]\t{utterance_id}\t{label}\t[2.5000, 2.5000, 2.5000]"


def _write_dialog(session_dir: Path, dialog: str, turns: list) -> None:
    dialog_dir = session_dir / "dialog"
    evaluation = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    transcript = []
    for index, (suffix, label, text) in enumerate(turns):
        utterance_id = f"{dialog}_{suffix}"
        evaluation += [_evaluation_line(index, utterance_id, label), f"C-E1:\t{label};\t()", ""]
        if text is not None:
            transcript.append(
                f"{utterance_id} [{1.0 + 3 * index:08.4f}-{3.0 + 3 * index:08.4f}]: {text}"
            )
        if utterance_id != MISSING_WAV:
            wav = session_dir / "sentences" / "wav" / dialog / f"{utterance_id}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            tone = 0.1 * np.sin(np.linspace(0, 200 * np.pi, 1600 * (index + 1)))
            sf.write(wav, tone.astype(np.float32), 16000, subtype="PCM_16")
    transcript.append("M: [BREATHING]")  # not an utterance line
    for folder, lines in (("EmoEvaluation", evaluation), ("transcriptions", transcript)):
        (dialog_dir / folder).mkdir(parents=True, exist_ok=True)
        (dialog_dir / folder / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
    # the release also has sub-folders of per-annotator files, which must be ignored
    (dialog_dir / "EmoEvaluation" / "Categorical").mkdir(exist_ok=True)
    (dialog_dir / "EmoEvaluation" / "Categorical" / f"{dialog}_e1_cat.txt").write_text(
        f"{dialog}_F000 :Anger; ()\n"
    )


@pytest.fixture
def iemocap_root(tmp_path: Path) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    for session, dialogs in TREE.items():
        for dialog, turns in dialogs.items():
            _write_dialog(root / session, dialog, turns)
    return root


def test_labels_merge_excited_and_drop_other_classes(iemocap_root):
    rows, report = read_iemocap(iemocap_root)
    by_id = {row["id"]: row for row in rows}
    assert by_id["Ses01F_impro01_M000"]["label"] == "happy"  # exc -> happy
    assert by_id["Ses01F_impro01_M000"]["iemocap_label"] == "exc"
    assert by_id["Ses01M_script01_1_F000"]["label"] == "happy"
    assert by_id["Ses01F_impro01_F000"]["label"] == "neutral"
    assert by_id["Ses01F_impro01_M001"]["label"] == "angry"
    assert by_id["Ses02F_impro02_F000"]["label"] == "sad"
    assert not {"Ses01F_impro01_F001", "Ses01M_script01_1_M001", "Ses02F_impro02_F001"} & set(by_id)
    assert report.dropped == {"fru": 1, "xxx": 1, "sur": 1}
    assert len(rows) == 9


def test_groups_speakers_and_transcripts(iemocap_root):
    rows, _ = read_iemocap(iemocap_root)
    by_id = {row["id"]: row for row in rows}
    assert {row["group"] for row in rows} == {"Session1", "Session2", "Session3"}
    assert by_id["Ses01F_impro01_M000"]["speaker"] == "Ses01M"  # a man in a woman-led dialog
    assert by_id["Ses01M_script01_1_F000"]["speaker"] == "Ses01F"
    assert by_id["Ses03M_impro03_M000"]["group"] == "Session3"
    assert by_id["Ses01F_impro01_F000"]["text"] == "Excuse me."
    assert by_id["Ses03M_impro03_F000"]["text"] == "Okay [LAUGHTER] sure."
    assert speaker_of("Ses05M_script02_2_F014") == "Ses05F"


def test_missing_wav_and_transcript_are_reported_not_fatal(iemocap_root):
    rows, report = read_iemocap(iemocap_root)
    ids = {row["id"] for row in rows}
    assert report.missing_audio == [MISSING_WAV] and MISSING_WAV not in ids
    assert report.missing_text == ["Ses02F_impro02_M001"] and "Ses02F_impro02_M001" not in ids
    text = report.format()
    assert MISSING_WAV in text and "Ses02F_impro02_M001" in text


def test_count_report_against_the_standard_subset(iemocap_root):
    _, report = read_iemocap(iemocap_root)
    differences = report.differences()
    assert report.total == 9 and not report.matches_standard
    assert differences["total"] == 9 - STANDARD_TOTAL
    assert differences["happy"] == 3 - 1636
    assert differences["Session1"] == 5 - 1085
    assert differences["Session4"] == -1031  # a session folder that is absent
    assert differences["Session3/neutral"] == 1 - 320
    text = report.format()
    assert "5,531" in text and "-5,522" in text and "Session4" in text
    assert "fru 1" in text


def test_manifest_paths_are_relative_and_load_back(iemocap_root, tmp_path):
    rows, _ = read_iemocap(iemocap_root)
    manifest = tmp_path / "manifests" / "iemocap.jsonl"
    write_manifest(rows, manifest)
    first = json.loads(manifest.read_text().splitlines()[0])
    assert (
        first["audio"] == "../IEMOCAP_full_release/Session1/sentences/wav/"
        "Ses01F_impro01/Ses01F_impro01_F000.wav"
    )
    utterances = load_manifest(manifest)
    assert [u.id for u in utterances] == [row["id"] for row in rows]
    assert all(u.audio.is_file() for u in utterances)
    assert utterances[0].extra == {"iemocap_label": "neu"}


def test_command_line(iemocap_root, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "iemocap.jsonl"
    assert main(parser.parse_args(["--root", str(iemocap_root), "--out", str(out)])) == 0
    printed = capsys.readouterr().out
    assert "expected" in printed and "wrote 9 utterances" in printed
    assert len(out.read_text().splitlines()) == 9


def test_root_without_sessions_is_a_clear_error(iemocap_root, tmp_path, capsys):
    with pytest.raises(IemocapError, match="no Session1..Session5.*did you mean"):
        read_iemocap(tmp_path)  # the parent of the release folder
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--root", str(tmp_path / "nowhere"), "--out", "x.jsonl"])
    assert main(args) == 2
    assert "not found" in capsys.readouterr().err
