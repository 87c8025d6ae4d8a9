"""Scoring a model on a list of utterances: WA, UA, macro-F1, confusion, and predictions."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from mgcma.model import MGCMA
from train.data import Collator, EmotionDataset, model_inputs
from train.metrics import emotion_metrics


@torch.inference_mode()
def evaluate(
    model: MGCMA,
    utterances,
    batch_size: int = 16,
    *,
    max_seconds: float = 30.0,
    with_predictions: bool = False,
    features=None,
) -> dict:
    """Metrics of `model` on `utterances` (no augmentation; batches in manifest order).

    features : a `train.features.FeatureCache` of this model's frozen backbones, or None
    """
    was_training = model.training
    model.eval()
    dataset = EmotionDataset(utterances, max_seconds=max_seconds, features=features)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=Collator(model.tokenizer, model.config.text.max_tokens),
    )
    device = model.device
    labels, predictions, rows = [], [], []
    for batch in loader:
        output = model(**model_inputs(batch, device))
        probs = torch.softmax(output.logits.float(), dim=-1).cpu()
        labels += batch["labels"].tolist()
        predictions += probs.argmax(-1).tolist()
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
    if with_predictions:
        metrics["predictions"] = rows
    return metrics
