"""The benchmark scripts run: as files from any directory, and (the cheap one) end to end.

They print figures and assert nothing; these tests only keep them runnable. No test imports a
benchmark (tests/test_style.py checks): they run as subprocesses, as a person would run them.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(
    p for p in (ROOT / "benchmarks").glob("*.py") if p.name not in ("__init__.py", "common.py")
)
NO_PYTHONPATH = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """This Python with `args`, from `folder`, without PYTHONPATH (as a person would run it)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env=NO_PYTHONPATH,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_benchmark_runs_as_a_file_from_anywhere(tmp_path):
    """`python benchmarks/<name>.py --help` from another directory, no PYTHONPATH: each script
    finds the checkout's packages itself (one process, so torch is imported once)."""
    names = {"analysis", "api_json", "burst", "cold_start", "dropout", "load", "training", "ui"}
    names |= {"robustness", "synthetic_ceiling", "transcript_confidence", "which_side"}
    names |= {"ablation_runs", "heads", "voice_probe", "new_sentence"}
    assert {p.stem for p in BENCHMARKS} == names
    runner = (
        "import runpy, sys\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv = [path, '--help']\n"
        "    try:\n"
        "        runpy.run_path(path, run_name='__main__')\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code in (0, None), (path, stop.code)\n"
    )
    done = _run(tmp_path, "-c", runner, *map(str, BENCHMARKS))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("usage: ") == len(BENCHMARKS), done.stdout[-3000:]


def test_the_training_benchmark_runs_a_step(tmp_path):
    done = _run(
        tmp_path,
        str(ROOT / "benchmarks" / "training.py"),
        *["--presets", "compact", "--steps", "1", "--batch-size", "2", "--seconds", "1"],
        *["--device", "cpu"],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("compact"))
    utterances_per_s, step_ms, encoders_ms, share = row.split()[1:5]
    assert float(utterances_per_s) > 0 and 0 < float(encoders_ms) and 0 <= float(share) <= 100


def test_the_dropout_benchmark_times_the_shipped_layers_three_ways(tmp_path):
    done = _run(
        tmp_path,
        str(ROOT / "benchmarks" / "dropout.py"),
        *["--frames", "20", "--tokens", "6", "--batch-size", "4", "--steps", "1", "--rounds", "1"],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if "ms/step" in line]
    assert [row[0] for row in rows] == ["torch", "mgcma.dropout", "no", "no"]
    assert all(float(row[row.index("ms/step") - 1]) > 0 for row in rows)
    assert "torch / mgcma.dropout:" in done.stdout


def test_the_transcript_confidence_benchmark_voices_and_scores_other_languages(tmp_path):
    from conftest import require_tool

    require_tool("espeak-ng")
    script = ROOT / "benchmarks" / "transcript_confidence.py"
    done = _run(tmp_path, str(script), "--per-language", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| espeak-ng")]
    assert len(rows) == 8 and all(row.count("|") == 10 for row in rows), done.stdout
    median = float(done.stdout.split("median of every other language:")[1])
    assert 0 <= median <= 1


def test_the_robustness_benchmark_hears_clean_clips_as_the_ablation_measured(tmp_path):
    """Its `clean` row is the shipped model on fold g1's 112 unheard RAVDESS clips: the UA the
    ablation measured (within two clips); a degraded row runs through the same path."""
    import json

    from conftest import require_tool

    require_tool("ffmpeg")
    script = ROOT / "benchmarks" / "robustness.py"
    done = _run(tmp_path, str(script), "--conditions", "clean,room 0.7 s,mp3 32k")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| condition")
    }
    assert list(rows) == ["clean", "room 0.7 s", "mp3 32k"], done.stdout
    figures = json.loads((ROOT / "assets" / "checkpoints" / "ablation.json").read_text())
    measured = 100 * figures["full"]["folds"]["g1"]["by_corpus"]["ravdess"]["ua"]
    assert abs(float(rows["clean"][0]) - measured) <= 2.0, (rows["clean"], measured)
    for fused, speech, sure in rows.values():
        assert 0 <= float(fused) <= 100 and 0 <= float(speech) <= 100 and 0.25 <= float(sure) <= 1


def test_the_synthetic_ceiling_reads_well_separated_settings_perfectly(tmp_path):
    """Settings far apart per emotion, words agreeing: every row reads them all (100 %)."""
    import json

    rng = np.random.default_rng(0)
    base = {"neutral": 50, "happy": 70, "angry": 90, "sad": 20}
    lines = []
    for index in range(200):
        emotion = list(base)[index % 4]
        settings = {k: base[emotion] + float(rng.normal(0, 1)) for k in
                    ("pitch", "pitch_range", "rate", "volume")}  # fmt: skip
        lines.append(json.dumps({
            "prosody": settings, "prosody_emotion": emotion, "text_emotion": emotion,
            "label": emotion, "group": f"g{index % 5 + 1}",
        }))  # fmt: skip
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    done = _run(
        tmp_path, str(ROOT / "benchmarks" / "synthetic_ceiling.py"), "--manifest", "manifest.jsonl"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "%" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "every setting", "without volume", "pitch range and rate only"
    ]  # fmt: skip
    # how it was said, the label by the rule, on templates; no real sentence in this manifest
    assert all(row.split("|")[2:6] == [" 100.0 ", " 100.0 ", " 100.0 ", " nan "] for row in rows)


