"""Checkpoints: identical outputs after a round trip; bad checkpoints refused, never half-loaded."""

import ast
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mgcma.batch import pad_waveforms
from mgcma.checkpoint import CheckpointError, load_model, save_model

PACKAGE = Path(__file__).resolve().parents[1] / "mgcma"


def _outputs(model):
    torch.manual_seed(1)
    speech, speech_mask = pad_waveforms([torch.randn(9000).numpy() * 0.1])
    with torch.no_grad():
        return model(
            speech, speech_mask, **model.tokenize(["what a wonderful day"]), return_attention=True
        )


def test_save_then_load_gives_identical_outputs(tiny_model, tmp_path):
    directory = save_model(tiny_model, tmp_path / "ckpt")
    assert {p.name for p in directory.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    }
    loaded = load_model(directory)
    before, after = _outputs(tiny_model), _outputs(loaded)
    for name in ("logits", "fused", "speech_mu", "attention_text_to_speech"):
        assert torch.equal(getattr(before, name), getattr(after, name)), name
    assert (
        loaded.tokenizer("wonderful day")["input_ids"]
        == tiny_model.tokenizer("wonderful day")["input_ids"]
    )
    assert loaded.config == tiny_model.config


def test_fp16_storage_halves_the_file_and_computes_in_fp32(tiny_model, tmp_path):
    full = save_model(tiny_model, tmp_path / "fp32")
    half = save_model(tiny_model, tmp_path / "fp16", dtype=torch.float16)
    size = lambda d: (d / "model.safetensors").stat().st_size  # noqa: E731
    assert size(half) < 0.6 * size(full)
    loaded = load_model(half)
    assert next(loaded.parameters()).dtype == torch.float32
    assert torch.allclose(_outputs(loaded).logits, _outputs(tiny_model).logits, atol=2e-2)


def test_saving_over_a_checkpoint_is_atomic(tiny_model, tmp_path, monkeypatch):
    directory = save_model(tiny_model, tmp_path / "ckpt")
    before = (directory / "model.safetensors").read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("mgcma.checkpoint.save_file", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(tiny_model, directory)
    assert (directory / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no staging directory left behind
    load_model(directory)


@pytest.fixture
def saved(tiny_model, tmp_path):
    return save_model(tiny_model, tmp_path / "ckpt")


def test_missing_directory_and_files_are_refused(saved, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nowhere")
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_model(saved)


def test_missing_config_is_refused(saved):
    (saved / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(saved)


@pytest.mark.parametrize("cut", [0, 7, 100, -50])
def test_truncated_weights_are_refused(saved, cut):
    path = saved / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(saved)


def test_garbage_config_is_refused(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(saved)
    (saved / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="does not describe an MGCMA checkpoint"):
        load_model(saved)


def test_config_that_does_not_match_the_weights_is_refused(saved):
    path = saved / "config.json"
    document = json.loads(path.read_text())
    document["mgcma"]["alignment"]["gaussian_dim"] = 12
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match=r"wrong shape.*mu"):
        load_model(saved)
    document["mgcma"]["alignment"]["gaussian_dim"] = 8
    document["mgcma"]["alignment"]["token"] = False
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_model(saved)
    document["mgcma"]["alignment"]["dim"] = "wide"
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="must be an integer"):
        load_model(saved)


def test_missing_or_non_finite_tensors_are_refused(saved):
    path = saved / "model.safetensors"
    tensors = load_file(path)
    name = next(n for n in tensors if n.startswith("classifier"))
    original = tensors.pop(name)
    save_file(tensors, path)
    with pytest.raises(CheckpointError, match="missing"):
        load_model(saved)
    tensors[name] = torch.full_like(original, float("nan"))
    save_file(tensors, path)
    with pytest.raises(CheckpointError, match="NaN"):
        load_model(saved)


def test_hub_id_offline_without_cache_is_refused_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache"):
        load_model("someone/mgcma-compact")


def test_export_stores_half_precision_weights_that_predict_the_same(tiny_model, tmp_path, capsys):
    from train.__main__ import main

    source = save_model(tiny_model, tmp_path / "run-best")
    assert main(["export", "--checkpoint", str(source), "--out", str(tmp_path / "shipped")]) == 0
    assert "float16" in capsys.readouterr().out
    stored = load_file(tmp_path / "shipped" / "model.safetensors")
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}
    shipped = load_model(tmp_path / "shipped")
    assert next(shipped.parameters()).dtype == torch.float32  # computed in float32
    assert json.loads((tmp_path / "shipped" / "config.json").read_text())["weights_dtype"] == (
        "float16"
    )
    before, after = _outputs(tiny_model.eval()), _outputs(shipped.eval())
    assert torch.allclose(before.logits.softmax(-1), after.logits.softmax(-1), atol=2e-3)


def _imports(path: Path) -> set[str]:
    """The mgcma modules a file imports anywhere, function bodies included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mgcma"):
            if node.module == "mgcma":  # from mgcma import asr
                found |= {f"mgcma.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mgcma.")}
    return found


def test_persistence_points_one_way_and_the_package_has_no_import_circle():
    graph = {
        f"mgcma.{path.stem}": _imports(path)
        for path in PACKAGE.glob("*.py")
        if path.stem != "__init__"
    }
    for module in ("mgcma.model", "mgcma.encoders"):  # the model reads no file
        assert not graph[module] & {"mgcma.checkpoint", "mgcma.backbones"}, module
    assert "mgcma.model" in graph["mgcma.checkpoint"]

    def reaches(start: str, target: str, seen: set) -> bool:
        for name in graph.get(start, ()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    circles = [module for module in graph if reaches(module, module, set())]
    assert not circles, circles


def test_a_saved_checkpoint_and_bank_are_readable_as_the_umask_allows(tiny_model, tmp_path):
    """mkdtemp stages at 0700 and safetensors writes 0600: an app run by another user (a
    Space, a classroom server) must still read what the trainer wrote."""
    import os

    from mgcma.bank import ReferenceBank

    umask = os.umask(0o022)
    try:
        directory = save_model(tiny_model, tmp_path / "ckpt")
        assert directory.stat().st_mode & 0o777 == 0o755
        assert all(p.stat().st_mode & 0o777 == 0o644 for p in directory.iterdir())
        bank = ReferenceBank.load(Path(__file__).parents[1] / "assets" / "bank")
        bank.save(tmp_path / "bank")
        assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "bank").iterdir())
    finally:
        os.umask(umask)
