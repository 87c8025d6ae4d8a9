"""Config files and `--key=value` overrides: typed checks, one-line errors that name the key."""

from __future__ import annotations

import datetime

import pytest
import yaml

from conftest import ROOT
from mgcma.config import ConfigError, MGCMAConfig, set_dotted
from train.settings import Experiment, load_experiment

COMPACT = MGCMAConfig.preset("compact")

MESSAGES = {  # model override → the whole message a user reads
    "alignment.dim": ("wide", "config.alignment.dim must be an integer, got 'wide'"),
    "alignment.heads": (True, "config.alignment.heads must be an integer, got True"),
    "alignment.instance_dim": (64.0, "config.alignment.instance_dim must be an integer, got 64.0"),
    "alignment.token": (1, "config.alignment.token must be true or false, got 1"),
    "alignment.dropout": ("0.1", "config.alignment.dropout must be a number, got '0.1'"),
    "loss.label_smoothing": (False, "config.loss.label_smoothing must be a number, got False"),
    "speech.backbone": (3, "config.speech.backbone must be a string, got 3"),
    "speech.overrides": ([1], "config.speech.overrides must be a mapping, got [1]"),
    "speech.hf_config": ("x", "config.speech.hf_config must be a mapping, got 'x'"),
    "classifier": (3, "config.classifier must be a mapping, got 3"),
    "emotions": ("ab", "config.emotions must be a list of strings, got 'ab'"),
    "alignment.widht": (3, "unknown config key 'alignment.widht'"),
    "alignmnt.dim": (3, "unknown config key 'alignmnt.dim'"),
    "alignment.dim.x": (3, "unknown config key 'alignment.dim.x'"),
    "calibration.fused": (-1.0, "calibration.fused must be a positive number, got -1.0"),
}


@pytest.mark.parametrize("key", list(MESSAGES))
def test_a_bad_model_override_is_refused_in_one_line_naming_the_key(key):
    value, message = MESSAGES[key]
    with pytest.raises(ConfigError) as raised:
        COMPACT.override({key: value})
    assert str(raised.value) == message


def test_values_are_converted_only_where_nothing_is_lost():
    config = COMPACT.override(
        {"alignment.dropout": 0, "emotions": ["calm", "upset"], "speech.overrides.new_kwarg": 5}
    )
    assert config.alignment.dropout == 0.0 and isinstance(config.alignment.dropout, float)
    assert config.emotions == ("calm", "upset")  # a list from YAML is the tuple of the field
    assert config.speech.overrides["new_kwarg"] == 5  # transformers kwargs: any key may be added
    assert config.speech.overrides["hidden_size"] == COMPACT.speech.overrides["hidden_size"]
    assert COMPACT.alignment.dropout == 0.1  # override returns a copy
    with pytest.raises(ConfigError, match=r"^config\.emotions\.0 must be a string, got 1$"):
        COMPACT.override({"emotions": [1, 2]})


def test_from_dict_names_every_unknown_key_of_a_section_and_refuses_non_plain_values():
    data = COMPACT.to_dict()
    assert MGCMAConfig.from_dict(data) == COMPACT
    data["text"].update(colour=1, size=2)
    with pytest.raises(ConfigError, match=r"^unknown key\(s\) in config\.text: colour, size$"):
        MGCMAConfig.from_dict(data)
    with pytest.raises(ConfigError, match="^config must be a mapping, got None$"):
        MGCMAConfig.from_dict(None)
    with pytest.raises(ConfigError, match="is not a plain value"):
        MGCMAConfig.from_dict({"variant": datetime.date(2024, 1, 1)})


def test_set_dotted_refuses_unknown_keys_or_makes_the_sections():
    data = {"optim": {"epochs": 3}, "speech": {"overrides": {}}}
    set_dotted(data, "optim.epochs", 5)
    set_dotted(data, "speech.overrides.hidden_size", 8)
    assert data == {"optim": {"epochs": 5}, "speech": {"overrides": {"hidden_size": 8}}}
    for key in ("optim.epochz", "augment.enabled", "optim.epochs.x"):
        with pytest.raises(ConfigError, match=f"unknown config key '{key}'"):
            set_dotted(data, key, 1)
    set_dotted(data, "augment.enabled", False, known_only=False)
    assert data["augment"] == {"enabled": False}
    with pytest.raises(ConfigError, match="unknown config key 'optim.epochs.x'"):
        set_dotted(data, "optim.epochs.x", 1, known_only=False)  # a value is in the way