def test_the_synthetic_ceiling_reads_the_words_as_a_run_read_them(tmp_path):
    """Perfect ears, a text side that misreads every real sentence's happy words as neutral:
    the label's UA drops to 75 % (happy never named), 0 % on the real sentences, 100 % on the
    templates; with the words' true emotion it stays 100 %. As a model (`--model`), the same
    predictions score 75 / 100 / 0."""
    import json

    from mgcma.constants import EMOTIONS

    rng = np.random.default_rng(0)
    base = {"neutral": 50, "angry": 90, "sad": 20}
    kinds = [("angry", "angry", "template"), ("sad", "sad", "template"),
             ("neutral", "neutral", "template"), ("neutral", "happy", "goemotions")]  # fmt: skip
    lines, predictions = [], []
    for index in range(200):
        voice, words, source = kinds[index % 4]
        settings = {k: base[voice] + float(rng.normal(0, 1)) for k in
                    ("pitch", "pitch_range", "rate", "volume")}  # fmt: skip
        label = words if voice == "neutral" else voice
        lines.append(json.dumps({
            "id": f"c{index}", "prosody": settings, "prosody_emotion": voice,
            "text_emotion": words, "label": label, "group": f"g{index % 5 + 1}",
            "sentence_source": source,
        }))  # fmt: skip
        named = "neutral" if source == "goemotions" else label
        predictions.append({"id": f"c{index}", "prediction": EMOTIONS.index(named)})
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    fold = tmp_path / "run" / "fold-g1"
    fold.mkdir(parents=True)
    (fold / "result.json").write_text(json.dumps({"predictions": predictions}))
    done = _run(
        tmp_path,
        str(ROOT / "benchmarks" / "synthetic_ceiling.py"),
        *["--manifest", "manifest.jsonl", "--words", "run", "--model", "run"],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "%" not in line]
    assert len(rows) == 4
    for row in rows[:3]:
        cells = [cell.strip() for cell in row.split("|")[2:-1]]
        assert cells == ["100.0"] * 4 + ["75.0", "100.0", "0.0"], row
    # the run's own predictions, scored as a model: the same 75 / 100 / 0
    assert rows[3].startswith("| run itself |"), rows[3]
    assert [c.strip() for c in rows[3].split("|")[2:-1]] == ["–", "75.0", "100.0", "0.0"] + [
        "–"
    ] * 3


def test_which_side_counts_the_errors_that_follow_the_words(tmp_path):
    """Conflicting clips (voice angry, words happy; label angry): a model that says happy on two
    of four and sad on one has 3 errors, 2 of them the words' emotion."""
    import json

    clips = [("c0", "conflict", "angry", "happy"), ("c1", "conflict", "angry", "happy"),
             ("c2", "conflict", "angry", "happy"), ("c3", "conflict", "angry", "happy"),
             ("b0", "both", "sad", "sad"), ("r0", None, None, None)]  # fmt: skip
    lines = []
    for clip, cue, voice, words in clips:
        line = {"id": clip, "audio": f"{clip}.wav", "text": "the door", "speaker": "s",
                "group": "g1", "label": voice or "neutral"}  # fmt: skip
        if cue:
            line |= {"cue": cue, "prosody_emotion": voice, "text_emotion": words}
        lines.append(json.dumps(line))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    said = {"c0": 1, "c1": 1, "c2": 3, "c3": 2, "b0": 3, "r0": 0}  # neutral happy angry sad
    label = {"c0": 2, "c1": 2, "c2": 2, "c3": 2, "b0": 3, "r0": 0}
    rows = [{"id": k, "label": label[k], "prediction": v} for k, v in said.items()]
    fold = tmp_path / "run" / "full" / "fold-g1"
    fold.mkdir(parents=True)
    (fold / "result.json").write_text(json.dumps({"predictions": rows}))
    script = str(ROOT / "benchmarks" / "which_side.py")
    done = _run(tmp_path, script, "run", "--manifest", "manifest.jsonl")
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| full |")]
    assert table == [
        "| full | both | 1 | 100.0 | – | – | – |",
        "| full | conflict | 4 | 25.0 | 67 | 0 | 33 |",
    ]
    done = _run(tmp_path, script, "run/full", "--manifest", "manifest.jsonl")  # one cv run
    assert "| full | conflict | 4 | 25.0 | 67 | 0 | 33 |" in done.stdout


