"""Fit a model's voice probe (`mgcma.voices`) on the training split's human voices.

After the network has trained and its best epoch is chosen, and before temperature scaling:
each human training clip's speech backbone states, mean-pooled over the clip (every cached
augmented copy, or the clean clip without a feature cache), are standardised and a logistic
regression with L2 strength ``classifier.voice_probe_c`` is fitted to what the voice says
(``prosody_emotion`` where the manifest gives it, else the label). The standardisation and the
regression are folded into the probe's one linear layer. Synthetic voices are left out: the
network reads them, and the voice gate keeps the probe away from them at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mgcma.audio import load_audio
from mgcma.batch import pad_waveforms
from mgcma.model import MGCMA
from mgcma.pauses import cut_pauses
from train.data import synthetic_voice
from train.manifest import Utterance

ABSENT_CLASS_BIAS = -30.0  # an emotion no human training clip has: the probe never says it


def pooled_states(
    model: MGCMA, utterances: Sequence[Utterance], features=None, max_seconds: float = 8.0
) -> tuple[np.ndarray, np.ndarray]:
    """(R, D_read) pooled backbone states and (R,) the utterance index of each row: every
    cached copy with a feature cache (`train.features.FeatureCache`), else the clean clip."""
    encoder = model.speech_encoder
    rows, owners = [], []
    with torch.inference_mode():
        for index, utterance in enumerate(utterances):
            if features is not None:
                copies = [features.speech(utterance, c)[0] for c in range(features.copies + 1)]
                for states in copies:  # (T_s, D_s) or (T_s, K, D_s)
                    states = states.float()[None]  # (1, T_s, …)
                    mask = torch.ones(states.shape[:2], dtype=torch.bool)
                    rows.append(encoder(None, None, states, mask, return_pooled=True)[2][0])
                    owners.append(index)
            else:
                clip = load_audio(utterance.audio, max_seconds=max_seconds).samples  # (N,)
                keep = model.config.speech.max_pause_seconds
                if keep is not None:
                    clip = cut_pauses(clip, keep)[0]  # (N',) as the dataset and the app cut it
                speech, mask = pad_waveforms([clip])  # (1, N)
                device = model.device
                pooled = encoder(speech.to(device), mask.to(device), return_pooled=True)[2]
                rows.append(pooled[0].cpu())
                owners.append(index)
    return torch.stack(rows).float().numpy(), np.array(owners)


def voice_targets(utterances: Sequence[Utterance], emotions: Sequence[str]) -> np.ndarray:
    """(M,) the index of what each voice says: ``prosody_emotion``, else the label."""
    index = {e: i for i, e in enumerate(emotions)}
    return np.array(
        [
            index.get((u.extra or {}).get("prosody_emotion", u.label), index[u.label])
            for u in utterances
        ]
    )


def fit_voice_probe(
    model: MGCMA, train_utts: Sequence[Utterance], features=None, max_seconds: float = 8.0
) -> dict:
    """Fit ``model.voice_probe`` in place on the human voices of `train_utts`; returns a
    summary (clips, rows, classes, training UA) for ``result.json``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    if model.voice_probe is None:
        raise ValueError("this model has no voice probe (classifier.voice_probe)")
    human = [u for u in train_utts if not synthetic_voice(u)]
    targets = voice_targets(human, model.emotions)
    if len(set(targets.tolist())) < 2:
        raise ValueError(
            f"the voice probe needs human voices of at least two emotions in the training split; "
            f"it has {len(human)} human clips"
        )
    was_training = model.training
    model.eval()
    x, owners = pooled_states(model, human, features, max_seconds)  # (R, D), (R,)
    model.train(was_training)
    y = targets[owners]
    scaler = StandardScaler().fit(x)
    regression = LogisticRegression(C=model.config.classifier.voice_probe_c, max_iter=3000)
    regression.fit(scaler.transform(x), y)
    coef = regression.coef_ if len(regression.classes_) > 2 else None
    if coef is None:  # two classes: sklearn gives one row, for the second class
        coef = np.stack([-regression.coef_[0] / 2, regression.coef_[0] / 2])
        intercept = np.array([-regression.intercept_[0] / 2, regression.intercept_[0] / 2])
    else:
        intercept = regression.intercept_
    # standardise then regress, as one linear map: W·(x − μ)/σ + b = (W/σ)·x + (b − W·μ/σ)
    weight = coef / scaler.scale_[None, :]  # (K, D)
    bias = intercept - weight @ scaler.mean_  # (K,)
    full_weight = np.zeros((len(model.emotions), x.shape[1]))
    full_bias = np.full(len(model.emotions), ABSENT_CLASS_BIAS)
    full_weight[regression.classes_] = weight
    full_bias[regression.classes_] = bias
    layer = model.voice_probe.layer
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(full_weight).to(layer.weight.dtype))
        layer.bias.copy_(torch.from_numpy(full_bias).to(layer.bias.dtype))
    predicted = regression.predict(scaler.transform(x))
    return {
        "human_clips": len(human),
        "rows": len(y),
        "classes": [model.emotions[c] for c in regression.classes_],
        "c": model.config.classifier.voice_probe_c,
        "train_ua": float(balanced_accuracy_score(y, predicted)),
    }
