"""`python -m train probe`: each Whisper layer's linear probe, scored on held-out groups."""

from __future__ import annotations

import json

import numpy as np
import torch

from conftest import tone_corpus
from mgcma import whisper_backbone
from train.__main__ import main as train_main


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
    assert result["clips"] == 60 and list(result["layers"]) == ["0", "1", "2", "last"]
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
