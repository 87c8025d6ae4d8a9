"""Real GoEmotions sentences voiced by espeak-ng: cleaning, skipping, splits, exact word times."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import require_tool
from mgcma.constants import EMOTIONS, SAMPLE_RATE
from train.lexicon import sentence_words
from train.real_sentences import (
    NAMES,
    SKIPPED_LINK,
    SKIPPED_LONG,
    SKIPPED_MASK,
    SKIPPED_SHORT,
    SKIPPED_SYMBOLS,
    RealSentences,
    clean_sentence,
)
from train.synth import VOICE_GROUPS, generate_corpus, plan_corpus

LONG = " ".join(["word"] * 17)
CASES = [
    ("see https://example.org for more", None, SKIPPED_LINK),
    ("go to /r/aww right now", None, SKIPPED_LINK),
    ("I hate [RELIGION] people so much", None, SKIPPED_MASK),
    ("😂😂😂😂 lol", None, SKIPPED_SYMBOLS),
    ("!!!! ???? yes", None, SKIPPED_SYMBOLS),
    ("Thanks!", None, SKIPPED_SHORT),
    (LONG, None, SKIPPED_LONG),
    ("so (really) happy for you!!", "So really happy for you.", ""),
    ('he said "no way" - and left...', "He said no way and left.", ""),
    ("i can't believe it's Friday 🎉", "I can't believe it's Friday.", ""),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES)
def test_clean_sentence_keeps_speakable_text_and_names_what_it_skips(text, expected, why):
    sentence, reason = clean_sentence(text, np.random.default_rng(0))
    assert (sentence, reason) == (expected, why)


def test_name_masks_become_first_names():
    sentence, _ = clean_sentence("[NAME] is the best, thanks [NAME]", np.random.default_rng(0))
    assert "[" not in sentence
    assert sum(word.strip(",.") in NAMES for word in sentence.split()) == 2


def _text_manifest(path: Path, per_class: int = 12) -> Path:
    """A text manifest shaped like `python -m train goemotions`'s, with rows to skip."""
    lines = []
    for split in ("train", "dev", "test"):
        for emotion in EMOTIONS:
            for number in range(per_class):
                lines.append(
                    {
                        "id": f"goemotions-{split}-{emotion}-{number}",
                        "text": f"this {split} line {number} is quite {emotion}",
                        "label": emotion,
                        "split": split,
                        "speaker": f"goemotions-{split}",
                        "group": split,
                    }
                )
    lines.append({**lines[0], "id": "goemotions-link", "text": "look at www.example.com now"})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_real_sentences_come_from_train_and_dev_only_and_are_drawn_once(tmp_path):
    real = RealSentences.from_manifest(_text_manifest(tmp_path / "text.jsonl"), seed=0)
    assert real.skipped == Counter({SKIPPED_LINK: 1})
    drawn = [real.draw("sad") for _ in range(30)]
    kept = [d for d in drawn if d is not None]
    assert len(kept) == 24 and len({d[0] for d in kept}) == 24  # 12 train + 12 dev, no repeat
    assert all("test" not in sentence_id for sentence_id, _ in kept)
    assert real.exhausted["sad"] == 6


def test_plan_without_real_sentences_is_the_templated_corpus_of_before():
    # the real-sentence option must not move the random stream of a templated corpus
    plans = plan_corpus(5, 0, dict(VOICE_GROUPS))
    again = plan_corpus(5, 0, dict(VOICE_GROUPS), sentences=None, real_share=1.0)
    assert plans == again and all(plan.sentence_id == "" for plan in plans)


def test_synth_voices_real_sentences_with_exact_word_times(tmp_path):
    require_tool("espeak-ng")
    voices = [voices[0] for voices in VOICE_GROUPS.values()]
    text_manifest = _text_manifest(tmp_path / "text.jsonl")
    manifest = generate_corpus(
        tmp_path / "corpus",
        per_class=6,
        seed=1,
        workers=1,
        voices=voices,
        progress=False,
        sentences=text_manifest,
        real_share=0.5,
    )
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    real = [r for r in records if r["sentence_source"] == "goemotions"]
    assert 4 <= len(real) <= 20  # about half of 24
    assert len({r["goemotions_id"] for r in real}) == len(real)  # each voiced once
    sources = {
        json.loads(line)["id"]: json.loads(line) for line in text_manifest.read_text().splitlines()
    }
    for record in real:
        source = sources[record["goemotions_id"]]
        assert source["split"] in ("train", "dev")
        assert source["label"] == record["text_emotion"]  # the words carry the text emotion
        assert record["text"].startswith("This ") and record["text"].endswith(".")
        assert [w["word"] for w in record["words"]] == [
            w for w, _ in sentence_words(record["text"])
        ]
        starts = [w["start"] for w in record["words"]]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        samples, rate = sf.read(tmp_path / "corpus" / record["audio"])
        assert rate == SAMPLE_RATE
        assert record["words"][-1]["end"] <= len(samples) / rate + 1e-6
    settings = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    summary = settings["real_sentences"]
    assert summary["share"] == 0.5 and summary["skipped"] == {SKIPPED_LINK: 1}
    assert sum(summary["voiced"].values()) == len(real)


def test_examples_and_the_bank_show_templated_sentences_only_by_default(tmp_path):
    """A classroom reads the examples and the neighbours' texts: no unfiltered Reddit comment."""
    from train.bank import add_arguments
    from train.examples import choose
    from train.manifest import load_manifest

    records = []
    for number, (label, source) in enumerate(
        [("happy", "goemotions"), ("happy", "template"), ("sad", "goemotions")]
    ):
        records.append(
            {"id": f"u{number}", "audio": "x.wav", "text": f"sentence {number}", "label": label,
             "speaker": "s1", "group": "g1", "cue": "both", "duration": 1.0,
             "sentence_source": source}
        )  # fmt: skip
    sf.write(tmp_path / "x.wav", np.zeros(1600, dtype=np.float32), SAMPLE_RATE)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    chosen = choose(load_manifest(manifest), ["g1"], 4.0)
    assert [u.id for u in chosen] == ["u1"]
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = parser.parse_args(["--checkpoint", "c", "--manifest", "m", "--out", "o"])
    assert defaults.real_sentences == "drop"


def test_the_bank_leaves_out_voiced_comments_unless_asked(app_assets, tiny_corpus, tmp_path):
    from train.bank import embed

    records = [json.loads(line) for line in tiny_corpus.read_text().splitlines()]
    for record in records[::2]:
        record["sentence_source"] = "goemotions"
    for record in records:
        record["audio"] = str(tiny_corpus.parent / record["audio"])
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    checkpoint = app_assets / "checkpoints" / "compact"
    _, kept = embed(checkpoint, [manifest], 0, 8, False, real_sentences=False)
    assert [u.id for u in kept] == [r["id"] for r in records[1::2]]
    _, everything = embed(checkpoint, [manifest], 0, 8, False, real_sentences=True)
    assert len(everything) == len(records)
