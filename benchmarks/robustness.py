"""How the model hears unheard actors through a microphone, a room, noise and a telephone line.

    python benchmarks/robustness.py [--checkpoint assets/checkpoints/whisper_minilm ...] \
        [--manifest assets/heldout/manifest.jsonl] [--group G] [--text truth|whisper|none]

RAVDESS was recorded in a studio, close to the microphone; a person at a laptop in a classroom
is not. This plays each clip of a manifest (by default `assets/heldout`: fold g1's 112 RAVDESS
clips of actors the shipped model never heard) through each condition below, runs every
checkpoint named on the clip, and prints per condition the fused UA, the speech-only head's UA
and the mean top-class probability (how sure the model says it is):

- `clean`; `browser` (48 kHz int16, as Gradio's microphone gives it, decoded by the app's
  `mgcma.load_audio`); `mp3 32k` (ffmpeg, when installed);
- `gain −20/−10/+10 dB` and `peak −1 dBFS` (a microphone's gain: RAVDESS's clips are quiet,
  their loudest sample at −18.5 dBFS in the median; the synthetic corpus's at −1.5);
- `pink 20/10/5 dB` (1/f noise, like a fan or a room's hum); `babble 10 dB` (four other
  actors' clips at once, like a classroom);
- `room 0.3 s` (RT60 0.3 s, direct sound 6 dB above the reverberation: a small office, close)
  and `room 0.7 s` (0 dB: a classroom, a laptop a metre or two away), synthetic rooms
  (`train.augment.room_impulse`); `room 0.7 s + pink 10 dB`;
- `telephone` (8 kHz, 300–3,400 Hz, 8-bit μ-law);
- `pauses 1.5 s` (1.5 s of quiet room tone, pink noise 50 dB below the clip's power, before and
  after it: someone who presses record, waits, speaks and waits) and `trimmed` (leading and
  trailing frames more than 40 dB below the loudest cut to 0.1 s, as many corpora ship their
  clips; RAVDESS's start and end with about a second of silence).

`--text truth` gives the manifest's transcript (RAVDESS's two neutral sentences: the voice
decides); `--text whisper` transcribes each degraded clip with the shipped Whisper and leaves out
a transcript it is unsure of, as the app does; `--text none` reads no words. The degradations
are seeded per clip, so two checkpoints hear the very same audio.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import ASSETS, DEFAULT_CHECKPOINT, command_line, machine  # noqa: E402

RATE = 16000
BROWSER_RATE = 48000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", nargs="+", default=[str(DEFAULT_CHECKPOINT)])
    parser.add_argument("--manifest", default=str(ASSETS / "heldout" / "manifest.jsonl"))
    parser.add_argument("--text", choices=("truth", "whisper", "none"), default="truth")
    parser.add_argument("--whisper", default=str(ASSETS / "backbones" / "whisper-tiny.en.pt"))
    parser.add_argument("--group", default="", help="only this group's clips (ravdess-g2, …)")
    parser.add_argument("--limit", type=int, default=0, help="clips, spread evenly (0: all)")
    parser.add_argument("--conditions", default="", help="comma-separated names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _browser(samples: np.ndarray) -> np.ndarray:
    """48 kHz int16, decoded by the app's own loader back to 16 kHz float32."""
    import torch
    import torchaudio

    from mgcma.audio import load_audio

    high = torchaudio.functional.resample(torch.from_numpy(samples), RATE, BROWSER_RATE).numpy()
    pcm = np.clip(np.round(high * 32767), -32768, 32767).astype(np.int16)
    return load_audio((BROWSER_RATE, pcm)).samples


def _peak(samples: np.ndarray, dbfs: float) -> np.ndarray:
    """Scaled so its loudest sample is at `dbfs` (what a browser's automatic gain tends to)."""
    peak = float(np.abs(samples).max(initial=0.0))
    return (samples * (10 ** (dbfs / 20) / peak if peak > 0 else 1.0)).astype(np.float32)