def test_heads_reads_each_head_of_the_shipped_model_on_unheard_actors():
    """On fold g1's 112 RAVDESS clips (assets/heldout): the fused head scores what the ablation
    measured for the shipped model; RAVDESS's words are neutral, so the rule with the true words
    is the speech head's own reading; a one-modality model has no heads to read."""
    import json

    checkpoints = ROOT / "assets" / "checkpoints"
    script = str(ROOT / "benchmarks" / "heads.py")
    done = _run(
        ROOT,
        script,
        *["--checkpoint", str(checkpoints / "whisper_minilm"), str(checkpoints / "speech_only")],
        *["--manifest", str(ROOT / "assets" / "heldout" / "manifest.jsonl"), "--group", "g1"],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| corpus |"))
    names = [c.strip() for c in header.split("|")[2:-1]]
    assert names[0] == "fused" and "rule, true words" in names
    row = next(line for line in lines if line.startswith("| ravdess |"))
    values = dict(zip(names, (float(c) for c in row.split("|")[2:-1]), strict=True))
    ablation = json.loads((checkpoints / "ablation.json").read_text())
    measured = ablation["full"]["folds"]["g1"]["by_corpus"]["ravdess"]["ua"]
    assert abs(values["fused"] - 100 * measured) <= 2.0
    assert values["rule, true words"] == values["speech head, the voice"]
    # the shipped YAML sets loss.modality_targets: each head learned what its own side says
    assert "whisper_minilm (the heads learned what each side says alone)" in done.stdout
    assert "no auxiliary heads" in done.stdout and "speech_only" in done.stdout


def test_ablation_runs_averages_each_folds_paired_difference_over_the_runs(tmp_path):
    """Two runs, two folds: full − no_token is +2/−2 points in run 1 and +4/0 in run 2, so the
    mean of the runs is +3 and −1 per fold: +1.0 ± 2.0, ahead in 1 of 2; a corpus a run lacks
    is left out, not counted as zero."""
    import json

    def run(full: tuple[float, float], other: tuple[float, float]) -> dict:
        def folds(values):
            return {
                g: {"ua": v, "by_corpus": {"ravdess": {"ua": v}}}
                for g, v in zip(("g1", "g2"), values, strict=True)
            }

        return {"full": {"folds": folds(full)}, "no_token": {"folds": folds(other)}}

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(run((0.70, 0.60), (0.68, 0.62))))
    second.write_text(json.dumps(run((0.72, 0.61), (0.68, 0.61))))
    done = _run(tmp_path, str(ROOT / "benchmarks" / "ablation_runs.py"), "a.json", "b.json")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| no_token |")]
    overall, ravdess = rows  # no synthetic corpus in either run: no row
    assert overall == (
        "| no_token | g1, g2 | +0.0 ± 2.0 (1/2) | +2.0 ± 2.0 (1/2) | +1.0 ± 2.0 (1/2) |"
    )
    assert ravdess == overall


def test_new_sentence_scores_each_fold_on_the_clips_its_fold_held_out(tmp_path):
    """A run folder whose fold g1 is the shipped checkpoint (it never heard RAVDESS fold g1):
    scored on assets/heldout's clips, the held-out groups' clips are all of them and the fused
    UA is what the ablation measured there; a fold whose held-out groups have no clip in the
    manifest is a dash, not a zero."""
    import json

    checkpoints = ROOT / "assets" / "checkpoints"
    for fold, groups in (("g1", ["g1", "ravdess-g1"]), ("g2", ["ravdess-g2"])):
        folder = tmp_path / "run" / f"fold-{fold}"
        folder.mkdir(parents=True)
        (folder / "best").symlink_to(checkpoints / "whisper_minilm")
        split = {"test": {"count": 0, "groups": groups}, "test_group": fold}
        (folder / "splits.json").write_text(json.dumps(split))
    manifest = str(ROOT / "assets" / "heldout" / "manifest.jsonl")
    done = _run(
        tmp_path, str(ROOT / "benchmarks" / "new_sentence.py"), "run", "--manifest", manifest
    )
    assert done.returncode == 0, done.stderr[-3000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith(f"| run | {manifest}"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2] != "–" and cells[3] == "–"  # g1 scored, g2 held out no clip of this manifest
    ablation = json.loads((checkpoints / "ablation.json").read_text())
    measured = ablation["full"]["folds"]["g1"]["by_corpus"]["ravdess"]["ua"]
    assert abs(float(cells[2]) - 100 * measured) <= 2.0
    top, accuracy, ece = (float(c) for c in cells[5:8])
    assert 0.25 <= top <= 1.0  # the mean top probability of four classes
    assert abs(accuracy - float(cells[2]) / 100) <= 0.03  # balanced classes: accuracy ≈ UA
    assert ece >= abs(top - accuracy) - 0.005  # a weighted mean of |accuracy − confidence| per bin
