"""The training CLI's errors: one line that names the problem and the fix, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from train.__main__ import main

CONFIG = str(ROOT / "train" / "configs" / "compact.yaml")

CASES = {  # name → (argv, words the one line must hold: the problem, then the fix)
    "missing manifest": (
        ["fit", CONFIG, "--data.manifest=/nowhere/manifest.jsonl"],
        ["manifest not found", "/nowhere/manifest.jsonl", "python -m train synth"],
    ),
    "unknown key": (
        ["fit", CONFIG, "--optim.epochz=3"],
        ["unknown key", "epochz", "spelling"],
    ),
    "unknown model key": (
        ["cv", CONFIG, "--model.alignment.dimm=3"],
        ["unknown config key", "alignment.dimm", "spelling"],
    ),
    "wrong type": (
        ["fit", CONFIG, "--optim.epochs=three"],
        ["optim.epochs must be an integer", "'three'", "--optim.epochs=3"],
    ),
    "override without a value": (
        ["fit", CONFIG, "--optim.epochs"],
        ["must look like --key=value", "write an override as --key=value"],
    ),
    "missing config file": (
        ["fit", "/nowhere/experiment.yaml"],
        ["cannot read experiment", "/nowhere/experiment.yaml", "train/configs/"],
    ),
    "missing checkpoint": (
        ["bank", "--checkpoint", "/nowhere/run", "--manifest", "m.jsonl", "--out", "x"],
        ["checkpoint directory", "/nowhere/run", "RUN/best"],
    ),
    "missing argument": (["fit"], ["required: config", "python -m train fit --help"]),
}


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("error: ") and "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize("name", list(CASES))
def test_every_cli_error_is_one_line_with_the_fix(name, capsys):
    argv, words = CASES[name]
    try:
        code = main(argv)
    except SystemExit as raised:  # argparse's own errors exit
        code = raised.code
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    line = _one_line(captured.err)
    for word in words:
        assert word in line, line
    problem, _, fix = line.partition("; ")
    assert problem and fix, line  # the problem, then what to do


def test_the_real_entry_point_prints_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "train", "fit", CONFIG, "--data.manifest=/nowhere/m.jsonl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "manifest not found" in _one_line(result.stderr)


@pytest.mark.parametrize("command", ["fit", "cv", "ablate"])
def test_help_of_commands_with_overrides_explains_them(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--key=value" in text and "--optim.epochs=3" in text and "type-checked" in text


def test_help_of_commands_without_overrides_does_not_offer_them(capsys):
    with pytest.raises(SystemExit):
        main(["bank", "--help"])
    assert "--key=value" not in capsys.readouterr().out
