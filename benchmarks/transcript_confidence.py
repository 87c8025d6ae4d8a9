"""How sure Whisper is of its words on English speech and on speech in other languages.

    python benchmarks/transcript_confidence.py --manifest data/ravdess/manifest.jsonl \
        corpus/manifest.jsonl [--whisper assets/backbones/whisper-tiny.en.pt] [--limit 300]

An English-only Whisper (the shipped tiny.en) writes English words for any speech: German comes
out as "the app and leaked of the nice bank." Those words are real, so the text encoder reads
them as English, and the fused model reads a sentence nobody said. What tells them apart is
Whisper's own word probabilities. This prints, per set of clips, the distribution of the
transcript's mean word probability (`mgcma.asr.Transcript.confidence`), the share below each
threshold (`mgcma.asr.UNSURE_BELOW` is the app's) and the share the app does not read
(`Transcript.unsure`: words below that threshold, or a repeating loop):

- each manifest's clips (English: RAVDESS's real actors, the synthetic corpus's espeak-ng
  voices), up to `--limit` per manifest, spread evenly over it;
- `SENTENCES` below, everyday sentences in eight other languages voiced by espeak-ng's voice
  for each (the only non-English speech at hand; real speakers differ, so read it as a sketch).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.common import ASSETS, machine  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)

# six everyday sentences per language (espeak-ng voice name → sentences)
SENTENCES = {
    "de": [
        "Der Lappen liegt auf dem Eisschrank.",
        "Ich bin so wütend, dass ich schreien könnte.",
        "Morgen fahren wir mit dem Zug nach Berlin.",
        "Das Essen war gestern Abend wirklich gut.",
        "Kannst du mir bitte das Fenster öffnen?",
        "Wir haben den ganzen Tag auf dich gewartet.",
    ],
    "fr": [
        "Je suis tellement triste aujourd'hui.",
        "Nous allons au marché demain matin.",
        "Il fait très beau dans le jardin.",
        "Pourquoi est-ce que tu ne m'as rien dit?",
        "Le train part dans dix minutes.",
        "J'ai perdu mes clés encore une fois.",
    ],
    "es": [
        "Estoy muy contento de verte otra vez.",
        "Mañana vamos a la playa con mis padres.",
        "No encuentro mi teléfono por ninguna parte.",
        "La comida de este restaurante es excelente.",
        "Ella trabaja en un hospital del centro.",
        "¿Por qué llegaste tan tarde anoche?",
    ],
    "it": [
        "Non posso credere che sia successo davvero.",
        "Andiamo a mangiare una pizza stasera.",
        "Il mio fratello abita a Milano.",
        "Questa mattina ha piovuto molto.",
        "Mi puoi aiutare con questi libri?",
        "Sono molto stanco dopo il lavoro.",
    ],
    "pt": [
        "Eu gosto muito de ler livros à noite.",
        "O autocarro chegou atrasado outra vez.",
        "Hoje está muito calor na cidade.",
        "A minha irmã vai casar no verão.",
        "Onde fica a estação de comboios?",
        "Não quero falar sobre isso agora.",
    ],
    "nl": [
        "Ik heb vandaag heel hard gewerkt.",
        "De kinderen spelen buiten in de tuin.",
        "Wil je een kopje koffie met melk?",
        "Het regent al de hele week.",
        "We gaan morgen naar het strand.",
        "Waarom heb je me niet gebeld?",
    ],
    "pl": [
        "Jutro jedziemy do babci na wieś.",
        "Nie mam czasu na rozmowę teraz.",
        "To był najpiękniejszy dzień w moim życiu.",
        "Gdzie jest najbliższa apteka?",
        "Mój brat gra na gitarze.",
        "Pada deszcz od samego rana.",
    ],
    "sv": [
        "Jag är så glad att du kom hit.",
        "Vi ska äta middag klockan sju.",
        "Bussen var försenad i morse igen.",
        "Hon läser en bok i soffan.",
        "Kan du hjälpa mig med väskan?",
        "Det är kallt ute i dag.",
    ],
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", nargs="*", default=[], help="English clips (JSONL)")
    parser.add_argument("--whisper", default=str(ASSETS / "backbones" / "whisper-tiny.en.pt"))
    parser.add_argument("--limit", type=int, default=300, help="clips per manifest")
    parser.add_argument("--per-language", type=int, default=6, help="sentences per language")
    return parser.parse_args(argv)


def _manifest_clips(path: str, limit: int) -> list[str]:
    from train.manifest import load_manifest

    utterances = load_manifest(path)
    picks = np.linspace(0, len(utterances) - 1, min(limit, len(utterances))).round().astype(int)
    return [str(utterances[i].audio) for i in sorted(set(picks.tolist()))]


def _voiced(folder: Path, per_language: int) -> dict[str, list[str]]:
    clips = {}
    for voice, sentences in SENTENCES.items():
        clips[voice] = []
        for index, sentence in enumerate(sentences[:per_language]):
            path = folder / f"{voice}-{index}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), sentence], check=True)
            clips[voice].append(str(path))
    return clips


def _row(name: str, confidences: list[float], unsure: list[bool]) -> str:
    values = np.asarray(confidences)
    shares = " | ".join(f"{(values < t).mean():.0%}" for t in THRESHOLDS)
    quartiles = np.percentile(values, [5, 25, 50, 75])
    spread = " / ".join(f"{q:.2f}" for q in quartiles)
    return f"| {name} | {len(values)} | {spread} | {shares} | {np.mean(unsure):.0%} |"


def main(argv=None) -> None:
    from mgcma.asr import REPETITIVE_ABOVE, UNSURE_BELOW, Transcriber
    from mgcma.audio import load_audio

    args = parse_args(argv)
    transcriber = Transcriber(args.whisper, device="cpu", offline=True).load()
    sets: dict[str, list[str]] = {}
    for path in args.manifest:
        sets[f"English: {Path(path).parent.name}"] = _manifest_clips(path, args.limit)
    with tempfile.TemporaryDirectory() as folder:
        voiced = _voiced(Path(folder), args.per_language)
        rows, every_other, other_unsure = [], [], []
        for name, clips in [*sets.items(), *voiced.items()]:
            confidences, unsure, examples = [], [], []
            for clip in clips:
                transcript = transcriber.transcribe(load_audio(clip).samples)
                confidences.append(transcript.confidence)
                unsure.append(transcript.unsure)
                examples.append(transcript.text)
            if name in voiced:
                every_other += confidences
                other_unsure += unsure
                name = f"espeak-ng `{name}`: “{examples[0][:60]}”"
            rows.append(_row(name, confidences, unsure))
        rows.append(_row("every other language", every_other, other_unsure))
    print(f"# Whisper {Path(args.whisper).name}'s mean word probability per transcript")
    print(
        f"{machine()}; no words counts as 0 (and is not 'not read': the voice decides anyway); "
        f"threshold {UNSURE_BELOW}, loops above compression ratio {REPETITIVE_ABOVE}\n"
    )
    thresholds = " | ".join(f"< {t}" for t in THRESHOLDS)
    print(f"| clips | n | 5th / 25th / 50th / 75th percentile | {thresholds} | not read |")
    print("|---|---:|---|" + "---:|" * (len(THRESHOLDS) + 1))
    print("\n".join(rows))
    print(f"\nmedian of every other language: {statistics.median(every_other):.2f}")


if __name__ == "__main__":
    main()
