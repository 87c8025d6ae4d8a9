"""`python -m train fit CONFIG.yaml [--key=value ...]`: train MGCMA on one split.

Stages: data (test group held out, validation drawn from the training groups) → model and
optimiser → epochs (forward, objectives, backward, step; validation at each epoch's end, the best
epoch kept) → the best checkpoint scored on the test group. Runs on one CPU, one GPU (mixed
precision) or several processes through `accelerate launch` / `torchrun`; only rank 0 writes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import get_cosine_schedule_with_warmup

from mgcma.checkpoint import build_model, load_model, save_model
from mgcma.losses import MGCMALoss
from mgcma.model import MGCMA
from mgcma.tokenizer import train_tokenizer
from train.augment import Augmenter
from train.average import WeightAverage
from train.calibrate import calibrate, expected_calibration_error, write_reliability
from train.data import (
    Collator,
    EmotionDataset,
    LengthBucketSampler,
    audio_seconds,
    model_inputs,
    synthetic_voice,
)
from train.evaluate import evaluate, evaluate_text_head
from train.features import FeatureCache, cacheable
from train.manifest import split_by_group, validation_split
from train.mix import load_utterances, scores_by_corpus, utterance_weights
from train.settings import Experiment, load_experiment
from train.state import Progress, load_state, restore_rng, save_state
from train.text_corpus import TextCorpus, text_rows, voiced_ids
from train.unheard import LOGITS_FILE, save_human_logits
from train.voice_probe import fit_voice_probe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML, e.g. train/configs/compact.yaml")
    parser.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from RUN/last")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def main(args: argparse.Namespace, overrides: list[str]) -> int:
    experiment = load_experiment(args.config, overrides)
    out = Path(args.out or Path("runs") / Path(args.config).stem)
    result = fit(experiment, out, resume=args.resume, progress=not args.quiet)
    if result is not None:
        test = result.get("test")
        if result["best_epoch"] >= 1:
            print(f"best epoch {result['best_epoch']}: validation {result['best_metric']:.4f}")
        else:
            print("stopped by optim.max_steps before any validation: best/ is the last weights")
        if test:
            print(
                f"test group {result['test_group']}: WA {test['wa']:.4f}  UA {test['ua']:.4f}  "
                f"macro-F1 {test['f1']:.4f}"
            )
        print(f"checkpoint: {out / 'best'}")
    return 0


def split_data(experiment: Experiment, test_group: str | None):
    """(train, validation, test) utterances; validation never comes from the test group."""
    utterances = load_utterances(experiment)
    group = experiment.data.test_group if test_group is None else test_group
    if group:
        train_utts, test_utts = split_by_group(utterances, group)
    else:
        train_utts, test_utts = utterances, []
    train_utts, val_utts = validation_split(
        train_utts, fraction=experiment.data.val_fraction, seed=experiment.optim.seed
    )
    return train_utts, val_utts, test_utts


def new_model(experiment: Experiment, train_utts) -> MGCMA:
    """The experiment's model before training; a tokenizer trained on `train_utts` if needed."""
    config = experiment.model_config()
    tokenizer = None
    if config.uses_text and config.text.from_scratch:
        tokenizer = train_tokenizer([u.text for u in train_utts], experiment.data.vocab_size)
    return build_model(config, tokenizer)


def build_optimizer(model: MGCMA, experiment: Experiment, total_steps: int):
    """AdamW with a smaller rate for pretrained backbones; warm-up then cosine decay."""
    optim = experiment.optim
    config = model.config
    backbone, new = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        pretrained = (
            name.startswith("speech_encoder.backbone") and not config.speech.from_scratch
        ) or (name.startswith("text_encoder.backbone") and not config.text.from_scratch)
        (backbone if pretrained else new).append(parameter)
    groups = [{"params": new, "lr": optim.lr_new}]
    if backbone:
        groups.append({"params": backbone, "lr": optim.lr_backbone})
    optimizer = torch.optim.AdamW(groups, weight_decay=optim.weight_decay)
    warmup = int(optim.warmup_fraction * total_steps)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)


def _mixed_precision(setting: str) -> str:
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


