"""What ships in assets/: the default model, its backbones and the app around them, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ROOT
from mgcma import whisper_backbone
from mgcma.checkpoint import load_model
from mgcma.config import VARIANTS

ASSETS = ROOT / "assets"
CHECKPOINTS = ASSETS / "checkpoints"
MAX_ASSET_BYTES = 150_000_000


def test_assets_stay_under_150_mb():
    total = sum(path.stat().st_size for path in ASSETS.rglob("*") if path.is_file())
    assert total <= MAX_ASSET_BYTES, f"assets/ holds {total / 1e6:.1f} MB"


@pytest.mark.parametrize("variant", [v if v != "full" else "whisper_minilm" for v in VARIANTS])
def test_every_shipped_checkpoint_shares_the_one_copy_of_each_backbone(variant):
    document = json.loads((CHECKPOINTS / variant / "config.json").read_text())["mgcma"]
    for side, folder in (("speech", "whisper-tiny.en.pt"), ("text", "all-MiniLM-L6-v2")):
        if document["modalities"] not in ("both", side):
            continue
        encoder = document[side]
        assert encoder["backbone"] == f"../../backbones/{folder}"
        assert encoder["trainable_layers"] == 0
        assert encoder["weights_sha256"] == whisper_backbone.file_sha256(
            ASSETS / "backbones" / folder
        )
    size = (CHECKPOINTS / variant / "model.safetensors").stat().st_size
    assert size < 5_000_000  # the layers that trained, not the backbones


def test_the_shipped_checkpoints_are_licensed_as_their_training_data():
    card = (CHECKPOINTS / "README.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "RAVDESS" in card
    licences = (ASSETS / "README.md").read_text()
    for name in ("whisper-tiny.en.pt", "all-MiniLM-L6-v2", "checkpoints", "bank", "examples"):
        assert name in licences
    real = [
        json.loads(line)
        for line in (ASSETS / "examples" / "examples.jsonl").read_text().splitlines()
        if '"cue": "real"' in line
    ]
    assert len(real) == 4 and all(row["licence"] == "CC BY-NC-SA 4.0" for row in real)
    assert {row["label"] for row in real} == {"neutral", "happy", "angry", "sad"}


@pytest.fixture(scope="module")
def shipped_explorer():
    from demo.service import Explorer
    from demo.settings import Settings

    return Explorer(Settings())  # the defaults: everything from assets/, nothing downloaded


def test_the_app_transcribes_offline_with_the_whisper_that_is_the_models_ear(shipped_explorer):
    example = next(e for e in shipped_explorer.examples if e.name.endswith("-angry-real"))
    analysis, _ = shipped_explorer.analyze(example.audio, "")
    words = [w.strip(".,!").lower() for w in analysis.transcript.split()]
    assert words[-2:] == ["the", "door"], analysis.transcript  # "Kids are talking by the door"
    assert any("Transcribed with Whisper" in note for note in analysis.notes)
    assert analysis.word_times and all(span is not None for span in analysis.word_times)
    transcriber = next(iter(shipped_explorer.transcription._transcribers.values()))
    assert transcriber._model.encoder is shipped_explorer.model.speech_encoder.backbone
    assert Path(transcriber.name).resolve() == (ASSETS / "backbones" / "whisper-tiny.en.pt")


def test_words_whisper_is_unsure_of_are_shown_in_a_note_and_not_read(shipped_explorer, tmp_path):
    """German speech through the English-only tiny.en comes out as English words nobody said
    ("the weapon leaked of the nice gun."); their low word probabilities keep them from the
    model, which then hears the voice alone. A real English sentence is read as ever."""
    import subprocess

    from conftest import require_tool
    from mgcma.audio import load_audio

    wav = tmp_path / "de.wav"
    german = "Morgen fahren wir mit dem Zug nach Berlin."
    subprocess.run([require_tool("espeak-ng"), "-v", "de", "-w", str(wav), german], check=True)
    clip = load_audio(wav)
    analysis, _ = shipped_explorer.analyze(wav, "")
    assert analysis.transcript == "" and analysis.words == []
    note = next(n for n in analysis.notes if "was unsure of its words" in n)
    heard = note.split("“")[1].split("”")[0]
    assert heard and heard.lower() != german.lower()  # it did write words, English ones
    voice_alone = shipped_explorer.analyzer.analyze(clip, text="")
    assert analysis.probs == pytest.approx(voice_alone.probs, abs=1e-4)
    read = shipped_explorer.analyzer.analyze(clip, text=heard)
    assert read.probs != pytest.approx(voice_alone.probs, abs=1e-3)  # reading them would matter

    example = next(e for e in shipped_explorer.examples if e.name.endswith("-happy-real"))
    transcriber = shipped_explorer.transcription._transcribers[
        shipped_explorer.transcription.default
    ]
    transcript = transcriber.transcribe(load_audio(example.audio).samples)
    assert not transcript.unsure and transcript.confidence > 0.8, transcript
    analysis, _ = shipped_explorer.analyze(example.audio, "")
    assert analysis.transcript == transcript.text and analysis.words


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_shipped_checkpoint_hears_its_unheard_actors_as_the_model_card_says(variant):
    """All 112 clips of RAVDESS actors 01, 02, 11 and 12 (fold g1's test speakers, whom the
    shipped checkpoints never heard), through the app's analyzer, transcript given: the UA the
    ablation measured on them in training, up to what float16 weights may flip (two clips)."""
    from sklearn.metrics import balanced_accuracy_score

    from mgcma.analysis import Analyzer
    from mgcma.audio import load_audio
    from train.manifest import load_manifest

    clips = load_manifest(ASSETS / "heldout" / "manifest.jsonl")
    assert len(clips) == 112 and {c.speaker for c in clips} == {
        f"ravdess-actor-{n}" for n in ("01", "02", "11", "12")
    }
    folder = "whisper_minilm" if variant == "full" else variant
    analyzer = Analyzer(load_model(CHECKPOINTS / folder), device="cpu")
    predicted = [analyzer.analyze(load_audio(c.audio), text=c.text).label for c in clips]
    ua = balanced_accuracy_score([c.label for c in clips], predicted)
    figures = json.loads((CHECKPOINTS / "ablation.json").read_text())[variant]["folds"]["g1"]
    measured = figures["by_corpus"]["ravdess"]["ua"]
    assert abs(ua - measured) <= 0.02, (variant, ua, measured)
    if variant != "text_only":  # the words are the same for every emotion: chance, rightly
        assert ua > 0.5, (variant, ua)


def test_an_empty_or_nonsense_transcript_over_a_neutral_clip_is_no_confident_emotion(
    shipped_explorer,
):
    from mgcma.audio import load_audio

    example = next(e for e in shipped_explorer.examples if e.name.endswith("-neutral-real"))
    clip = load_audio(example.audio)
    for text in ("", "zxq blorp fnarg", "blorp blorp blorp blorp"):
        analysis = shipped_explorer.analyzer.analyze(clip, text=text)
        # the words' head is unsure, or sure the words carry no emotion (trained with
        # loss.modality_targets, a dropped transcript teaches it "neutral")
        top = max(analysis.text_probs, key=analysis.text_probs.get)
        assert top == "neutral" or analysis.text_probs[top] < 0.5, (text, analysis.text_probs)
        for probs in (analysis.text_probs, analysis.probs):  # the text head, and the fused
            emotional = {e: p for e, p in probs.items() if e != "neutral"}
            assert max(emotional.values()) < 0.5, (text, probs)  # no sure emotion
        assert analysis.notes  # and the analysis says why


def test_the_shipped_checkpoints_are_calibrated_on_validation_and_unheard_human_voices():
    for variant in VARIANTS:
        folder = "whisper_minilm" if variant == "full" else variant
        model = load_model(CHECKPOINTS / folder)
        calibration = model.config.calibration
        assert calibration.fitted_on.startswith("validation split"), variant
        assert calibration.fused != 1.0, variant
        if model.voice_gate is None:  # text only: no voice to hear
            assert calibration.fused_human is None, variant
            continue
        # fold g1's checkpoints: fitted on the other folds' unheard actors, never on g1's
        assert "folds g2, g3, g4, g5" in calibration.fitted_on_human, variant
        assert calibration.fused_human > calibration.fused, variant  # heard voices: too sure


def test_the_shipped_default_is_calibrated_on_actors_it_never_heard():
    """assets/heldout: fold g1's 112 RAVDESS clips, whose actors neither the shipped model nor
    its human temperature (fitted on folds g2-g5) met. Validation's T, fitted on voices heard in
    training, leaves it more sure than right; T_human brings the two together."""
    from scipy.special import softmax

    from train.calibrate import expected_calibration_error
    from train.evaluate import evaluate
    from train.manifest import load_manifest
    from train.unheard import clip_temperatures

    model = load_model(CHECKPOINTS / "whisper_minilm")
    clips = load_manifest(ROOT / "assets" / "heldout" / "manifest.jsonl")
    scores = evaluate(model, clips, with_logits=True, max_seconds=8.0)
    logits, labels, gate = scores["logits"]["fused"], scores["labels"], scores["gate_logits"]
    assert (gate < 0).all()  # every actor heard as a human voice
    calibration = model.config.calibration
    figures = {}
    for name, human in (("validation", None), ("unheard", calibration.fused_human)):
        probs = softmax(logits / clip_temperatures(gate, calibration.fused, human), axis=1)
        accuracy = float((probs.argmax(1) == labels).mean())
        figures[name] = (expected_calibration_error(probs, labels), probs.max(1).mean() - accuracy)
    # measured: ECE 0.094 → 0.044; mean top probability 0.869 → 0.752, accuracy 0.786
    assert figures["unheard"][0] < 0.07 < figures["validation"][0]
    assert abs(figures["unheard"][1]) < 0.05 < figures["validation"][1]


def test_loading_the_shipped_default_checks_its_backbones():
    model = load_model(CHECKPOINTS / "whisper_minilm")
    assert model.config.speech.model_type == "whisper" and model.speech_encoder.frozen
    assert model.text_encoder.frozen and len(model.tokenizer) == 30522


def test_the_shipped_default_hears_a_speaker_who_waits_before_and_after_speaking():
    """assets/heldout's unheard actors with 1.5 s of quiet room tone before and after each clip,
    as someone who presses record, waits, speaks and waits: with the pauses cut to 1 s
    (speech.max_pause_seconds) the model says what it says of the clip as recorded; reading the
    whole padded clip it changed its mind far more often (measured on the 40 clips: agreement
    0.95 with the cut, 0.72 without)."""
    import numpy as np

    from mgcma import Analyzer
    from mgcma.audio import load_audio
    from train.manifest import load_manifest

    model = load_model(CHECKPOINTS / "whisper_minilm")
    assert model.config.speech.max_pause_seconds == 1.0
    clips = load_manifest(ROOT / "assets" / "heldout" / "manifest.jsonl")[::2][:40]
    rng = np.random.default_rng(0)
    items, padded = [], []
    for clip in clips:
        samples = load_audio(clip.audio).samples
        tone = rng.standard_normal(int(1.5 * 16000)).astype(np.float32)
        tone *= float(np.sqrt(np.mean(samples**2) / 1e5))  # 50 dB below the clip
        items.append((samples, 16000, clip.text))
        padded.append((np.concatenate([tone, samples, tone[::-1]]), 16000, clip.text))
    analyzer = Analyzer(model, device="cpu")
    said = [a.label for a in analyzer.analyze_many(items)]
    agree = {}
    for keep in (1.0, None):
        model.config.speech.max_pause_seconds = keep
        waited = [a.label for a in analyzer.analyze_many(padded)]
        agree[keep] = np.mean([a == b for a, b in zip(said, waited, strict=True)])
    assert agree[1.0] >= 0.85 and agree[None] <= agree[1.0] - 0.1, agree
