"""`python -m train probe`: each Whisper layer's linear probe, scored on held-out groups."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from conftest import tone_corpus
from mgcma import whisper_backbone
from train.__main__ import main as train_main
from train.probe import held_out_sentence_ua, held_out_ua, label_by_rule, pooled_layers


def test_encode_layers_are_the_layers_encode_returns(backbones):
    encoder = whisper_backbone.load_whisper(backbones[0]).encoder
    mel = whisper_backbone.log_mel(torch.randn(8000) * 0.1, encoder.conv1.in_channels)[None]
    with torch.no_grad():
        every = whisper_backbone.encode_layers(encoder, mel)
        assert len(every) == len(encoder.blocks) + 2
        for layer in range(len(encoder.blocks) + 1):
            assert torch.equal(every[layer], whisper_backbone.encode(encoder, mel, layer))
        assert torch.equal(every[-1], whisper_backbone.encode(encoder, mel))


def test_probe_reads_a_tone_coded_label_and_not_a_coin_toss(backbones, tmp_path, capsys):
    manifest = tone_corpus(tmp_path, per_class=5)
    rng = np.random.default_rng(1)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    manifest.write_text(  # a field that no audio predicts
        "".join(json.dumps({**line, "coin": str(rng.integers(2))}) + "\n" for line in lines)
    )
    figures = tmp_path / "probe.json"
    common = ["probe", "--whisper", str(backbones[0]), "--manifest", str(manifest)]
    assert train_main([*common, "--json", str(figures)]) in (0, None)
    result = json.loads(figures.read_text())
    assert result["clips"] == 60 and list(result["layers"]) == ["0", "1", "2", "last", "all"]
    for row in result["layers"].values():
        assert len(row["per_group"]) == 3  # one held-out group at a time
        assert row["mean_ua"] == np.mean(row["per_group"])
    # four tones an octave apart: even a random encoder keeps them apart (chance: 0.25)
    assert max(row["mean_ua"] for row in result["layers"].values()) >= 0.9
    printed = capsys.readouterr().out
    assert "leave-one-group-out" in printed and "last" in printed

    assert train_main([*common, "--label-field", "coin", "--json", str(figures)]) in (0, None)
    coin = json.loads(figures.read_text())["layers"]
    assert max(row["mean_ua"] for row in coin.values()) < 0.8  # chance: 0.5


def test_the_rule_combines_the_heard_voice_with_the_true_words(backbones, tmp_path):
    voice = np.array(["neutral", "angry", "neutral", "sad"])
    words = np.array(["happy", "happy", "neutral", "happy"])
    assert list(label_by_rule(voice, words)) == ["happy", "angry", "neutral", "sad"]

    manifest = tone_corpus(tmp_path, per_class=5)
    rng = np.random.default_rng(2)
    lines = []
    for line in map(json.loads, manifest.read_text().splitlines()):
        said = line["label"]  # the tone: how the clip was said
        written = ["neutral", "happy", "angry", "sad"][rng.integers(4)]
        label = str(label_by_rule(np.array([said]), np.array([written]))[0])
        lines.append({**line, "label": label, "prosody_emotion": said, "text_emotion": written})
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    figures = tmp_path / "rule.json"
    common = ["probe", "--whisper", str(backbones[0]), "--manifest", str(manifest)]
    asked = ["--label-field", "prosody_emotion", "--with-words", "text_emotion"]
    assert train_main([*common, *asked, "--json", str(figures)]) in (0, None)
    result = json.loads(figures.read_text())
    rule = result["rule"]
    assert rule["voice_from"] in result["layers"] and rule["words_from"] == "text_emotion"
    # the tones are heard, the words are given: the label follows (it would not from the voice
    # alone, which says nothing of the words a neutral tone leaves the label to)
    assert rule["mean_ua"] >= 0.9
    assert rule["mean_ua"] == np.mean(rule["per_group"])
    voice_alone = result["layers"][rule["voice_from"]]["mean_ua"]
    assert voice_alone >= 0.9


def test_mean_and_std_pooling_keeps_the_mean_first(backbones):
    encoder = whisper_backbone.load_whisper(backbones[0]).encoder
    samples = (np.random.default_rng(0).standard_normal(8000) * 0.1).astype(np.float32)
    mean = pooled_layers(encoder, samples)
    both = pooled_layers(encoder, samples, "mean+std")
    width = mean.shape[1]
    assert both.shape == (mean.shape[0], 2 * width)
    assert np.allclose(both[:, :width], mean) and (both[:, width:] > 0).all()


def test_input_level_takes_the_recording_level_away_from_the_probe(backbones, tmp_path):
    """A field that only the recording level tells (the same tones 30 dB apart) is read from
    the clips as recorded, and not once every clip is scaled to one level first."""
    manifest = tone_corpus(tmp_path, per_class=5)
    rng = np.random.default_rng(3)
    lines = []
    for line in map(json.loads, manifest.read_text().splitlines()):
        loud = bool(rng.integers(2))
        path = tmp_path / line["audio"]
        wave, rate = sf.read(path, dtype="float32")
        sf.write(path, wave * (1.0 if loud else 10 ** (-30 / 20)), rate)
        lines.append({**line, "loudness": "loud" if loud else "quiet"})
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    figures = tmp_path / "level.json"
    common = ["probe", "--whisper", str(backbones[0]), "--manifest", str(manifest)]
    asked = [*common, "--label-field", "loudness", "--json", str(figures)]
    assert train_main(asked) in (0, None)
    recorded = json.loads(figures.read_text())
    assert recorded["input_level_dbfs"] is None
    assert max(row["mean_ua"] for row in recorded["layers"].values()) >= 0.9
    assert train_main([*asked, "--input-level-dbfs", "-25"]) in (0, None)
    levelled = json.loads(figures.read_text())
    assert levelled["input_level_dbfs"] == -25.0
    assert max(row["mean_ua"] for row in levelled["layers"].values()) < 0.8  # chance: 0.5


def test_the_voice_probe_scores_each_fold_held_out_and_weighs_the_other_corpus():
    """held_out_ua on made-up features: a direction that tells the classes apart is read
    perfectly on held-out folds; a second corpus that says the opposite, weighted in, costs the
    first corpus's folds, and weighted out (0) costs nothing."""
    rng = np.random.default_rng(0)
    folds = np.repeat(["g1", "g2", "g3", "g4"], 20)
    targets = np.tile(["sad", "happy"], 40)
    sign = np.where(targets == "happy", 1.0, -1.0)
    features = rng.normal(size=(80, 2, 6))  # (M, copies, D)
    features[:, :, 0] += 6 * sign[:, None]
    assert held_out_ua(features, targets, folds, 1.0) == [100.0] * 4
    other = features.copy()
    other[:, :, 0] *= -1  # the other corpus: the same direction means the opposite
    both = np.concatenate([features, other])
    is_first = np.arange(160) < 80
    weights = np.where(is_first, 1.0, 3.0)
    mixed = held_out_ua(
        both, np.concatenate([targets, targets]), np.tile(folds, 2), 1.0, weights, is_first
    )
    assert max(mixed) < 50.0  # outweighed 3:1, the first corpus is read backwards
    alone = held_out_ua(
        both, np.concatenate([targets, targets]), np.tile(folds, 2), 1.0,
        np.where(is_first, 1.0, 0.0), is_first,
    )  # fmt: skip
    assert alone == [100.0] * 4


