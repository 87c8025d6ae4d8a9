"""The reference bank: one search per embedding, what depends on the bank alone computed once at
load, and principal axes fitted with scikit-learn in the format the shipped bank stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mgcma.analysis import Analysis
from mgcma.bank import ReferenceBank
from train.bank import principal_axes

SHIPPED_BANK = Path(__file__).resolve().parents[1] / "assets" / "bank"


@pytest.fixture(scope="module")
def bank() -> ReferenceBank:
    return ReferenceBank.load(SHIPPED_BANK)


def _analysis(bank: ReferenceBank, row: int) -> Analysis:
    """An utterance near bank row `row` (its embeddings, 0.1 % noise added)."""
    rng = np.random.default_rng(row)

    def near(kind):
        vector = bank.arrays[kind][row]
        noise = rng.standard_normal(vector.shape) / np.sqrt(vector.size)  # norm about 1
        return vector + 1e-3 * np.linalg.norm(vector) * noise

    return Analysis(
        label="happy",
        probs={"happy": 1.0},
        transcript="",
        duration=1.0,
        frame_times=np.zeros(0, np.float32),
        fused_embedding=near("fused"),
        speech_embedding=near("speech"),
        text_embedding=near("text"),
        w2_distance=float(bank.arrays["w2_distance"][row]),
    )


def test_principal_axes_are_the_shipped_banks_up_to_sign(bank):
    fitted = principal_axes(bank.arrays)
    assert fitted["pca_axes"].shape == bank.arrays["pca_axes"].shape == (2, 32)
    np.testing.assert_allclose(fitted["pca_axes"] @ fitted["pca_axes"].T, np.eye(2), atol=1e-5)
    np.testing.assert_allclose(fitted["pca_center"], bank.arrays["pca_center"], atol=1e-3)
    alignment = np.abs(np.sum(fitted["pca_axes"] * bank.arrays["pca_axes"], axis=1))  # |cos|
    np.testing.assert_allclose(alignment, [1.0, 1.0], atol=1e-3)


def test_annotate_searches_once_per_embedding_and_agrees_with_each_query(bank, monkeypatch):
    analysis = _analysis(bank, 17)
    kinds = []
    search = bank.search
    monkeypatch.setattr(
        bank, "search", lambda e, kind, k=8: kinds.append(kind) or search(e, kind, k)
    )
    bank.annotate(analysis)
    assert sorted(kinds) == ["fused", "speech", "text"]  # once each, nothing searched again
    monkeypatch.undo()
    assert analysis.neighbours == bank.nearest(analysis.fused_embedding, "fused", 8)
    assert analysis.speech_neighbours == bank.nearest(analysis.speech_embedding, "speech", 8)
    assert analysis.neighbours[0]["index"] == analysis.speech_neighbours[0]["index"] == 17
    for kind in ("speech", "text", "fused"):
        embedding = getattr(analysis, f"{kind}_embedding")
        assert analysis.map_position[kind] == pytest.approx(list(bank.place(embedding, kind)))
    # the position is the neighbours' weighted mean: near the bank point the clip is close to
    xy = bank.arrays["fused_xy"]
    extent = np.linalg.norm(xy.max(0) - xy.min(0))
    assert np.linalg.norm(np.array(analysis.map_position["fused"]) - xy[17]) < 0.2 * extent
    assert 0 <= analysis.percentiles["w2_distance"] <= 100


def test_what_depends_on_the_bank_alone_is_computed_once(bank):
    projected = bank.projected_means()
    assert bank.projected_means() is projected  # not recomputed per request
    axes, center = bank.arrays["pca_axes"], bank.arrays["pca_center"]
    for modality in ("speech", "text"):
        expected = (bank.arrays[f"{modality}_mu"] - center) @ axes.T
        np.testing.assert_allclose(projected[modality], expected, rtol=1e-6)
        assert projected[modality].shape == (len(bank), 2)
