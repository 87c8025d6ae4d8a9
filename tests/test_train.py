"""The training entry points on a tiny real espeak-ng corpus: fit, resume, 2 processes, CV."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import tone_corpus
from mgcma.checkpoint import CheckpointError, load_model
from train.cv import cross_validate
from train.fit import fit
from train.settings import load_experiment

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {  # the compact preset shrunk so a step takes milliseconds
    "speech.overrides.hidden_size": 32,
    "speech.overrides.num_hidden_layers": 1,
    "speech.overrides.num_attention_heads": 2,
    "speech.overrides.intermediate_size": 64,
    "text.overrides.hidden_size": 32,
    "text.overrides.num_hidden_layers": 1,
    "text.overrides.num_attention_heads": 2,
    "text.overrides.intermediate_size": 64,
    "alignment.dim": 32,
    "alignment.heads": 2,
    "classifier.hidden": 32,
}


def _experiment_file(directory: Path, manifest: Path, **optim) -> Path:
    document = {
        "preset": "compact",
        "model": {},
        "data": {
            "manifest": str(manifest),
            "test_group": "g1",
            "val_fraction": 0.2,
            "vocab_size": 200,
        },
        "optim": {"epochs": 2, "batch_size": 4, "num_workers": 0, "seed": 7, **optim},
    }
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _load(path: Path, *overrides: str):
    flat = [f"--model.{k}={v}" for k, v in TINY_MODEL.items()]
    return load_experiment(path, [*flat, *overrides])


class _OpensAFile:
    """Unpickled without weights_only, this would create `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_training_state_restores_every_rng_and_refuses_damaged_or_foreign_files(
    tiny_model, tmp_path
):
    from train.state import Progress, load_state, restore_rng, save_state

    optimizer = torch.optim.AdamW(tiny_model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # NumPy's cached Gaussian is part of its state too
    save_state(tmp_path / "last", tiny_model, optimizer, scheduler, Progress(step=5))
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    for seed in (random.seed, np.random.seed, torch.manual_seed):
        seed(9)  # whatever ran between saving and resuming
    _, trainer, progress = load_state(tmp_path / "last", torch.device("cpu"))
    restore_rng(trainer)
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected
    assert progress.step == 5 and trainer["scheduler"] == scheduler.state_dict()

    path = tmp_path / "last" / "optimizer.pt"
    intact = path.read_bytes()
    path.write_bytes(intact[: len(intact) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_state(tmp_path / "last", torch.device("cpu"))
    marker = tmp_path / "unpickled"
    torch.save({**trainer, "optimizer": _OpensAFile(marker)}, path)
    with pytest.raises(CheckpointError, match="damaged"):
        load_state(tmp_path / "last", torch.device("cpu"))
    assert not marker.exists()
    torch.save({**trainer, "numpy_rng": {"keys": torch.zeros(624)}}, path)  # an older layout
    with pytest.raises(CheckpointError, match="layout"):
        load_state(tmp_path / "last", torch.device("cpu"))


def test_dotted_model_overrides_reach_nested_dicts():
    # "speech.overrides.hidden_size" sets one key of the overrides dict
    from mgcma.config import MGCMAConfig

    config = MGCMAConfig.preset("compact").override({"speech.overrides.hidden_size": 32})
    assert config.speech.overrides["hidden_size"] == 32
    assert config.speech.overrides["num_hidden_layers"] == 3  # the rest is kept


def test_each_variant_takes_the_yaml_overrides_then_drops_what_it_cannot_have():
    """The shipped YAML switches the voice probe on; its text-only ablation has no voice, so the
    probe goes with it (as the auxiliary heads do), and every other variant keeps it."""
    import dataclasses

    experiment = load_experiment(Path(__file__).parents[1] / "train/configs/whisper_minilm.yaml")
    assert experiment.model["classifier.voice_probe"] is True
    for variant in ("full", "no_distribution", "no_instance", "no_token", "speech_only"):
        config = dataclasses.replace(experiment, variant=variant).model_config()
        assert config.classifier.voice_probe, variant
        assert config.speech.extra_layer == 1 and config.loss.modality_targets, variant
    text_only = dataclasses.replace(experiment, variant="text_only").model_config()
    assert text_only.modalities == "text" and not text_only.classifier.voice_probe
    assert text_only.loss.modality_targets and text_only.alignment.label_aware  # the rest kept
    no_token = dataclasses.replace(experiment, variant="no_token").model_config()
    assert not no_token.alignment.token and no_token.alignment.distribution


def test_fit_writes_a_loadable_checkpoint_and_the_resolved_config(tiny_corpus, tmp_path):
    experiment = _load(_experiment_file(tmp_path, tiny_corpus))
    result = fit(experiment, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    model = load_model(run / "best")
    assert model.config.alignment.dim == 32
    assert model.tokenizer("sad")["input_ids"][0] == model.tokenizer.cls_token_id
    saved = yaml.safe_load((run / "experiment.yaml").read_text())
    assert saved["model"]["alignment.dim"] == 32 and saved["optim"]["seed"] == 7
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    splits = json.loads((run / "splits.json").read_text())
    assert splits["test"]["groups"] == ["g1"] and "g1" not in splits["validation"]["groups"]
    assert "g1" not in splits["train"]["groups"]
    assert result["test"]["count"] == splits["test"]["count"]
    # the reported scores are those of the predictions it lists (one per test utterance)
    predictions = result["predictions"]
    assert len(predictions) == splits["test"]["count"]
    assert all(sum(p["probs"]) == pytest.approx(1, abs=1e-4) for p in predictions)
    assert all(p["prediction"] == max(range(4), key=p["probs"].__getitem__) for p in predictions)
    hits = [p["prediction"] == p["label"] for p in predictions]
    assert result["test"]["wa"] == pytest.approx(sum(hits) / len(hits))
    recalls = [
        sum(h for h, p in zip(hits, predictions, strict=True) if p["label"] == c)
        / sum(p["label"] == c for p in predictions)
        for c in sorted({p["label"] for p in predictions})
    ]
    assert result["test"]["ua"] == pytest.approx(sum(recalls) / len(recalls))


def test_fit_learns_a_learnable_toy_set(tmp_path):
    """The training loss falls and the held-out group is classified far above chance."""
    manifest = tone_corpus(tmp_path)
    path = _experiment_file(tmp_path, manifest, epochs=5, batch_size=8, lr_new=5e-3)
    # no augmentation: five epochs of clean tones (15 steps) keep the test a few seconds long
    result = fit(_load(path, "--augment.enabled=false"), tmp_path / "run", progress=False)
    first, last = result["history"][0], result["history"][-1]
    assert last["train_ce"] < 0.6 * first["train_ce"]  # measured: 1.40 → 0.63
    assert last["train_total"] < 0.7 * first["train_total"]  # measured: 2.67 → 1.37
    assert first["train_ce"] == pytest.approx(np.log(4), abs=0.15)  # it starts at chance
    assert result["test"]["count"] == 16
    # chance: 0.25; measured: 0.875 (the best epoch by validation UA mistakes 2 of 4 angry clips)
    assert result["test"]["ua"] >= 0.75 and result["test"]["wa"] >= 0.75


class SimulatedCrashError(Exception):
    pass


@pytest.mark.parametrize("ema_decay", [0.0, 0.8])
def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(
    tiny_corpus, tmp_path, monkeypatch, ema_decay
):
    """With a weight average too (`optim.ema_decay`): the averages resume where they stood."""
    path = _experiment_file(tmp_path, tiny_corpus, save_every_steps=1, ema_decay=ema_decay)
    straight = fit(_load(path), tmp_path / "straight", progress=False)

    import train.fit

    real_save, saves = train.fit.save_state, []

    def crash_after_third_save(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(args[4].step)  # (directory, model, optimizer, scheduler, progress, …)
        if len(saves) == 3:  # mid-epoch: the process dies right after a checkpoint
            raise SimulatedCrashError

    monkeypatch.setattr(train.fit, "save_state", crash_after_third_save)
    with pytest.raises(SimulatedCrashError):
        fit(_load(path), tmp_path / "resumed", progress=False)
    saved = json.loads((tmp_path / "resumed" / "last" / "progress.json").read_text())
    assert saved["step"] == 3 and saved["batch_in_epoch"] == 3 and saved["epoch"] == 0
    monkeypatch.setattr(train.fit, "save_state", real_save)
    resumed = fit(_load(path), tmp_path / "resumed", resume=True, progress=False)

    final = json.loads((tmp_path / "resumed" / "last" / "progress.json").read_text())
    assert final["epoch"] == 2 and final["step"] == straight["history"][-1]["step"]
    weights = {}
    for run in ("straight", "resumed"):
        weights[run] = load_file(tmp_path / run / "last" / "model" / "model.safetensors")
    for name, tensor in weights["straight"].items():
        assert torch.allclose(tensor, weights["resumed"][name], atol=1e-5), name
    best = {run: load_file(tmp_path / run / "best" / "model.safetensors") for run in weights}
    for name, tensor in best["straight"].items():  # the averages, when kept, resumed exactly
        assert torch.allclose(tensor, best["resumed"][name], atol=1e-5), name
    # validation and test metrics agree to within float rounding (stated tolerance: 1e-6)
    for key in ("val_wa", "val_ua", "val_f1"):
        assert [h[key] for h in resumed["history"]] == pytest.approx(
            [h[key] for h in straight["history"]], abs=1e-6
        )
    assert resumed["test"]["ua"] == pytest.approx(straight["test"]["ua"], abs=1e-6)


def test_two_process_cpu_run_completes_and_writes_one_checkpoint(tiny_corpus, tmp_path):
    path = _experiment_file(tmp_path, tiny_corpus, epochs=1)
    overrides = [f"--model.{k}={v}" for k, v in TINY_MODEL.items()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29531",
        "-m",
        "train",
        "fit",
        str(path),
        "--out",
        str(tmp_path / "ddp"),
        "--quiet",
        *overrides,
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "find_unused_parameters" not in result.stderr  # no wasted graph walk, no warning
    run = tmp_path / "ddp"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # rank 0 alone logs
    checkpoints = sorted(p.relative_to(run).as_posix() for p in run.rglob("model.safetensors"))
    assert checkpoints == ["best/model.safetensors", "last/model/model.safetensors"]
    assert not list(run.glob(".*tmp*"))
    load_model(run / "best")


def test_cv_writes_reports_with_one_fold_per_group(tiny_corpus, tmp_path):
    path = _experiment_file(tmp_path, tiny_corpus, epochs=1)
    report = cross_validate(_load(path), tmp_path / "cv", folds=["g1", "g2", "g3"], progress=False)
    assert [f["group"] for f in report["folds"]] == ["g1", "g2", "g3"]
    for fold in report["folds"]:
        assert sum(map(sum, fold["confusion"])) == fold["count"]
    assert report["summary"]["ua"]["mean"] == pytest.approx(
        sum(f["ua"] for f in report["folds"]) / 3
    )
    markdown = (tmp_path / "cv" / "report.md").read_text()
    assert "| g2 |" in markdown and "mean ± std" in markdown
    assert json.loads((tmp_path / "cv" / "report.json").read_text())["variant"] == "full"
    assert "plotly" in (tmp_path / "cv" / "report.html").read_text()[:100_000].lower()
    # calibration: each fold's ECE before and after, and the pooled reliability diagram
    assert markdown.count("| g") >= 6 and "validation ECE before" in markdown
    assert "Reliability of the fused head" in markdown
    assert (tmp_path / "cv" / "reliability.html").stat().st_size > 10_000
    validation = sum(
        json.loads((tmp_path / "cv" / f"fold-{g}" / "splits.json").read_text())["validation"][
            "count"
        ]
        for g in ("g1", "g2", "g3")
    )
    pooled = [f["reliability"]["after"] for f in report["folds"]]
    assert sum(row["count"] for rows in pooled for row in rows) == validation
    for group in ("g1", "g2", "g3"):
        splits = json.loads((tmp_path / "cv" / f"fold-{group}" / "splits.json").read_text())
        assert splits["test"]["groups"] == [group]
        assert group not in splits["train"]["groups"] + splits["validation"]["groups"]


def test_gradient_accumulation_takes_one_step_per_two_batches(tiny_corpus, tmp_path):
    path = _experiment_file(tmp_path, tiny_corpus, epochs=1)
    single = fit(_load(path), tmp_path / "one", progress=False)
    double = fit(_load(path, "--optim.grad_accum=2"), tmp_path / "two", progress=False)
    batches = single["history"][0]["step"]
    assert double["history"][0]["step"] == (batches + 1) // 2


def test_ablate_writes_one_table_with_a_row_per_variant(tiny_corpus, tmp_path):
    from train.ablate import ablate

    path = _experiment_file(tmp_path, tiny_corpus, epochs=1)
    table = ablate(
        _load(path), tmp_path / "ablate", ["full", "text_only"], folds=["g1", "g2"], progress=False
    )
    assert "| MGCMA (all three granularities) |" in table and "| text only |" in table
    assert "2 folds" in table
    assert (tmp_path / "ablate" / "ablation.md").read_text() == table
    summary = json.loads((tmp_path / "ablate" / "ablation.json").read_text())
    assert set(summary) == {"full", "text_only"}
    assert set(summary["full"]["folds"]) == {"g1", "g2"}
    uas = [fold["ua"] for fold in summary["full"]["folds"].values()]
    assert summary["full"]["ua"]["mean"] == pytest.approx(sum(uas) / 2)
    # the paired column: full − text only, fold by fold
    gaps = [
        summary["full"]["folds"][g]["ua"] - summary["text_only"]["folds"][g]["ua"]
        for g in ("g1", "g2")
    ]
    behind = summary["text_only"]["ua_behind_full"]
    assert behind["mean"] == pytest.approx(sum(gaps) / 2)
    assert behind["full_ahead"] == sum(gap > 0 for gap in gaps) and behind["folds"] == 2
    assert "ua_behind_full" not in summary["full"]
    assert f"{100 * behind['mean']:+.1f} ± " in table.split("| text only |")[1]
    assert table.split("| MGCMA (all three granularities) |")[1].splitlines()[0].endswith("| — |")
    text_only = json.loads((tmp_path / "ablate" / "text_only" / "report.json").read_text())
    assert text_only["variant"] == "text_only"
    assert not any((tmp_path / "ablate" / "text_only").rglob("speech_encoder*"))

    # --report-only tabulates what is finished and trains nothing
    from train.ablate import report_finished

    assert report_finished(_load(path), tmp_path / "ablate", ["full", "text_only"]) == table
    (tmp_path / "ablate" / "text_only" / "fold-g2" / "result.json").unlink()
    partial = report_finished(_load(path), tmp_path / "ablate", ["full", "text_only"])
    assert "folds as listed" in partial
    assert "| MGCMA (all three granularities) | g1, g2 |" in partial
    assert "| text only | g1 |" in partial
    assert not (tmp_path / "ablate" / "text_only" / "fold-g2" / "result.json").exists()


def test_ablate_with_two_jobs_trains_every_fold_as_one_job_does(tiny_corpus, tmp_path):
    from train.ablate import ablate

    experiment = _load(_experiment_file(tmp_path, tiny_corpus, epochs=1))
    variants, folds = ["full", "text_only"], ["g1", "g2"]
    serial = ablate(experiment, tmp_path / "one", variants, folds=folds, progress=False)
    parallel = ablate(experiment, tmp_path / "two", variants, folds=folds, progress=False, jobs=2)
    assert parallel == serial  # the same table: each fit is seeded, whichever process runs it
    for variant in variants:
        for group in folds:
            one, two = (
                json.loads((tmp_path / run / variant / f"fold-{group}" / "result.json").read_text())
                for run in ("one", "two")
            )
            assert two["test"]["ua"] == pytest.approx(one["test"]["ua"])
            assert two["predictions"] == one["predictions"]
    # a second call with resume trains nothing: every result.json stays as it was
    finished = sorted((tmp_path / "two").rglob("result.json"))
    assert len(finished) == 4
    stamps = [path.stat().st_mtime_ns for path in finished]
    ablate(experiment, tmp_path / "two", variants, folds, resume=True, progress=False, jobs=2)
    assert [path.stat().st_mtime_ns for path in finished] == stamps
    with pytest.raises(ValueError, match="--jobs must be at least 1"):
        ablate(experiment, tmp_path / "zero", variants, folds=folds, progress=False, jobs=0)


def test_token_score_counts_attention_inside_true_word_spans():
    import numpy as np

    from mgcma.analysis import Analysis
    from train.token_score import word_scores

    frame_times = np.arange(10) * 0.1  # frames at 0.0, 0.1, …, 0.9 s
    attention = np.zeros((1, 2, 10), dtype=np.float32)  # (H, W, T_s)
    attention[0, 0, 1:3] = 0.5  # word 0 looks only at frames 1–2, inside its span
    attention[0, 1, :] = 0.1  # word 1 looks everywhere
    analysis = Analysis(
        label="sad",
        probs={},
        transcript="a b",
        duration=1.0,
        frame_times=frame_times,
        fused_embedding=np.zeros(2),
        words=["a", "b"],
        word_times=[(0.1, 0.3), (0.5, 1.0)],
        attention_text_to_speech=attention,
    )
    (inside_a, uniform_a), (inside_b, uniform_b) = word_scores(analysis)
    assert inside_a == pytest.approx(1.0) and uniform_a == pytest.approx(0.2)
    assert inside_b == pytest.approx(uniform_b) == pytest.approx(0.5)


def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_result(tiny_corpus, tmp_path):
    """SIGKILL a real training process right after a mid-epoch checkpoint, then --resume."""
    import signal

    path = _experiment_file(tmp_path, tiny_corpus, epochs=3, batch_size=2, save_every_steps=1)
    overrides = [f"--model.{k}={v}" for k, v in TINY_MODEL.items()]
    straight = fit(_load(path), tmp_path / "straight", progress=False)

    killed = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "train",
        "fit",
        str(path),
        "--out",
        str(killed),
        "--quiet",
        *overrides,
    ]
    # the same thread count as this process: float sums must round alike for identical weights
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    progress_file = killed / "last" / "progress.json"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:  # `last` is swapped for its successor in two renames: it may be gone a moment
            step = json.loads(progress_file.read_text())["step"]
        except (FileNotFoundError, json.JSONDecodeError):
            step = 0
        if step >= 4:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "result.json").exists()
    saved = json.loads(progress_file.read_text())
    assert 0 < saved["step"] < straight["history"][-1]["step"]
    assert not list(killed.glob(".*tmp*")) or all(p.is_dir() for p in killed.glob(".*tmp*"))

    resumed = fit(_load(path), killed, resume=True, progress=False)
    for key in ("val_wa", "val_ua", "val_f1"):  # tolerance: float rounding only
        assert [h[key] for h in resumed["history"]] == pytest.approx(
            [h[key] for h in straight["history"]], abs=1e-6
        )
    assert resumed["test"]["ua"] == pytest.approx(straight["test"]["ua"], abs=1e-6)
    a = load_file(tmp_path / "straight" / "last" / "model" / "model.safetensors")
    b = load_file(killed / "last" / "model" / "model.safetensors")
    assert all(torch.allclose(a[name], b[name], atol=1e-5) for name in a)


def test_the_ablation_tabulates_each_cue_with_its_paired_column():
    from train.ablate import ablation_markdown, behind_full, cue_table

    def fold(group, agree, differ):
        cue = {"both": {"ua": agree, "count": 10}, "disagree": {"ua": differ, "count": 5}}
        return {"group": group, "wa": 0.5, "ua": 0.5, "f1": 0.5, "by_corpus": {}, "by_cue": cue}

    def report(folds):
        mean = {"mean": 0.5, "std": 0.0}
        by_cue = {
            cue: {"ua": {"mean": np.mean([f["by_cue"][cue]["ua"] for f in folds]), "std": 0.0}}
            for cue in ("both", "disagree")
        }
        summary = {"wa": mean, "ua": mean, "f1": mean}
        return {"summary": summary, "folds": folds, "summary_by_cue": by_cue}

    reports = {
        "full": report([fold("g1", 0.8, 0.6), fold("g2", 0.9, 0.5)]),
        "no_token": report([fold("g1", 0.9, 0.5), fold("g2", 0.8, 0.4)]),
    }
    gap = behind_full(reports, "no_token", "disagree", "by_cue")
    assert gap["mean"] == pytest.approx(0.1) and gap["full_ahead"] == 2 and gap["folds"] == 2
    agree = behind_full(reports, "no_token", "both", "by_cue")
    assert agree["mean"] == pytest.approx(0.0) and agree["full_ahead"] == 1
    table = cue_table(reports)
    header, _, full_row, row = table.strip().splitlines()[-4:]
    assert "voice and words agree (20)" in header and "voice and words differ" in header
    assert row.startswith("| without token-level alignment | 85.0 ± 0.0 | 45.0 ± 0.0 |")
    assert row.endswith("+0.0 ± 10.0 (ahead in 1/2) | +10.0 ± 0.0 (ahead in 2/2) |")
    assert full_row.endswith("| — | — |")
    without_cues = {v: {**r, "summary_by_cue": {}} for v, r in reports.items()}
    assert cue_table(without_cues) == ""
    shipped = Path(__file__).resolve().parents[1] / "train" / "configs" / "whisper_minilm.yaml"
    assert ablation_markdown(reports, load_experiment(str(shipped), [])).endswith("\n" + table)


def test_the_cv_report_gives_each_cue_fold_by_fold():
    from train.report import markdown

    def fold(group, agree):
        cue = {"both": {"ua": agree, "count": 10}}
        return {"group": group, "count": 10, "wa": 0.5, "ua": 0.5, "f1": 0.5, "best_epoch": 1,
                "by_corpus": {}, "by_cue": cue}  # fmt: skip

    stats = {"mean": 0.5, "std": 0.0}
    report = {
        "preset": "p", "variant": "full", "emotions": ["neutral", "happy", "angry", "sad"],
        "folds": [fold("g1", 0.8), fold("g2", 0.6)], "confusion": [[0] * 4] * 4,
        "summary": {"wa": stats, "ua": stats, "f1": stats},
        "summary_by_cue": {"both": {"ua": {"mean": 0.7, "std": 0.1}}},
    }  # fmt: skip
    assert "| both | 80.0 | 60.0 | 20 | 70.0 ± 10.0 |" in markdown(report)
    assert "Per cue" not in markdown({**report, "summary_by_cue": {}})


def test_compare_pairs_two_cross_validations_fold_by_fold(tmp_path):
    def run(name, uas, ravdess, agree):
        folds = [
            {"group": g, "ua": u, "by_corpus": {"ravdess": {"ua": r}},
             "by_cue": {"both": {"ua": c}}}
            for g, u, r, c in zip(("g1", "g2", "g3"), uas, ravdess, agree, strict=True)
        ]  # fmt: skip
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps({"folds": folds}))
        return str(tmp_path / name)

    base = run("base", [0.6, 0.7, 0.8], [0.5, 0.5, 0.5], [0.8, 0.8, 0.8])
    cand = run("cand", [0.7, 0.7, 0.7], [0.6, 0.7, 0.5], [0.8, 0.8, 0.8])
    done = subprocess.run(
        [sys.executable, "-m", "train", "compare", base, cand],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0]: line for line in done.stdout.splitlines() if line.startswith("|")}
    # overall: +10, 0, -10 points: mean 0, population std 8.2, ahead in 1 of 3
    assert (
        "| 70.0 ± 8.2 | 70.0 ± 0.0 | +0.0 ± 8.2 (ahead in 1/3) | g1 +10.0, g2 +0.0"
        in (rows["| overall"])
    )
    assert "+10.0 ± 8.2 (ahead in 2/3)" in rows["| corpus ravdess"]
    assert "+0.0 ± 0.0 (ahead in 0/3)" in rows["| cue: voice and words agree"]
    missing = subprocess.run(
        [sys.executable, "-m", "train", "compare", base, str(tmp_path / "nowhere")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert missing.returncode == 2 and "report.json not found" in missing.stderr


def test_fit_fits_the_voice_probe_on_human_training_voices_and_ships_it(tiny_corpus, tmp_path):
    """The tiny espeak-ng corpus, its lines marked as human voices: the probe is fitted on the
    training split after training, saved in the best checkpoint, and read back; a split of
    synthetic voices only is refused before any training."""
    human = _human_voices(tiny_corpus, tmp_path)
    experiment = _load(_experiment_file(tmp_path, human), "--model.classifier.voice_probe=true")
    result = fit(experiment, tmp_path / "run", progress=False)
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert result["voice_probe"]["human_clips"] == splits["train"]["count"]
    assert 0.0 <= result["voice_probe"]["train_ua"] <= 1.0
    model = load_model(tmp_path / "run" / "best")
    assert model.voice_probe.fitted and model.config.classifier.voice_probe
    synthetic = _load(
        _experiment_file(tmp_path, tiny_corpus), "--model.classifier.voice_probe=true"
    )
    with pytest.raises(ValueError, match="only synthetic"):
        fit(synthetic, tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused" / "metrics.jsonl").exists()


def _human_voices(tiny_corpus, directory: Path) -> Path:
    """The tiny espeak-ng corpus with its lines marked as recorded (human) voices."""
    human = directory / "human.jsonl"
    lines = [json.loads(line) for line in Path(tiny_corpus).read_text().splitlines()]
    base = Path(tiny_corpus).parent
    for line in lines:
        line["audio"] = str((base / line["audio"]).resolve())
        line["corpus"] = "recorded"
    human.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return human


def test_cv_calibrates_human_voices_on_the_other_folds_unheard_speakers(tiny_corpus, tmp_path):
    """Each fold stores its human test clips' logits; after the last fold, each checkpoint gets
    the human temperature fitted on the *other* folds' clips, and the report shows its ECE."""
    from train.unheard import LOGITS_FILE, fit_human_temperature, load_human_logits

    experiment = _load(
        _experiment_file(tmp_path, _human_voices(tiny_corpus, tmp_path), epochs=1),
        "--model.classifier.voice_probe=true",
    )
    report = cross_validate(experiment, tmp_path / "cv", folds=["g1", "g2"], progress=False)
    for group, other in (("g1", "g2"), ("g2", "g1")):
        fold = tmp_path / "cv" / f"fold-{group}"
        human = next(f for f in report["folds"] if f["group"] == group)["calibration_human"]
        assert human["count"] == json.loads((fold / "splits.json").read_text())["test"]["count"]
        clips = load_human_logits(tmp_path / "cv" / f"fold-{other}" / LOGITS_FILE)
        expected = fit_human_temperature(
            clips["fused"], clips["fused_truth"], clips["gate"], clips["fused_validation_t"]
        )
        assert human["temperature"] == pytest.approx(expected, abs=1e-4)
        calibration = load_model(fold / "best").config.calibration
        assert calibration.fused_human == human["temperature"]
        assert calibration.speech_human is not None
        assert f"folds {other} (" in calibration.fitted_on_human
    markdown = (tmp_path / "cv" / "report.md").read_text()
    assert "Human voices of the test speakers" in markdown and "| g2 |" in markdown
    assert report["calibration_human_summary"]["ece_after"]["mean"] >= 0
