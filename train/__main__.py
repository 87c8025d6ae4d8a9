"""``python -m train <command>``: one subcommand per module.

Each module in :data:`COMMANDS` provides ``add_arguments(parser)`` and ``main(args) -> int``; a
new subcommand is one more line there. A command whose ``main`` takes a second parameter,
``main(args, overrides) -> int``, receives the arguments the parser did not know (``--key=value``
config overrides, which that command checks itself); for every other command they are an error.

A problem the user can fix (a missing file, a bad override, a damaged manifest) arrives as one
line, ``error: <the problem>; <what to do>``, with exit code 2, never as a traceback: the
commands raise typed errors (:data:`USER_ERRORS`) and this layer words them.
"""

import argparse
import importlib
import inspect
import sys

from mgcma.audio import AudioError
from mgcma.bank import BankError
from mgcma.checkpoint import CheckpointError
from mgcma.config import ConfigError
from train.espeak import EspeakUnavailableError
from train.goemotions import GoEmotionsError
from train.iemocap import IemocapError
from train.manifest import ManifestError
from train.ravdess import RavdessError

# command → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("train.synth", "generate the synthetic emotional-speech corpus with espeak-ng"),
    "iemocap": ("train.iemocap", "write a manifest from an IEMOCAP release (4 classes)"),
    "ravdess": ("train.ravdess", "write a manifest from RAVDESS speech clips (4 classes)"),
    "goemotions": ("train.goemotions", "write a text-only manifest from GoEmotions (4 classes)"),
    "fit": ("train.fit", "train MGCMA on one split (test group held out)"),
    "cv": ("train.cv", "leave-one-group-out cross-validation with WA/UA reports"),
    "ablate": ("train.ablate", "cross-validate full MGCMA and every ablation"),
    "compare": ("train.compare", "two cross-validations side by side, fold by fold (paired)"),
    "bank": ("train.bank", "build the reference bank (embeddings, UMAP maps) for the app"),
    "examples": ("train.examples", "pick the app's example clips from a synthetic corpus"),
    "token-score": ("train.token_score", "share of each word's attention inside its spoken span"),
    "probe": ("train.probe", "linear probe of each Whisper layer, leave-one-group-out"),
    "export": ("train.export", "write a run's checkpoint for shipping (float16 weights)"),
    "heldout": ("train.heldout", "copy a fold's test clips and their manifest (for the tests)"),
}
USER_ERRORS = (
    ConfigError,
    ManifestError,
    CheckpointError,
    BankError,
    AudioError,
    IemocapError,
    RavdessError,
    GoEmotionsError,
    EspeakUnavailableError,
    FileNotFoundError,
)
OVERRIDES_HELP = (
    "Any value of the experiment can be overridden after the YAML with --key=value, dotted as in "
    "the file and type-checked: --optim.epochs=3 --data.manifest=corpus/manifest.jsonl "
    "--model.alignment.dim=64 (the sections are data, augment, optim and model; their keys are "
    "the fields in train/settings.py, and model.* those of mgcma/config.py)."
)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line naming the problem and where help is."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; `{self.prog} --help` lists the arguments\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command."""
    parser = OneLineParser(prog="python -m train", description="MGCMA training commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(module_name)
        takes_overrides = len(inspect.signature(module.main).parameters) >= 2
        command = commands.add_parser(
            name,
            help=summary,
            description=summary + (" [--key=value ...]" if takes_overrides else ""),
            epilog=OVERRIDES_HELP if takes_overrides else None,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.main)
    return parser


def fix_for(error: BaseException, command: str) -> str:
    """What to do about a typed error, in a few words."""
    message = str(error)
    if isinstance(error, ConfigError):
        if message.startswith("cannot read experiment"):
            return "pass an experiment YAML that exists, e.g. train/configs/whisper_minilm.yaml"
        if "must look like" in message:
            return "write an override as --key=value, e.g. --optim.epochs=3"
        if "unknown" in message:
            return f"check the key's spelling (`python -m train {command} --help` says where)"
        if "must" in message:
            return "give it a value of that type, e.g. --optim.epochs=3"
        return "fix the experiment file or the --key=value override it names"
    if isinstance(error, ManifestError):
        if "not found" in message:
            return (
                "write it first (python -m train synth --out corpus, or ravdess / iemocap / "
                "goemotions) or point the experiment at it: --data.manifest=PATH"
            )
        return "fix the manifest line it names (one JSON object per line)"
    if isinstance(error, CheckpointError):
        return "pass a checkpoint directory written by `python -m train fit` (RUN/best)"
    if isinstance(error, FileNotFoundError):
        return "check the path"
    return f"see `python -m train {command} --help`"


def describe(error: BaseException, command: str) -> str:
    """The one line printed for a typed error."""
    if isinstance(error, FileNotFoundError) and error.filename:
        problem = f"{error.strerror or 'not found'}: {error.filename}"
    else:
        problem = str(error) or type(error).__name__
    problem = " ".join(problem.split())  # one line, whatever the message held
    return f"error: {problem.rstrip('.')}; {fix_for(error, command)}"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns its exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    takes_overrides = len(inspect.signature(args.run).parameters) >= 2
    if extra and not takes_overrides:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args, extra) if takes_overrides else args.run(args)
    except USER_ERRORS as error:
        print(describe(error, args.command), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