def _mp3(samples: np.ndarray, folder: Path) -> np.ndarray:
    import soundfile as sf

    from mgcma.audio import load_audio

    wav, mp3 = folder / "clip.wav", folder / "clip.mp3"
    sf.write(wav, samples, RATE)
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), "-b:a", "32k", str(mp3)],
        check=True,
    )
    return load_audio(mp3).samples[: len(samples)]


def _babble(samples: np.ndarray, others: list[np.ndarray], snr_db: float) -> np.ndarray:
    """Four other voices at once, each looped or cut to the clip's length, at `snr_db`."""
    crowd = np.zeros(len(samples), dtype=np.float64)
    for other in others:
        crowd += np.resize(other, len(samples)) / max(float(np.std(other)), 1e-6)
    power, crowd_power = float(np.mean(samples.astype(np.float64) ** 2)), float(np.mean(crowd**2))
    crowd *= np.sqrt(power / 10 ** (snr_db / 10) / max(crowd_power, 1e-20))
    return (samples + crowd).astype(np.float32)


def conditions(folder: Path) -> dict[str, Callable]:
    """name → degrade(samples, rng, others) for 16-kHz float32 clips."""
    from train.augment import add_noise, reverberate, telephone

    table: dict[str, Callable] = {
        "clean": lambda x, rng, others: x,
        "browser": lambda x, rng, others: _browser(x),
    }
    for db in (-20, -10, 10):  # a microphone's gain; the clip is clipped at full scale
        table[f"gain {db:+d} dB"] = lambda x, rng, others, db=db: np.clip(
            x * 10 ** (db / 20), -1.0, 1.0
        ).astype(np.float32)
    table["peak −1 dBFS"] = lambda x, rng, others: _peak(x, -1.0)
    if shutil.which("ffmpeg"):
        table["mp3 32k"] = lambda x, rng, others: _mp3(x, folder)
    for snr in (20, 10, 5):
        table[f"pink {snr} dB"] = lambda x, rng, others, snr=snr: add_noise(x, snr, rng, "pink")
    table["babble 10 dB"] = lambda x, rng, others: _babble(x, others, 10.0)
    table["room 0.3 s"] = lambda x, rng, others: reverberate(x, 0.3, 6.0, rng)
    table["room 0.7 s"] = lambda x, rng, others: reverberate(x, 0.7, 0.0, rng)
    table["room 0.7 s + pink 10 dB"] = lambda x, rng, others: add_noise(
        reverberate(x, 0.7, 0.0, rng), 10.0, rng, "pink"
    )
    table["telephone"] = lambda x, rng, others: telephone(x)
    table["pauses 1.5 s"] = lambda x, rng, others: _pauses(x, 1.5, rng)
    table["trimmed"] = lambda x, rng, others: _trimmed(x)
    return table


def _pauses(samples: np.ndarray, seconds: float, rng) -> np.ndarray:
    """`seconds` of room tone (pink noise 50 dB below the clip's power) on either side."""
    from train.augment import add_noise

    quiet = np.zeros(int(seconds * RATE), dtype=np.float32)
    padded = np.concatenate([quiet, samples, quiet])
    power = float(np.mean(samples.astype(np.float64) ** 2))
    ones = np.ones_like(padded)
    tone = add_noise(ones, 0.0, rng, "pink") - ones  # pink noise of unit power
    return (padded + tone * np.sqrt(power / 10**5)).astype(np.float32)


def _trimmed(samples: np.ndarray, keep: float = 0.1) -> np.ndarray:
    """Leading and trailing pauses cut to `keep` seconds (`mgcma.pauses`: frames more than
    40 dB below the loudest)."""
    from mgcma.pauses import cut_pauses

    return cut_pauses(samples, keep)[0]


def _clips(path: str, group: str, limit: int) -> list:
    from train.manifest import load_manifest

    utterances = load_manifest(path)
    if group:
        utterances = [u for u in utterances if u.group == group]
        if not utterances:
            raise SystemExit(f"no clip of group {group!r} in {path}")
    if limit and limit < len(utterances):
        picks = np.linspace(0, len(utterances) - 1, limit).round().astype(int)
        utterances = [utterances[i] for i in sorted(set(picks.tolist()))]
    return utterances