@dataclass
class Session:
    """Everything one training run holds, built once by `_prepare`."""

    experiment: Experiment
    out: Path
    accelerator: Accelerator
    model: torch.nn.Module  # as prepared by accelerate (DDP-wrapped when distributed)
    bare: MGCMA  # the same model unwrapped: for evaluation and checkpoints
    criterion: MGCMALoss
    dataset: EmotionDataset
    features: FeatureCache | None
    sampler: LengthBucketSampler
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    run: Progress
    text_corpus: TextCorpus | None = None
    average: WeightAverage | None = None  # optim.ema_decay > 0: validated and saved in place

    def averaged(self):
        """A `with` block in which `bare` holds the weight average (its own weights if none)."""
        return self.average.applied(self.bare) if self.average else contextlib.nullcontext()

    @property
    def state_dir(self) -> Path:
        return self.out / "last"

    def save_state(self) -> None:
        """The resumable state in `state_dir` (weights, optimiser, RNGs, progress, averages)."""
        save_state(
            self.state_dir, self.bare, self.optimizer, self.scheduler, self.run, self.average
        )

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


def fit(
    experiment: Experiment,
    out: Path,
    test_group: str | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict | None:
    """Train, select on validation, score the test group. Returns the result on rank 0."""
    group = experiment.data.test_group if test_group is None else test_group
    train_utts, val_utts, test_utts = split_data(experiment, group)
    session = _prepare(experiment, Path(out), train_utts, resume)
    if session.bare.voice_probe is not None and all(synthetic_voice(u) for u in train_utts):
        raise ValueError(  # refused before training, not after it
            "classifier.voice_probe is fitted on human voices, and this training split has only "
            "synthetic ones: add a corpus of real speech or switch the probe off"
        )
    if experiment.text_corpus.manifest:
        voiced = voiced_ids([*train_utts, *val_utts, *test_utts])  # no held-out sentence read
        session.text_corpus = _text_corpus(experiment, session, voiced)
    if session.features is not None:
        if session.main:  # validation and test read the clean clips only
            session.features.fill(train_utts, progress=progress)
            session.features.fill([*val_utts, *test_utts], copies=0, progress=progress)
        session.accelerator.wait_for_everyone()
    if session.main:
        session.out.mkdir(parents=True, exist_ok=True)
        experiment.save(session.out / "experiment.yaml")
        _describe(session.out, train_utts, val_utts, test_utts, group)
    run, optim = session.run, experiment.optim
    while run.epoch < optim.epochs and not _done(run, optim):
        started = time.time()
        session.sampler.set_epoch(run.epoch)
        session.dataset.set_epoch(run.epoch)
        losses = _train_epoch(session, progress and session.main)
        if losses is None:  # stopped mid-epoch at max_steps
            break
        _end_epoch(session, losses, val_utts, started, progress)
    if not session.main:
        return None
    if not (session.out / "best").exists():  # max_steps ended the run before any validation
        with session.averaged():
            save_model(session.bare, session.out / "best")
    splits = (train_utts, val_utts, test_utts)
    return _finish(session.out, run, splits, group, experiment, session.features)


def _text_corpus(experiment: Experiment, session: Session, voiced: set[str]) -> TextCorpus | None:
    """The text corpus's training rows, its texts' backbone states cached (`train.text_corpus`);
    None for a model that cannot read text alone (speech only, or no text-only head)."""
    settings, bare = experiment.text_corpus, session.bare
    if not _reads_text_alone(bare):
        return None
    texts, labels = text_rows(
        experiment.resolve(settings.manifest), "train", bare.emotions, exclude=voiced
    )
    features = session.features if session.features and session.features.text_identity else None
    return TextCorpus(
        texts,
        labels,
        bare.tokenizer,
        bare.config.text.max_tokens,
        settings.batch_size,
        balanced=settings.balanced,
        seed=experiment.optim.seed,
        features=features,
    )


def _reads_text_alone(model: MGCMA) -> bool:
    """Whether the model can predict from a sentence without audio (`text_alone_logits`)."""
    return model.text_encoder is not None and (
        model.text_head is not None or model.speech_encoder is None
    )


def _prepare(experiment: Experiment, out: Path, train_utts, resume: bool) -> Session:
    """Accelerator, model (new or resumed), data, optimiser and schedule, seeded."""
    optim = experiment.optim
    accelerator = Accelerator(
        mixed_precision=_mixed_precision(optim.mixed_precision),
        # every trainable parameter takes part in every step (ablated modules do not exist), so
        # DDP need not walk the graph for unused ones each step
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
        cpu=not torch.cuda.is_available(),
    )
    set_seed(optim.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    saved = None
    if resume and (out / "last" / "progress.json").is_file():
        model, saved, run = load_state(out / "last", torch.device("cpu"))
        model.train()
    else:
        model, run = new_model(experiment, train_utts), Progress()
    features = None
    if experiment.data.feature_cache and cacheable(model):
        features = FeatureCache(
            experiment.resolve(experiment.data.feature_cache),
            model,
            max_seconds=experiment.data.max_seconds,
            augment=Augmenter(experiment.augment) if experiment.augment.enabled else None,
            copies=experiment.augment.copies,
            seed=optim.seed,
            augment_settings=dataclasses.asdict(experiment.augment),
            memory_mb=experiment.data.feature_memory_mb,
        )
    dataset = EmotionDataset(
        train_utts,
        max_seconds=experiment.data.max_seconds,
        augment=Augmenter(experiment.augment),
        seed=optim.seed,
        features=features,
        text_dropout=experiment.data.text_dropout,
        max_pause=experiment.model_config().speech.max_pause_seconds,
    )
    sampler = LengthBucketSampler(
        audio_seconds(train_utts),
        optim.batch_size,
        weights=utterance_weights(experiment, train_utts),
        shuffle=True,
        seed=optim.seed,
        num_replicas=accelerator.num_processes,
        rank=accelerator.process_index,
    )
    criterion = MGCMALoss(model.config)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=Collator(
            model.tokenizer, model.config.text.max_tokens, token_spans=criterion.needs_attention
        ),
        num_workers=optim.num_workers,
        # its own generator: starting an epoch must not draw from the global RNG, or a run
        # resumed mid-epoch would see different dropout masks than an uninterrupted one
        generator=torch.Generator().manual_seed(optim.seed),
    )
    total_steps = math.ceil(len(sampler) / optim.grad_accum) * optim.epochs
    if optim.max_steps:
        total_steps = min(total_steps, optim.max_steps)
    optimizer, scheduler = build_optimizer(model, experiment, total_steps)
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
    prepared, optimizer = accelerator.prepare(model, optimizer)
    average = None
    if optim.ema_decay:
        # a run resumed from a state without averages (the setting turned on since) starts them
        # from its weights now
        average = WeightAverage(accelerator.unwrap_model(prepared), optim.ema_decay)
        if saved is not None and "average" in saved:
            average.load_state_dict(saved["average"])
    if saved is not None:
        restore_rng(saved)
    return Session(
        experiment,
        out,
        accelerator,
        prepared,
        accelerator.unwrap_model(prepared),
        criterion,
        dataset,
        features,
        sampler,
        loader,
        optimizer,
        scheduler,
        run,
        average=average,
    )


def _end_epoch(session: Session, losses: dict, val_utts, started: float, progress: bool) -> None:
    """Validate, keep the best epoch, log, and write the resumable state."""
    run, optim, bare = session.run, session.experiment.optim, session.bare
    with session.averaged():
        val = evaluate(
            bare,
            val_utts,
            optim.batch_size,
            max_seconds=session.experiment.data.max_seconds,
            features=session.features,
        )
    record = {
        "epoch": run.epoch + 1,
        "step": run.step,
        "seconds": round(time.time() - started, 1),
        **{f"train_{k}": v for k, v in losses.items()},
        **{f"val_{k}": v for k, v in val.items() if k not in ("confusion", "by_corpus")},
        **{f"val_ua_{c}": m["ua"] for c, m in val.get("by_corpus", {}).items()},
    }
    run.history.append(record)
    if val[optim.select_on] > run.best_metric:
        run.best_metric, run.best_epoch = val[optim.select_on], run.epoch
        if session.main:
            with session.averaged():
                save_model(bare, session.out / "best")
    run.epoch, run.batch_in_epoch = run.epoch + 1, 0
    if session.main:
        with open(session.out / "metrics.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")
        session.save_state()
        if progress:
            tqdm.write(_summary(record))
    session.accelerator.wait_for_everyone()


def _done(run: Progress, optim) -> bool:
    return bool(optim.max_steps) and run.step >= optim.max_steps


def _train_epoch(session: Session, show: bool) -> dict | None:
    """One epoch (or what is left of it after a resume); returns mean loss terms."""
    run, optim = session.run, session.experiment.optim
    session.model.train()
    totals: dict[str, float] = {}
    seen = 0
    batches, accumulate = len(session.loader), optim.grad_accum
    bar = tqdm(
        total=batches,
        initial=run.batch_in_epoch,
        disable=not show,
        desc=f"epoch {run.epoch + 1}/{optim.epochs}",
        leave=False,
    )
    for index, batch in enumerate(session.loader):
        if index < run.batch_in_epoch:  # already trained before the interruption
            continue
        group_start = index - index % accumulate
        group_size = min(accumulate, batches - group_start)  # the epoch's last group may be short
        sync = index == group_start + group_size - 1
        terms = _forward_backward(session, batch, index, group_size, sync)
        run.batch_in_epoch = index + 1
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value)
        seen += 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(terms['total']):.3f}")
        every = optim.save_every_steps
        if sync and every and run.step % every == 0 and session.main:
            session.save_state()
        if sync and _done(run, optim):
            bar.close()
            return None
    bar.close()
    return {name: round(total / max(seen, 1), 5) for name, total in totals.items()}