def _write(path, document: dict):
    path.write_text(yaml.safe_dump(document))
    return path


def test_an_experiment_merges_its_base_then_the_overrides(tmp_path):
    _write(
        tmp_path / "base.yaml",
        {"optim": {"epochs": 9, "batch_size": 4}, "model": {"classifier.hidden": 32}},
    )
    child = _write(
        tmp_path / "child.yaml",
        {"base": "base.yaml", "optim": {"epochs": 2}, "model": {"alignment.dim": 64}},
    )
    experiment = load_experiment(
        child, ["--optim.seed=5", "--augment.enabled=false", "--model.alignment.heads=2"]
    )
    assert (experiment.optim.epochs, experiment.optim.batch_size) == (2, 4)  # child, then base
    assert experiment.optim.seed == 5 and experiment.augment.enabled is False
    assert experiment.model == {"classifier.hidden": 32, "alignment.dim": 64, "alignment.heads": 2}
    config = experiment.model_config()
    assert (config.classifier.hidden, config.alignment.dim, config.alignment.heads) == (32, 64, 2)
    assert experiment.base_dir == str(tmp_path.resolve())
    _write(tmp_path / "base.yaml", {"base": "child.yaml"})
    with pytest.raises(ConfigError, match="include each other"):
        load_experiment(child)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"optim": {"epochz": 3}}, r"^unknown key\(s\) in bad\.yaml\.optim: epochz$"),
        ({"optim": {"epochs": "3"}}, r"^bad\.yaml\.optim\.epochs must be an integer, got '3'$"),
        ({"data": 3}, r"^bad\.yaml\.data must be a mapping, got 3$"),
        ({"model": {"alignment.dimm": 3}}, r"^unknown config key 'alignment\.dimm'$"),
        ({"optim": {"select_on": "loss"}}, "optim.select_on must be one of ua, wa, f1"),
    ],
)
def test_a_bad_experiment_file_is_refused_naming_the_key(tmp_path, document, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(_write(tmp_path / "bad.yaml", document))


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "train" / "configs").glob("*")))
def test_every_shipped_experiment_loads_and_its_saved_copy_loads_back_equal(name, tmp_path):
    experiment = load_experiment(ROOT / "train" / "configs" / name)
    assert isinstance(experiment, Experiment)
    experiment.model_config()
    saved = tmp_path / "experiment.yaml"
    experiment.save(saved)  # what `fit` writes next to every run
    assert "!!" not in saved.read_text()  # plain YAML values, no Python tags
    assert load_experiment(saved) == experiment


def test_override_values_are_read_as_yaml():
    config = ROOT / "train" / "configs" / "compact.yaml"
    experiment = load_experiment(config, ["--optim.lr_new=1.0e-3", "--data.test_group=g2"])
    assert experiment.optim.lr_new == 0.001 and experiment.data.test_group == "g2"
    # PyYAML's YAML 1.1 alone would read 1e-3 (no dot) as the string '1e-3'
    for text, value in (("1e-3", 0.001), ("2E+2", 200.0), ("-5e-1", -0.5)):
        assert load_experiment(config, [f"--optim.lr_new={text}"]).optim.lr_new == value
    with pytest.raises(ConfigError, match=r"optim\.lr_new must be a number, got 'fast'"):
        load_experiment(config, ["--optim.lr_new=fast"])
    assert load_experiment(config, ["--data.test_group=g1e3"]).data.test_group == "g1e3"


def test_scientific_notation_without_a_dot_reads_as_a_number_in_yaml_files(tmp_path):
    config = tmp_path / "lr.yaml"
    config.write_text(
        f"base: {ROOT / 'train' / 'configs' / 'compact.yaml'}\noptim:\n  lr_new: 3e-4\n"
    )
    assert load_experiment(config).optim.lr_new == 0.0003
