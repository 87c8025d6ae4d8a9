"""Scoring a model on a list of utterances: WA, UA, macro-F1, confusion, and predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from mgcma.batch import tokenize_texts
from mgcma.model import MGCMA
from train.data import Collator, EmotionDataset, _pad_rows, model_inputs
from train.metrics import emotion_metrics

HEADS = ("fused", "speech", "text")


@torch.inference_mode()
def evaluate(
    model: MGCMA,
    utterances,
    batch_size: int = 16,
    *,
    max_seconds: float = 30.0,
    with_predictions: bool = False,
    with_logits: bool = False,
    features=None,
) -> dict:
    """Metrics of `model` on `utterances` (no augmentation; batches in manifest order).

    Probabilities are the checkpoint's calibrated ones (`MGCMA.probabilities`). With several
    corpora among `utterances` (a manifest line's `corpus`), `by_corpus` holds each one's
    metrics and `corpus_ua` the mean of their UA.

    features : a `train.features.FeatureCache` of this model's frozen backbones, or None
    with_logits : also return `logits`, head → (N, C) float32 numpy, `labels` (N,), and
        `targets`, head → (N,) what that head learned to say: the label, or with
        `loss.modality_targets` what the voice alone (speech head) or the words alone (text
        head) say; what each head's temperature is fitted on; and with a voice gate
        `gate_logits` (N,), the gate's logit that each voice is synthetic
    """
    was_training = model.training
    model.eval()
    dataset = EmotionDataset(
        utterances,
        max_seconds=max_seconds,
        features=features,
        max_pause=model.config.speech.max_pause_seconds if model.config.uses_speech else None,
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=Collator(model.tokenizer, model.config.text.max_tokens),
    )
    device = model.device
    labels, predictions, rows = [], [], []
    logits: dict[str, list[torch.Tensor]] = {}
    own = {"speech": [], "text": []}  # what each auxiliary head was taught
    gates = []  # (B,) per batch, with a voice gate
    for batch in loader:
        output = model(**model_inputs(batch, device))
        probs = model.probabilities(output)["fused"].cpu()
        labels += batch["labels"].tolist()
        own["speech"] += batch["speech_labels"].tolist()
        own["text"] += batch["text_labels"].tolist()
        predictions += probs.argmax(-1).tolist()
        if with_logits:
            for head, values in zip(
                HEADS, (output.logits, output.speech_logits, output.text_logits), strict=True
            ):
                if values is not None:
                    logits.setdefault(head, []).append(values.float().cpu())
            if output.voice_gate_logit is not None:
                gates.append(output.voice_gate_logit.float().cpu())
        if with_predictions:
            rows += [
                {
                    "id": i,
                    "label": int(y),
                    "prediction": int(p.argmax()),
                    "probs": [round(float(v), 5) for v in p],
                }
                for i, y, p in zip(batch["ids"], batch["labels"], probs, strict=True)
            ]
    model.train(was_training)
    metrics = emotion_metrics(labels, predictions, len(model.emotions))
    corpora = [u.extra.get("corpus", "unnamed") for u in utterances]
    if len(set(corpora)) > 1:
        metrics["by_corpus"] = {
            corpus: emotion_metrics(
                [y for y, c in zip(labels, corpora, strict=True) if c == corpus],
                [p for p, c in zip(predictions, corpora, strict=True) if c == corpus],
                len(model.emotions),
            )
            for corpus in sorted(set(corpora))
        }
        metrics["corpus_ua"] = float(np.mean([m["ua"] for m in metrics["by_corpus"].values()]))
    else:
        metrics["corpus_ua"] = metrics["ua"]
    if with_predictions:
        metrics["predictions"] = rows
    if with_logits:
        metrics["logits"] = {head: torch.cat(parts).numpy() for head, parts in logits.items()}
        metrics["labels"] = np.asarray(labels)
        modality = model.config.loss.modality_targets
        metrics["targets"] = {
            head: np.asarray(own[head] if modality and head in own else labels)
            for head in metrics["logits"]
        }
        if gates:
            metrics["gate_logits"] = torch.cat(gates).numpy()
    return metrics


@torch.inference_mode()
def evaluate_text_head(
    model: MGCMA,
    texts: Sequence[str],
    labels: Sequence[int],
    batch_size: int = 128,
    features=None,
) -> dict:
    """WA / UA / macro-F1 of the text-only head (a text-only model: its classifier) on
    sentences alone, no audio (e.g. GoEmotions' test split).

    features : a `train.features.FeatureCache` of this model's frozen text backbone, or None.
        With it the backbone runs once per sentence and cache (the first fold of a
        cross-validation), not once per model: GoEmotions' 4,324 test sentences cost MiniLM
        about 45 s on 2 cores, for each of an ablation's 25 models that read text.
    """
    was_training = model.training
    model.eval()
    cached = features is not None and features.text_identity is not None
    if cached:  # the ids `MGCMA.tokenize` gives, without padding
        ids = model.tokenizer(list(texts), truncation=True, max_length=model.config.text.max_tokens)
        features.fill_texts(ids["input_ids"])
    predictions = []
    for start in range(0, len(texts), batch_size):
        encoded = tokenize_texts(
            model.tokenizer, texts[start : start + batch_size], model.config.text.max_tokens
        )
        mask = encoded["text_mask"].to(model.device)
        states = None
        if cached:  # (b, T_t, D_t) the backbone's states, read back
            rows = [features.text(row) for row in ids["input_ids"][start : start + batch_size]]
            states, _ = _pad_rows(rows, encoded["input_ids"].shape[1])
            states = states.to(model.device)
        _, pooled = model.read_text(encoded["input_ids"].to(model.device), mask, states)  # (b, d)
        predictions += model.text_alone_logits(pooled).argmax(-1).tolist()
    model.train(was_training)
    return emotion_metrics(list(labels), predictions, len(model.emotions))