def _forward_backward(
    session: Session, batch: dict, index: int, group_size: int, sync: bool
) -> dict:
    """Forward, objectives, backward; an optimiser step when the accumulation group ends."""
    run, optim, accelerator = session.run, session.experiment.optim, session.accelerator
    _seed_step(optim.seed, run.epoch, index, accelerator.process_index)
    # between optimiser steps, DDP need not all-reduce gradients
    context = contextlib.nullcontext() if sync else accelerator.no_sync(session.model)
    with context:
        criterion = session.criterion
        inputs = model_inputs(batch, accelerator.device)
        text_only = text_labels = None
        if session.text_corpus is not None:
            text_only, text_labels = session.text_corpus.batch(
                run.epoch, index, accelerator.process_index
            )
            text_only = {k: v.to(accelerator.device) for k, v in text_only.items()}
        # the voice each clip is known to have: the voice gate's target (mgcma.voices)
        known_voice = batch["synthetic_voice"].to(accelerator.device)  # (B,)
        output = session.model(
            **inputs,
            return_attention=criterion.needs_attention,
            text_only=text_only,
            synthetic_voice=known_voice,
        )
        terms = criterion(
            output,
            batch["labels"].to(accelerator.device),
            batch["token_spans"],
            text_labels,
            (batch["speech_labels"], batch["text_labels"]),
            known_voice,
        )
        accelerator.backward(terms["total"] / group_size)
    if sync:
        accelerator.clip_grad_norm_(session.model.parameters(), optim.max_grad_norm)
        session.optimizer.step()
        session.scheduler.step()
        session.optimizer.zero_grad()
        if session.average is not None:
            session.average.update(session.bare)
        run.step += 1
    return {name: value.detach() for name, value in terms.items()}


