"""What several benchmarks share: the machine line, timing, example clips, random models."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
DEFAULT_CHECKPOINT = ASSETS / "checkpoints" / "whisper_minilm"  # the app's default
CLIP_SECONDS = 5.0  # a typical classroom sentence
GAP_SECONDS = 0.25  # silence between joined examples
ESPEAK_SENTENCE = (
    "I waited for you at the station all afternoon, and nobody told me the train was cancelled."
)


def machine() -> str:
    """Cores this process may use, the CPU model and the OS, in one line."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({model}), {platform.system()} {platform.release()}"


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that ran `script` (a file of benchmarks/), to print beside its figures."""
    arguments = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", f"benchmarks/{Path(script).name}", *arguments])


def timed(function: Callable[[], object], runs: int) -> list[float]:
    """Seconds of each of `runs` calls of `function`."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def add_asset_arguments(parser, checkpoint: Path = DEFAULT_CHECKPOINT) -> None:
    """--checkpoint, --bank and --examples, defaulting to the shipped assets."""
    parser.add_argument("--checkpoint", default=str(checkpoint))
    parser.add_argument("--bank", default=os.environ.get("MGCMA_BANK", str(ASSETS / "bank")))
    parser.add_argument(
        "--examples", default=os.environ.get("MGCMA_EXAMPLES", str(ASSETS / "examples"))
    )


def read_examples(directory: Path) -> list[dict]:
    """The rows of `directory/examples.jsonl`, each "audio" made a full path ([] without one)."""
    index = Path(directory) / "examples.jsonl"
    if not index.is_file():
        return []
    rows = [json.loads(line) for line in index.read_text().splitlines() if line.strip()]
    for row in rows:
        row["audio"] = str(Path(directory) / row["audio"])
    return rows


def make_clip(examples: list[dict], folder: Path) -> tuple[Path, str]:
    """A ≥ 5-s clip and its transcript: examples joined with short gaps, else espeak-ng."""
    import soundfile as sf

    pieces, words, rate, seconds = [], [], None, 0.0
    for row in sorted(examples, key=lambda r: sf.info(r["audio"]).duration):  # short first: ≈ 5 s
        samples, sample_rate = sf.read(row["audio"], dtype="float32", always_2d=True)
        if rate not in (None, sample_rate):
            continue
        rate = sample_rate
        pieces += [samples.mean(axis=1), np.zeros(int(GAP_SECONDS * rate), dtype=np.float32)]
        words.append(row["text"])
        seconds += len(samples) / rate + GAP_SECONDS
        if seconds >= CLIP_SECONDS:
            path = folder / "bench-clip.wav"
            sf.write(path, np.concatenate(pieces[:-1]), rate)
            return path, " ".join(words)
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("no examples of 5 s in total and no espeak-ng to synthesise a clip")
    path = folder / "bench-clip.wav"
    subprocess.run([espeak, "-s", "140", "-w", str(path), ESPEAK_SENTENCE], check=True)
    return path, ESPEAK_SENTENCE


def random_model(preset: str, tokenizer):
    """A preset's architecture with random weights: speed does not depend on them, and the
    paper preset's wav2vec2-base + BERT-base shapes come from transformers' defaults, with no
    download."""
    from mgcma.config import MGCMAConfig
    from mgcma.model import MGCMA

    config = MGCMAConfig.preset(preset)
    if preset == "paper":
        config.speech.from_scratch = config.text.from_scratch = True
        config.text.overrides = {"vocab_size": 30522}
    return MGCMA(config, tokenizer)


# -- the served app's process family ---------------------------------------------------------


def _family_total(pid: int, measure) -> float:
    """Sum of `measure(process)` over a process and all its children (0 once it has gone)."""
    import psutil

    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in family:
        try:
            total += measure(member)
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (0 once it has gone)."""
    return float(_family_total(pid, lambda p: sum(p.cpu_times()[:2])))


def server_rss(pid: int) -> int:
    """Resident bytes of a process and all its children (0 once it has gone)."""
    return int(_family_total(pid, lambda p: p.memory_info().rss))
