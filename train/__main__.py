"""``python -m train <command>``: one subcommand per module.

Each module in :data:`COMMANDS` provides ``add_arguments(parser)`` and ``main(args) -> int``; a
new subcommand is one more line there. A command whose ``main`` takes a second parameter,
``main(args, overrides) -> int``, receives the arguments the parser did not know (``--key=value``
config overrides, which that command checks itself); for every other command they are an error.
"""

import argparse
import importlib
import inspect
import sys

# command → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("train.synth", "generate the synthetic emotional-speech corpus with espeak-ng"),
    "iemocap": ("train.iemocap", "write a manifest from an IEMOCAP release (4 classes)"),
    "ravdess": ("train.ravdess", "write a manifest from RAVDESS speech clips (4 classes)"),
    "goemotions": ("train.goemotions", "write a text-only manifest from GoEmotions (4 classes)"),
    "fit": ("train.fit", "train MGCMA on one split (test group held out)"),
    "cv": ("train.cv", "leave-one-group-out cross-validation with WA/UA reports"),
    "ablate": ("train.ablate", "cross-validate full MGCMA and every ablation"),
    "bank": ("train.bank", "build the reference bank (embeddings, UMAP maps) for the app"),
    "examples": ("train.examples", "pick the app's example clips from a synthetic corpus"),
    "token-score": ("train.token_score", "share of each word's attention inside its spoken span"),
    "bench": ("train.bench", "training throughput and the encoders' share of step time"),
    "export": ("train.export", "write a run's checkpoint for shipping (float16 weights)"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command."""
    parser = argparse.ArgumentParser(prog="python -m train", description="MGCMA training commands.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = commands.add_parser(name, help=summary, description=summary)
        module.add_arguments(command)
        command.set_defaults(run=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns its exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if len(inspect.signature(args.run).parameters) >= 2:
        return args.run(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