def _seed_step(seed: int, epoch: int, batch: int, rank: int) -> None:
    """Dropout and time masks of a batch depend on (seed, epoch, batch, rank) alone.

    Re-seeding every batch makes a run resumed mid-epoch draw exactly what an uninterrupted
    run draws, whatever else consumed random numbers before (data loading, evaluation).
    """
    value = (((seed * 1_000_003 + epoch) * 1_000_003 + batch) * 101 + rank) % 2**32
    torch.manual_seed(value)
    np.random.seed(value)  # wav2vec2-family time masking draws from NumPy's global generator


def _summary(record: dict) -> str:
    return (
        f"epoch {record['epoch']}: loss {record.get('train_total', float('nan')):.4f}  "
        f"val WA {record['val_wa']:.4f}  UA {record['val_ua']:.4f}  F1 {record['val_f1']:.4f}"
        f"  ({record['seconds']} s)"
    )


def _describe(out: Path, train_utts, val_utts, test_utts, test_group: str) -> None:
    splits = {"train": train_utts, "validation": val_utts, "test": test_utts}
    summary = {
        name: {"count": len(u), "groups": sorted({x.group for x in u})}
        for name, u in splits.items()
    }
    summary["test_group"] = test_group
    (out / "splits.json").write_text(json.dumps(summary, indent=1))


