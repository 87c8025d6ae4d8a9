"""Cold start: how long a fresh process takes to load a checkpoint and analyse its first clip.

    python benchmarks/cold_start.py [--checkpoint assets/checkpoints/whisper_minilm]
                                    [--bank assets/bank]
                                    [--clip assets/examples/01-neutral-both.wav] [--runs 5]

Each run is a new Python process (nothing cached in memory but the OS's file cache), which times
(1) `import mgcma` and its dependencies (torch, transformers), (2) `load_model` + the reference
bank, (3) the first `Analyzer.analyze()`; the figure to compare with the 5-s target is (2) + (3).
Prints medians over the runs; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import ASSETS, DEFAULT_CHECKPOINT, ROOT, command_line, machine, read_examples

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import mgcma
from mgcma.analysis import Analyzer
from mgcma.audio import load_audio
from mgcma.bank import ReferenceBank
t1 = time.perf_counter()
checkpoint, bank, clip, text = sys.argv[1:5]
model = mgcma.load_model(checkpoint)
reference = ReferenceBank.load(bank) if bank else None
t2 = time.perf_counter()
analysis = Analyzer(model, reference).analyze(load_audio(clip), text=text)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "first": t3 - t2, "label": analysis.label}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--bank", default=str(ASSETS / "bank"), help="'' for none")
    parser.add_argument("--clip", default=str(ASSETS / "examples" / "01-neutral-both.wav"))
    parser.add_argument("--text", default="", help="default: the clip's examples.jsonl entry")
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.text = args.text or _example_text(Path(args.clip))
    runs = []
    for _ in range(args.runs):
        command = [sys.executable, "-c", CHILD, args.checkpoint, args.bank, args.clip, args.text]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            return done.returncode
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = {key: statistics.median(r[key] for r in runs) for key in ("import", "load", "first")}
    print(f"command: {command_line(__file__, argv)}")
    print(f"machine: {machine()}")
    print(f"checkpoint: {args.checkpoint}; bank: {args.bank or 'none'}; clip: {args.clip}")
    print(f"median of {args.runs} fresh processes:")
    print(f"  import mgcma (torch, transformers)   {median['import']:.2f} s")
    print(f"  load checkpoint + bank               {median['load']:.2f} s")
    print(f"  first analysis                       {median['first']:.2f} s")
    print(f"  load + first analysis                {median['load'] + median['first']:.2f} s")
    return 0


def _example_text(clip: Path) -> str:
    rows = read_examples(clip.parent)
    return next(row["text"] for row in rows if Path(row["audio"]).name == clip.name)


if __name__ == "__main__":
    sys.exit(main())
