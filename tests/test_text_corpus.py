"""A text corpus without audio in training; calibration and the text head's test score in fit."""

import json

import pytest
from test_train import _experiment_file, _load

from mgcma.checkpoint import load_model
from mgcma.constants import EMOTIONS
from train.evaluate import evaluate_text_head
from train.fit import fit
from train.manifest import load_manifest
from train.text_corpus import text_rows, voiced_ids

# each class has its own cue word: a learnable toy set for the text side
CUES = {"neutral": "table", "happy": "delight", "angry": "furious", "sad": "weeping"}
FILLERS = ("we saw the", "they said a", "there was the", "it felt so", "look at that")


def _text_manifest(path, voiced_id: str | None = None):
    lines = []
    for split, count in (("train", 40), ("test", 6)):
        for emotion in EMOTIONS:
            for number in range(count):
                filler = FILLERS[number % len(FILLERS)]
                lines.append(
                    {
                        "id": f"goemotions-{split}-{emotion}-{number}",
                        "text": f"{filler} {CUES[emotion]}",
                        "label": emotion,
                        "split": split,
                        "speaker": f"goemotions-{split}",
                        "group": split,
                    }
                )
    if voiced_id:
        lines.append({**lines[0], "id": voiced_id, "text": "a voiced sentence"})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_text_rows_leave_out_voiced_sentences_and_other_splits(tmp_path, tiny_corpus):
    path = _text_manifest(tmp_path / "text.jsonl", voiced_id="goemotions-voiced")
    utterances = load_manifest(tiny_corpus)
    utterances[0].extra["goemotions_id"] = "goemotions-voiced"
    exclude = voiced_ids(utterances)
    assert exclude == {"goemotions-voiced"}
    texts, labels = text_rows(path, "train", EMOTIONS, exclude)
    assert len(texts) == 160 and "a voiced sentence" not in texts
    assert sorted(set(labels)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="no rows in split 'dev'"):
        text_rows(path, "dev", EMOTIONS)


def test_fit_trains_the_text_head_on_the_corpus_calibrates_and_scores_its_test_split(
    tiny_corpus, tmp_path
):
    text = _text_manifest(tmp_path / "text.jsonl")
    experiment = _load(
        _experiment_file(tmp_path, tiny_corpus, epochs=8),
        f"--text_corpus.manifest={text}",
        "--text_corpus.batch_size=32",
        "--model.loss.text_corpus_weight=1.0",
    )
    result = fit(experiment, tmp_path / "run", progress=False)
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    losses = [record["train_text_corpus"] for record in history]
    assert losses[-1] < 0.75 * losses[0]  # the text head learns the cue words
    test_texts, test_labels = text_rows(text, "test", EMOTIONS)
    last = load_model(tmp_path / "run" / "last" / "model")
    assert evaluate_text_head(last, test_texts, test_labels)["ua"] > 0.5  # chance is 0.25
    scored = result["text_corpus_test"]  # the best epoch's (chosen on the fused validation UA)
    assert scored["split"] == "test" and scored["count"] == 24
    best_scores = evaluate_text_head(load_model(tmp_path / "run" / "best"), test_texts, test_labels)
    assert scored["ua"] == pytest.approx(best_scores["ua"])
    calibration = result["calibration"]
    assert calibration["count"] > 0 and set(calibration) >= {"fused", "speech", "text"}
    best = load_model(tmp_path / "run" / "best")
    assert best.config.calibration.fused == calibration["fused"]["temperature"]
    assert best.config.calibration.fitted_on.startswith("validation split")
    assert (tmp_path / "run" / "reliability.html").stat().st_size > 10_000
    assert set(result["calibration_test"]["fused"]) == {"ece_before", "ece_after"}
    assert result["best_epoch"] == 1 + max(
        range(len(history)), key=lambda i: (history[i]["val_ua"], -i)
    )
