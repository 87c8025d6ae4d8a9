"""`python -m train ablate CONFIG.yaml`: cross-validate full MGCMA and every ablation.

Variants: full, without distribution, without instance, without token alignment, speech only,
text only; each is `config.ablation(variant)` of the same experiment, with the same folds and
seed. Writes RUN/<variant>/ (a cross-validation each) and RUN/ablation.md / ablation.json.
`--report-only` trains nothing: it tabulates the folds finished so far (a long ablation can be
run fold by fold, across sessions, with `--folds g1 --resume`, then `--folds g2 --resume`, …).

`--jobs N` trains N fits at a time, each in its own process with cores / N threads. The models
above frozen, cached encoders are small: their matrix products keep one core busy but gain
little from a second, so two one-thread fits side by side do more in an hour than one two-thread
fit (the shipped default on 2 cores: a step 273 and 279 ms in each of two processes at once,
225 ms alone with both cores; 1.6x the steps per second). Each process holds its own copy of
the cached features it read (about 1.5 GB for the shipped default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from mgcma.config import VARIANTS
from train.cv import cross_validate, fold_groups, summarise
from train.fit import fit
from train.report import pm
from train.settings import Experiment, load_experiment

LABELS = {
    "full": "MGCMA (all three granularities)",
    "no_distribution": "without distribution-level alignment",
    "no_instance": "without instance-level alignment",
    "no_token": "without token-level alignment",
    "speech_only": "speech only",
    "text_only": "text only",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML (its variant is replaced)")
    parser.add_argument("--out", default=None, help="run directory (default runs/ablate-<name>)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--folds", default="", help="comma-separated groups (default: all)")
    parser.add_argument("--resume", action="store_true", help="skip finished folds")
    parser.add_argument("--report-only", action="store_true", help="tabulate finished folds")
    parser.add_argument(
        "--jobs", type=int, default=1, help="fits at a time, one process each (default 1)"
    )
    parser.add_argument("--quiet", action="store_true")


def main(args: argparse.Namespace, overrides: list[str]) -> int:
    experiment = load_experiment(args.config, overrides)
    out = Path(args.out or Path("runs") / f"ablate-{Path(args.config).stem}")
    variants = [v for v in args.variants.split(",") if v]
    folds = [f for f in args.folds.split(",") if f] or None
    if args.report_only:
        table = report_finished(experiment, out, variants, folds)
    else:
        table = ablate(
            experiment, out, variants, folds, args.resume, not args.quiet, jobs=args.jobs
        )
    if table is not None:
        print(table)
    return 0


def ablate(
    experiment: Experiment,
    out: Path,
    variants,
    folds=None,
    resume=False,
    progress=True,
    jobs: int = 1,
) -> str | None:
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, not {jobs}")
    if jobs > 1:  # every fit first, `jobs` at a time; the loop below then only reads them back
        fit_in_parallel(experiment, Path(out), variants, folds, resume, jobs, progress)
        resume = True
    reports = {}
    for variant in variants:
        variant_experiment = dataclasses.replace(experiment, variant=variant)
        report = cross_validate(variant_experiment, Path(out) / variant, folds, resume, progress)
        if report is not None:
            reports[variant] = report
    return _write(reports, experiment, Path(out))


def fit_in_parallel(
    experiment: Experiment, out: Path, variants, folds, resume: bool, jobs: int, progress: bool
) -> None:
    """Train every (variant, fold) not finished yet, `jobs` processes at a time.

    Each fit writes RUN/<variant>/fold-<group>/ exactly as `cross_validate` does; a failed fit
    stops the ablation with its error once the fits already running are done (finished folds
    stay, so `--resume` carries on from there).
    """
    _, groups = fold_groups(experiment, folds)
    todo = [
        (variant, group)
        for group in groups  # fold by fold: an interrupted run leaves whole folds of the table
        for variant in variants
        if not (resume and (out / variant / f"fold-{group}" / "result.json").is_file())
    ]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context("spawn"),  # no forked torch thread pools
        initializer=_one_worker,
        initargs=(threads,),
    ) as pool:
        running = {
            pool.submit(_fit_fold, experiment, out, variant, group, resume): (variant, group)
            for variant, group in todo
        }
        for done in as_completed(running):
            variant, group = running[done]
            ua = done.result()  # raises the worker's error, with its traceback
            if progress:
                print(f"{variant}, fold {group}: test UA {100 * ua:.1f} %", flush=True)


def _one_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _fit_fold(experiment: Experiment, out: Path, variant: str, group: str, resume: bool) -> float:
    variant_experiment = dataclasses.replace(experiment, variant=variant)
    folder = out / variant / f"fold-{group}"
    result = fit(variant_experiment, folder, test_group=group, resume=resume, progress=False)
    return result["test"]["ua"]


def report_finished(experiment: Experiment, out: Path, variants, folds=None) -> str | None:
    """The table of every fold already finished under `out` (nothing is trained)."""
    reports = {}
    for variant in variants:
        found = sorted(Path(out, variant).glob("fold-*/result.json"))
        results = [json.loads(path.read_text()) for path in found]
        results = [r for r in results if not folds or r["test_group"] in folds]
        if results:
            variant_experiment = dataclasses.replace(experiment, variant=variant)
            reports[variant] = summarise(results, variant_experiment)
    return _write(reports, experiment, Path(out))


def _write(reports: dict[str, dict], experiment: Experiment, out: Path) -> str | None:
    if not reports:
        return None
    table = ablation_markdown(reports, experiment)
    (out / "ablation.md").write_text(table)
    summary = {  # per variant: mean ± std, and each fold's figures (enough to merge runs later)
        variant: {
            **report["summary"],
            **({"ua_behind_full": paired} if (paired := behind_full(reports, variant)) else {}),
            **({"by_corpus": by} if (by := report.get("summary_by_corpus")) else {}),
            **(
                {"ua_behind_full_by_corpus": paired_by}
                if (paired_by := _paired_by_corpus(reports, variant))
                else {}
            ),
            **({"by_cue": by} if (by := report.get("summary_by_cue")) else {}),
            **(
                {"ua_behind_full_by_cue": paired_by}
                if (paired_by := _paired_by_corpus(reports, variant, "by_cue"))
                else {}
            ),
            **({"text_corpus": t} if (t := report.get("text_corpus_summary")) else {}),
            "folds": {
                f["group"]: {
                    **{k: f[k] for k in ("wa", "ua", "f1", "count", "best_epoch")},
                    **({"by_corpus": f["by_corpus"]} if len(f.get("by_corpus") or {}) > 1 else {}),
                    **({"by_cue": f["by_cue"]} if f.get("by_cue") else {}),
                }
                for f in report["folds"]
            },
        }
        for variant, report in reports.items()
    }
    (out / "ablation.json").write_text(json.dumps(summary, indent=1))
    return table


def _paired_by_corpus(reports: dict[str, dict], variant: str, field: str = "by_corpus") -> dict:
    names = sorted(reports[variant].get(f"summary_{field}") or {})
    gaps = {name: behind_full(reports, variant, name, field) for name in names}
    return {name: gap for name, gap in gaps.items() if gap}


def _fold_ua(fold: dict, corpus: str | None, field: str = "by_corpus") -> float | None:
    if corpus is None:
        return fold["ua"]
    return (fold.get(field) or {}).get(corpus, {}).get("ua")


def behind_full(
    reports: dict[str, dict], variant: str, corpus: str | None = None, field: str = "by_corpus"
) -> dict | None:
    """How far `variant`'s UA is below the full model's, fold by fold (the folds both finished).

    Folds differ more from each other than variants do (some voice groups are harder for every
    model), so the paired difference says more than comparing two means ± std. Returns
    {"mean", "std"} of full − variant in UA, "full_ahead" (folds where the full model's UA is
    higher) and "folds"; None for the full model itself, or when no fold is shared. With
    `corpus`, the same on that corpus's test speakers only; with `field="by_cue"`, `corpus`
    names a cue and the same is measured on that cue's test clips.
    """
    if variant == "full" or "full" not in reports:
        return None
    full = {f["group"]: _fold_ua(f, corpus, field) for f in reports["full"]["folds"]}
    gaps = np.array(
        [
            full[f["group"]] - _fold_ua(f, corpus, field)
            for f in reports[variant]["folds"]
            if full.get(f["group"]) is not None and _fold_ua(f, corpus, field) is not None
        ]
    )
    if not len(gaps):
        return None
    return {
        "mean": float(gaps.mean()),
        "std": float(gaps.std(ddof=0)),
        "full_ahead": int((gaps > 0).sum()),
        "folds": len(gaps),
    }


def _paired(gap: dict | None) -> str:
    if not gap:
        return "—"
    return (
        f"{100 * gap['mean']:+.1f} ± {100 * gap['std']:.1f} "
        f"(ahead in {gap['full_ahead']}/{gap['folds']})"
    )


def ablation_table(reports: dict[str, dict], experiment: Experiment) -> str:
    counts = {len(r["folds"]) for r in reports.values()}
    count = counts.pop() if len(counts) == 1 else 0
    folds = f"{count} fold{'s' * (count != 1)}" if count else "folds as listed"
    lines = [
        f"Leave-one-group-out cross-validation, {folds}; preset `{experiment.preset}`, "
        f"{experiment.optim.epochs} epochs, seed {experiment.optim.seed}; mean ± std over folds "
        "(each fold's test group: voices never heard in training). Last column: the full "
        "model's UA minus this row's, fold by fold (mean ± std, in points), and in how many of "
        "the shared folds the full model is ahead.",
        "",
    ]
    corpora = sorted({c for r in reports.values() for c in r.get("summary_by_corpus") or {}})
    text_head = any(r.get("text_corpus_summary") for r in reports.values())
    lines += [
        "| model | held-out groups | WA % | UA % | macro-F1 % | "
        + "".join(f"UA % {corpus} | " for corpus in corpora)
        + ("text head UA % (text corpus test) | " if text_head else "")
        + "UA: full − this row |"
        + "".join(f" full − this row, {corpus} |" for corpus in corpora),
        "|---|---|---:|---:|---:|" + "---:|" * (2 * len(corpora) + 1 + text_head),
    ]
    for variant, report in reports.items():
        s = report["summary"]
        groups = ", ".join(f["group"] for f in report["folds"])
        by_corpus = report.get("summary_by_corpus") or {}
        per_corpus = "".join(
            f"{pm(by_corpus[c]['ua'])} | " if c in by_corpus else "– | " for c in corpora
        )
        text = ""
        if text_head:
            stats = report.get("text_corpus_summary")
            text = f"{pm(stats['ua'])} | " if stats else "– | "
        paired = " | ".join(
            _paired(behind_full(reports, variant, corpus)) for corpus in (None, *corpora)
        )
        lines.append(
            f"| {LABELS[variant]} | {groups} | {pm(s['wa'])} | {pm(s['ua'])} | {pm(s['f1'])} "
            f"| {per_corpus}{text}{paired} |"
        )
    return "\n".join(lines) + "\n"


CUES = {  # train.synth.CUE_MIX, and train.mix.DISAGREE
    "both": "voice and words agree",
    "prosody": "only the voice",
    "words": "only the words",
    "conflict": "voice and words conflict",
    "disagree": "voice and words differ",
}


def in_cue_order(names) -> list[str]:
    """Cue names as :data:`CUES` lists them, any other after them alphabetically."""
    return sorted(names, key=lambda c: (list(CUES).index(c) if c in CUES else len(CUES), c))


def ablation_markdown(reports: dict[str, dict], experiment: Experiment) -> str:
    """What `ablation.md` holds: the ablation table, then the cue table when there is one."""
    cues = cue_table(reports)
    return ablation_table(reports, experiment) + (f"\n{cues}" if cues else "")


def cue_table(reports: dict[str, dict]) -> str:
    """UA per cue of the clips that name one (the synthetic corpus), and full − this row, fold by
    fold; "" when no fold was scored by cue."""
    cues = in_cue_order({c for r in reports.values() for c in r.get("summary_by_cue") or {}})
    if not cues:
        return ""
    counts = {
        c: sum(
            f["by_cue"][c]["count"]
            for f in next(iter(reports.values()))["folds"]
            if c in f.get("by_cue", {})
        )
        for c in cues
    }
    lines = [
        "By cue, on the test clips whose manifest line names one (the synthetic corpus: which "
        "side carries the emotion; the label is the voice's unless it is neutral, then the "
        "words'; neutral clips are all 'agree'; 'differ' is the three cues before it together): "
        "UA % mean ± std over folds (over the classes present), then the full model's UA minus "
        "this row's, fold by fold. In brackets, the test clips of every fold together.",
        "",
        "| model | "
        + "".join(f"{CUES.get(c, c)} ({counts[c]}) | " for c in cues)
        + "".join(f"full − this row, {CUES.get(c, c)} | " for c in cues).rstrip(" "),
        "|---|" + "---:|" * (2 * len(cues)),
    ]
    for variant, report in reports.items():
        by_cue = report.get("summary_by_cue") or {}
        scores = "".join(f"{pm(by_cue[c]['ua'])} | " if c in by_cue else "– | " for c in cues)
        paired = " | ".join(_paired(behind_full(reports, variant, c, "by_cue")) for c in cues)
        lines.append(f"| {LABELS[variant]} | {scores}{paired} |")
    return "\n".join(lines) + "\n"