def _finish(
    out: Path, run: Progress, splits: tuple, test_group: str, experiment, features=None
) -> dict:
    """Fit the best checkpoint's voice probe on the training split (`train.voice_probe`), calibrate
    it on validation, then score it on the test group (and its text head on the text corpus's
    test split); write ``result.json``."""
    train_utts, val_utts, test_utts = splits
    result = {
        "test_group": test_group,
        "best_epoch": run.best_epoch + 1,  # counted from 1, as in metrics.jsonl
        "best_metric": run.best_metric,
        "history": run.history,
        "test": None,
    }
    best = load_model(out / "best")
    kwargs = {"max_seconds": experiment.data.max_seconds, "features": features}
    batch_size = experiment.optim.batch_size
    if best.voice_probe is not None:
        result["voice_probe"] = fit_voice_probe(best, train_utts, **kwargs)
        save_model(best, out / "best")
    if val_utts:
        val = evaluate(best, val_utts, batch_size, with_logits=True, **kwargs)
        result["calibration"] = _calibrate(best, val, out)
    if test_utts:
        scores = evaluate(
            best, test_utts, batch_size, with_predictions=True, with_logits=True, **kwargs
        )
        result["calibration_test"] = _test_ece(best, scores)
        (out / LOGITS_FILE).unlink(missing_ok=True)  # `train.unheard` fits on what follows
        human = np.array([not synthetic_voice(u) for u in test_utts])
        save_human_logits(out / LOGITS_FILE, scores, human, best.config.calibration)
        drop = ("predictions", "logits", "labels", "targets", "gate_logits", "by_corpus")
        result["test"] = {k: v for k, v in scores.items() if k not in drop}
        result["test_by_corpus"] = scores_by_corpus(test_utts, scores["predictions"], best.emotions)
        result["predictions"] = scores["predictions"]
    if experiment.text_corpus.manifest and _reads_text_alone(best):
        texts, labels = text_rows(
            experiment.resolve(experiment.text_corpus.manifest), "test", best.emotions
        )
        result["text_corpus_test"] = {
            "split": "test",
            "count": len(texts),
            **evaluate_text_head(best, texts, labels, features=features),
        }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def _calibrate(best, val: dict, out: Path) -> dict:
    """Fit each head's temperature on validation, store it in ``out/best``, draw the diagram."""
    report = calibrate(val["logits"], val["labels"], val.get("targets"))
    calibration = best.config.calibration
    for head in ("fused", "speech", "text"):
        if head in report:
            setattr(calibration, head, report[head]["temperature"])
    calibration.fitted_on = f"validation split, {report['count']} utterances"
    save_model(best, out / "best")
    write_reliability(report, out / "reliability.html", "validation")
    return report


def _test_ece(best, scores: dict) -> dict:
    """ECE of each head on the test group, with and without the validation's temperatures."""
    from scipy.special import softmax

    calibration, targets = best.config.calibration, scores.get("targets") or {}
    report = {}
    for head, z in scores["logits"].items():
        truth = targets.get(head, scores["labels"])  # (N,) what this head learned to say
        before = softmax(z, axis=1)
        after = softmax(z / getattr(calibration, head), axis=1)
        report[head] = {
            "ece_before": round(expected_calibration_error(before, truth), 4),
            "ece_after": round(expected_calibration_error(after, truth), 4),
        }
    return report