def _others(index: int, utterances: list, waves: list[np.ndarray], rng) -> list[np.ndarray]:
    """Four clips of other speakers than clip `index`'s, for babble."""
    speaker = utterances[index].speaker
    pool = [i for i, u in enumerate(utterances) if u.speaker != speaker] or [index]
    return [waves[i] for i in rng.choice(pool, size=4, replace=len(pool) < 4)]


def _name(path: str) -> str:
    """A checkpoint's column name: its folder, or its run's for a run's `best`."""
    path = Path(path)
    return path.parent.name if path.name in ("best", "last") else path.name


def _texts(args, utterances, degraded: list[np.ndarray], transcriber) -> list[str]:
    if args.text == "truth":
        return [u.text for u in utterances]
    if args.text == "none":
        return [""] * len(utterances)
    texts = []
    for samples in degraded:
        transcript = transcriber.transcribe(samples)
        texts.append("" if transcript.unsure else transcript.text)  # as the app reads them
    return texts


def _score(analyzer, degraded, texts, labels, emotions) -> tuple[float, float, float]:
    from train.metrics import emotion_metrics

    analyses = analyzer.analyze_many([(x, RATE, t) for x, t in zip(degraded, texts, strict=True)])
    index = {e: i for i, e in enumerate(emotions)}
    truth = [index[label] for label in labels]
    fused = [index[a.label] for a in analyses]
    ua = emotion_metrics(truth, fused, len(emotions))["ua"]
    speech_ua = float("nan")
    if analyses[0].speech_probs is not None:
        speech = [index[max(a.speech_probs, key=a.speech_probs.get)] for a in analyses]
        speech_ua = emotion_metrics(truth, speech, len(emotions))["ua"]
    sure = float(np.mean([max(a.probs.values()) for a in analyses]))
    return 100 * ua, 100 * speech_ua, sure


def main(argv=None) -> None:
    from mgcma import Analyzer, load_model
    from mgcma.audio import load_audio

    args = parse_args(argv)
    utterances = _clips(args.manifest, args.group, args.limit)
    waves = [load_audio(u.audio).samples for u in utterances]
    analyzers = {path: Analyzer(load_model(path), device="cpu") for path in args.checkpoint}
    emotions = next(iter(analyzers.values())).model.emotions
    transcriber = None
    if args.text == "whisper":
        from mgcma.asr import Transcriber

        transcriber = Transcriber(args.whisper, device="cpu", offline=True).load()
    names = [_name(path) for path in args.checkpoint]
    with tempfile.TemporaryDirectory() as folder:
        table = conditions(Path(folder))
        wanted = [c.strip() for c in args.conditions.split(",") if c.strip()] or list(table)
        unknown = [c for c in wanted if c not in table]
        if unknown:
            raise SystemExit(f"unknown condition(s) {unknown}; known: {', '.join(table)}")
        source = args.group or Path(args.manifest).parent.name
        print(f"# {len(utterances)} clips of {source}, text: {args.text}")
        print(f"{machine()}\n`{command_line(__file__, argv)}`\n")
        header = " | ".join(f"{n}: fused UA % | speech UA % | top p" for n in names)
        print(f"| condition | {header} |")
        print("|---|" + "---:|---:|---:|" * len(names))
        for name in wanted:
            degraded = []
            for index, samples in enumerate(waves):
                rng = np.random.default_rng([args.seed, index])  # the same audio for every model
                others = _others(index, utterances, waves, rng)
                degraded.append(np.asarray(table[name](samples, rng, others), dtype=np.float32))
            texts = _texts(args, utterances, degraded, transcriber)
            labels = [u.label for u in utterances]
            cells = []
            for analyzer in analyzers.values():
                ua, speech_ua, sure = _score(analyzer, degraded, texts, labels, emotions)
                speech = "–" if np.isnan(speech_ua) else f"{speech_ua:.1f}"
                cells.append(f"{ua:.1f} | {speech} | {sure:.2f}")
            print(f"| {name} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