def test_a_probe_that_reads_the_sentence_fails_on_a_new_sentence():
    """held_out_sentence_ua on made-up features where each sentence shows the class on its own
    direction: fitted on the same sentence the probe reads the held-out speakers perfectly,
    fitted on the other sentence it is at chance; a direction shared by both sentences is read
    either way."""
    rng = np.random.default_rng(0)
    folds = np.tile(np.repeat(["g1", "g2", "g3", "g4"], 20), 2)
    sentences = np.repeat(["Kids are talking", "Dogs are sitting"], 80)
    targets = np.tile(["sad", "happy"], 80)
    sign = np.where(targets == "happy", 1.0, -1.0)
    own = rng.normal(size=(160, 2, 6))  # (M, copies, D)
    own[:80, :, 0] += 6 * sign[:80, None]  # Kids: the class on direction 0
    own[80:, :, 1] += 6 * sign[80:, None]  # Dogs: on direction 1
    assert held_out_sentence_ua(own, targets, folds, sentences, 1.0, same=True) == [100.0] * 4
    assert max(held_out_sentence_ua(own, targets, folds, sentences, 1.0, same=False)) < 75.0
    shared = own.copy()
    shared[:, :, 2] += 6 * sign[:, None]  # a voice cue said the same in both sentences
    new = held_out_sentence_ua(shared, targets, folds, sentences, 1.0, same=False)
    assert new == [100.0] * 4
