"""The synthetic emotional-speech corpus: espeak-ng voices, emotional prosody, templated wording.

``python -m train synth --out DIR`` (or :func:`generate_corpus`) writes ``DIR/wav/<group>/<id>.wav``
(16 kHz mono int16), ``DIR/manifest.jsonl`` (one utterance per line) and ``DIR/corpus.json`` (the
settings and seed). The same seed and settings give a byte-identical manifest and identical audio.

Speakers and groups
    Twenty espeak-ng voices (:data:`VOICE_GROUPS`), each a distinct speaker (accent + voice
    variant, ten male, ten female; no variant twice), in five speaker-disjoint groups ``g1``..``g5``
    of four: the folds of leave-one-group-out cross-validation. Each speaker also gets a fixed
    random offset to its base pitch, range, rate and loudness, drawn from the seed.

Prosody
    :data:`PROSODY` gives the espeak-ng settings per emotion (pitch level, pitch range, rate,
    amplitude), :data:`SPEAKER_SPREAD` the spread of the per-speaker offsets and :data:`JITTER`
    the spread of a fresh per-utterance variation, so the classes overlap and no single number
    separates them. Aroused prosody (happy, angry) is also spoken with exclamatory intonation;
    the transcript always ends in a full stop, so punctuation never leaks the prosody into text.

Cues and the label
    Every utterance has a *prosody emotion* (how it is said) and a *text emotion* (what the words
    say), recorded as ``prosody_emotion`` and ``text_emotion``; ``cue`` says how they relate:

    ========== ====================== ====================== ==============================
    cue        prosody                words                  share of each emotional class
    ========== ====================== ====================== ==============================
    both       the label              the label              55 %
    prosody    the label              neutral                15 %
    words      neutral                the label              15 %
    conflict   the label              another emotion        15 %
    ========== ====================== ====================== ==============================

    The ``label`` is the emotion the listener would report: the emotional cue when only one cue
    is emotional, and **the prosody when the two conflict** ("Great, a wonderful party" said
    angrily is angry: sarcasm). IEMOCAP's annotators label from the audio-visual recording, so
    how a thing was said outweighs what was said there too. As a rule: ``label`` is
    ``prosody_emotion`` unless that is neutral, then ``text_emotion``. Neutral utterances have
    neutral words and neutral prosody (cue ``both``), because a neutral label with one emotional
    cue would contradict the rule. The mix is :data:`CUE_MIX`; ``corpus.json`` records the counts.
    This mirrors real speech: prosody carries arousal, words carry valence, and either may be
    missing or conflict.

Word timings
    Exact, from the synthesiser (see :mod:`train.espeak`): a word starts at its onset and ends
    where the next word starts; the last word ends where voiced audio ends (energy threshold),
    after which the trailing silence is cut to :data:`TAIL_SECONDS`.
"""

import functools
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from tqdm import tqdm

from mgcma.constants import EMOTIONS, SAMPLE_RATE
from train.data import SYNTHETIC_CORPUS
from train.espeak import Espeak, EspeakUnavailableError, word_onsets
from train.lexicon import make_sentence, sentence_words
from train.real_sentences import RealSentences

# Five speaker-disjoint groups of four voices ("accent+variant"): two male, two female each. A
# model trained on four groups hears sixteen voices; more voices is the surest way to generalise
# to the held-out group's (ten voices, two per group, gave 75 % UA held out against 86 % heard;
# twenty give 80 % against 82 %, with token guidance added at the same time).
VOICE_GROUPS: dict[str, tuple[str, ...]] = {
    "g1": ("en-us", "en-gb-x-rp+f3", "en+m2", "en-us+Annie"),
    "g2": ("en-gb-scotland+m3", "en-us+f2", "en-gb-x-rp+m4", "en-029+linda"),
    "g3": ("en-029+m1", "en+f4", "en-us-nyc+m5", "en-gb-scotland+steph"),
    "g4": ("en-gb-x-gbclan+klatt", "en-us-nyc+f5", "en-gb-x-gbcwmd+m6", "en-us+anika"),
    "g5": ("en-gb-x-gbcwmd+m7", "en-029+f1", "en-gb-x-gbclan+Andy", "en+belinda"),
}
NUM_GROUPS = 5


@dataclass(frozen=True)
class Prosody:
    """espeak-ng settings: pitch 0..100, range 0..100, rate in words/min 80..450, volume 0..200."""

    pitch: float
    pitch_range: float
    rate: float
    volume: float


PROSODY: dict[str, Prosody] = {
    # middle everything: espeak-ng's defaults are 50 / 50 / 175 / 100
    "neutral": Prosody(pitch=50, pitch_range=45, rate=170, volume=100),
    # high pitch, the widest range (lively melody), fast-ish, medium-loud
    "happy": Prosody(pitch=66, pitch_range=85, rate=188, volume=125),
    # high pitch, wide range, fast, loud (espeak-ng compresses peaks above ~150)
    "angry": Prosody(pitch=62, pitch_range=72, rate=205, volume=155),
    # low pitch, narrow range (flat), slow, quiet
    "sad": Prosody(pitch=34, pitch_range=20, rate=138, volume=70),
}
# Standard deviation of each speaker's fixed offset: people differ in habitual pitch and tempo.
SPEAKER_SPREAD = Prosody(pitch=6, pitch_range=5, rate=10, volume=8)
# Standard deviation of the per-utterance variation: about half the gap between neighbouring
# classes, so the classes overlap on every single setting.
JITTER = Prosody(pitch=7, pitch_range=10, rate=14, volume=15)
LIMITS = Prosody(pitch=(0, 100), pitch_range=(0, 100), rate=(80, 450), volume=(0, 200))
AROUSED = ("happy", "angry")  # spoken with exclamatory intonation

CUE_MIX: dict[str, float] = {"both": 0.55, "prosody": 0.15, "words": 0.15, "conflict": 0.15}
LABEL_RULE = (
    "label = prosody_emotion if it is not neutral, else text_emotion: the emotion a listener "
    "reports; when words and prosody conflict, how it was said wins (as IEMOCAP annotators "
    "label from the recording). Neutral utterances have neutral words and neutral prosody."
)

FRAME_SECONDS = 0.01  # energy frames for finding the end of voiced audio
SILENCE_DB = -40.0  # a frame this far below the loudest frame counts as silence
TAIL_SECONDS = 0.1  # silence kept after the last voiced frame
TIME_DECIMALS = 5  # 10 µs: finer than one native sample (45 µs), so onsets stay distinct
SHARD_SIZE = 32  # utterances per fresh worker process: about 0.1 s of start-up per 1 s of work
MANIFEST_NAME = "manifest.jsonl"
SETTINGS_NAME = "corpus.json"


@dataclass(frozen=True)
class PlannedUtterance:
    """Everything needed to render one utterance; planned up front so the seed decides it all."""

    id: str
    group: str
    speaker: str
    label: str
    cue: str
    text_emotion: str
    prosody_emotion: str
    text: str
    prosody: Prosody
    sentence_id: str = ""  # the GoEmotions comment voiced, or "" for a templated sentence


def cue_counts(per_class: int) -> dict[str, int]:
    """Split the ``per_class`` utterances of an emotional class over :data:`CUE_MIX`."""
    exact = {cue: share * per_class for cue, share in CUE_MIX.items()}
    counts = {cue: int(value) for cue, value in exact.items()}
    by_remainder = sorted(CUE_MIX, key=lambda cue: counts[cue] - exact[cue])
    for cue in by_remainder[: per_class - sum(counts.values())]:
        counts[cue] += 1
    return counts


def _emotions_for(label: str, cue: str, rng: np.random.Generator) -> tuple[str, str]:
    """``(prosody_emotion, text_emotion)`` of an utterance with this label and cue."""
    if cue == "prosody":
        return label, "neutral"
    if cue == "words":
        return "neutral", label
    if cue == "conflict":
        others = [emotion for emotion in EMOTIONS if emotion not in ("neutral", label)]
        return label, others[int(rng.integers(len(others)))]
    return label, label


def _draw_prosody(base: Prosody, offset: Prosody, rng: np.random.Generator) -> Prosody:
    """``base + offset + jitter``, clipped to espeak-ng's ranges and rounded to its integers."""
    values = {}
    for field, low_high in asdict(LIMITS).items():
        value = (
            getattr(base, field) + getattr(offset, field) + rng.normal(0, getattr(JITTER, field))
        )
        values[field] = int(np.clip(round(value), *low_high))
    return Prosody(**values)


def plan_corpus(
    per_class: int,
    seed: int,
    voice_groups: dict[str, tuple[str, ...]],
    sentences: RealSentences | None = None,
    real_share: float = 0.5,
) -> list[PlannedUtterance]:
    """Plan every utterance (speaker, cue, emotions, text, prosody) from one seeded generator.

    Parameters
    ----------
    per_class : int
        Utterances per label; speakers take turns within each label, so every speaker gets
        about the same number of each.
    seed : int
        The only source of randomness.
    voice_groups : dict[str, tuple[str, ...]]
        Group name → voices.
    sentences : RealSentences, optional
        Real sentences to voice instead of templated ones, drawn without replacement; None
        (the default) plans exactly the templated corpus of earlier releases.
    real_share : float
        With ``sentences``, the chance that an utterance voices a real sentence (a template
        stands in when its emotion's pool is empty).

    Returns
    -------
    list[PlannedUtterance]
        ``4 * per_class`` utterances in a shuffled order, with ids ``synth-00000``...
    """
    rng = np.random.default_rng(seed)
    speakers = [(group, voice) for group, voices in voice_groups.items() for voice in voices]
    offsets = [
        Prosody(**{f: rng.normal(0, s) for f, s in asdict(SPEAKER_SPREAD).items()})
        for _ in speakers
    ]
    drafts = []
    for label in EMOTIONS:
        counts = cue_counts(per_class) if label != "neutral" else {"both": per_class}
        cues = rng.permutation([cue for cue, count in counts.items() for _ in range(count)])
        first_speaker = int(rng.integers(len(speakers)))
        for index, cue in enumerate(cues):
            speaker = (first_speaker + index) % len(speakers)
            prosody_emotion, text_emotion = _emotions_for(label, str(cue), rng)
            text, sentence_id = _sentence(text_emotion, rng, sentences, real_share)
            prosody = _draw_prosody(PROSODY[prosody_emotion], offsets[speaker], rng)
            drafts.append(
                (*speakers[speaker], label, str(cue), text_emotion, prosody_emotion, text, prosody)
                + (sentence_id,)
            )
    order = rng.permutation(len(drafts))
    return [
        PlannedUtterance(f"synth-{number:05d}", *drafts[index])
        for number, index in enumerate(order)
    ]


def _sentence(
    emotion: str, rng: np.random.Generator, sentences: RealSentences | None, real_share: float
) -> tuple[str, str]:
    """``(text, GoEmotions id or "")``: a real sentence with chance ``real_share``, else a template.

    Without ``sentences`` no random number is drawn for the choice, so the templated corpus of
    a seed is the same as before real sentences existed.
    """
    if sentences is not None and rng.random() < real_share:
        drawn = sentences.draw(emotion)
        if drawn is not None:
            return drawn[1], drawn[0]
    return make_sentence(emotion, rng), ""


@functools.cache
def _resampler(native_rate: int) -> torchaudio.transforms.Resample:
    """torchaudio's sinc resampler to 16 kHz, its kernel built once per process."""
    return torchaudio.transforms.Resample(native_rate, SAMPLE_RATE)


def _voiced_end(samples: np.ndarray) -> int:
    """Sample index just after the last frame within :data:`SILENCE_DB` of the loudest frame."""
    frame = int(SAMPLE_RATE * FRAME_SECONDS)
    usable = len(samples) // frame * frame
    energy = (samples[:usable].reshape(-1, frame) ** 2).mean(axis=1)  # (frames,)
    if usable == 0 or energy.max() <= 0:
        return len(samples)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (SILENCE_DB / 10))
    return int(loud[-1] + 1) * frame


def _word_times(
    tokens: list[tuple[str, int]], onsets: list[int], native_rate: int, end_seconds: float
) -> list[dict]:
    """``[{word, start, end}]`` in seconds: each word ends where the next one starts."""
    starts = [onset / native_rate for onset in onsets] + [end_seconds]
    words = []
    for index, (word, _) in enumerate(tokens):
        start, end = starts[index], max(starts[index + 1], starts[index] + FRAME_SECONDS)
        words.append(
            {
                "word": word,
                "start": round(start, TIME_DECIMALS),
                "end": round(end, TIME_DECIMALS),
            }
        )
    return words


def render_utterance(engine: Espeak, plan: PlannedUtterance, out_dir: Path) -> dict:
    """Synthesise one planned utterance, write its WAV and return its manifest record."""
    engine.set_voice(plan.speaker)
    engine.set_prosody(
        rate=plan.prosody.rate,
        volume=plan.prosody.volume,
        pitch=plan.prosody.pitch,
        pitch_range=plan.prosody.pitch_range,
    )
    spoken = plan.text[:-1] + "!" if plan.prosody_emotion in AROUSED else plan.text
    synthesis = engine.synthesize(spoken)
    native = torch.from_numpy(synthesis.samples.astype(np.float32) / 32768.0)  # (N_native,)
    samples = _resampler(synthesis.sample_rate)(native).numpy()  # (N,) at 16 kHz
    voiced_end = _voiced_end(samples)
    samples = samples[: voiced_end + int(TAIL_SECONDS * SAMPLE_RATE)]
    end_seconds = min(voiced_end, len(samples)) / SAMPLE_RATE

    tokens = sentence_words(plan.text)
    counts = [engine.phoneme_count(word) for word, _ in tokens]
    native_end = int(end_seconds * synthesis.sample_rate)
    onsets = word_onsets([offset for _, offset in tokens], counts, synthesis, native_end)
    words = _word_times(tokens, onsets, synthesis.sample_rate, end_seconds)

    audio = Path("wav") / plan.group / f"{plan.id}.wav"
    (out_dir / audio).parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    sf.write(out_dir / audio, pcm, SAMPLE_RATE, subtype="PCM_16")
    return {
        "id": plan.id,
        "audio": audio.as_posix(),
        "text": plan.text,
        "label": plan.label,
        "speaker": plan.speaker,
        "group": plan.group,
        "corpus": SYNTHETIC_CORPUS,
        "sentence_source": "goemotions" if plan.sentence_id else "template",
        **({"goemotions_id": plan.sentence_id} if plan.sentence_id else {}),
        "words": words,
        "cue": plan.cue,
        "text_emotion": plan.text_emotion,
        "prosody_emotion": plan.prosody_emotion,
        "prosody": asdict(plan.prosody),
        "duration": round(len(pcm) / SAMPLE_RATE, TIME_DECIMALS),
    }


def _render_shard(task: tuple[list[PlannedUtterance], str]) -> list[dict]:
    """Render one shard in a fresh process (see :func:`_render_all`)."""
    torch.set_num_threads(1)  # parallelism comes from the processes
    plans, out_dir = task
    engine = Espeak()
    return [render_utterance(engine, plan, Path(out_dir)) for plan in plans]


def _voice_groups(voices: list[str] | tuple[str, ...] | None) -> dict[str, tuple[str, ...]]:
    """Group name → voices: :data:`VOICE_GROUPS`, or ``voices`` cut into five equal groups."""
    if voices is None:
        return dict(VOICE_GROUPS)
    voices = list(voices)
    if not voices or len(voices) % NUM_GROUPS or len(set(voices)) != len(voices):
        raise ValueError(
            f"voices must be distinct and a multiple of {NUM_GROUPS} (one group per "
            f"cross-validation fold), got {len(voices)}: {voices}"
        )
    size = len(voices) // NUM_GROUPS
    return {f"g{k + 1}": tuple(voices[k * size : (k + 1) * size]) for k in range(NUM_GROUPS)}


def _settings(
    per_class: int,
    seed: int,
    groups: dict,
    plans: list[PlannedUtterance],
    sentences: RealSentences | None = None,
    real_share: float = 0.0,
) -> dict:
    """What ``corpus.json`` records: enough to regenerate the corpus and to read it right."""
    cues = [plan.cue for plan in plans]
    real = {}
    if sentences is not None:
        real = {"real_sentences": {"share": real_share, **sentences.summary()}}
    return {
        "generator": "python -m train synth",
        "seed": seed,
        "per_class": per_class,
        "utterances": len(plans),
        "sample_rate": SAMPLE_RATE,
        "emotions": list(EMOTIONS),
        "voice_groups": {group: list(voices) for group, voices in groups.items()},
        "cue_mix_of_emotional_classes": CUE_MIX,
        "cue_counts": {cue: cues.count(cue) for cue in CUE_MIX},
        "label_rule": LABEL_RULE,
        "prosody": {emotion: asdict(prosody) for emotion, prosody in PROSODY.items()},
        "speaker_spread_sd": asdict(SPEAKER_SPREAD),
        "utterance_jitter_sd": asdict(JITTER),
        "aroused_exclamation": list(AROUSED),
        **real,
    }


def _render_all(
    plans: list[PlannedUtterance], out_dir: Path, workers: int, progress: bool
) -> list[dict]:
    """Render in plan order: fixed shards of :data:`SHARD_SIZE`, each in a fresh process.

    espeak-ng keeps state from one utterance to the next that no API call resets (the pitch
    flutter and waveform phase: the same utterance comes out a few samples longer or shorter
    depending on what was said before). A fresh process starts from the same state every time,
    so shards that do not depend on the number of workers make the corpus identical whatever
    ``workers`` is. Processes come from a fork server that has imported this module but never
    touched espeak-ng or run torch, so forking is cheap and safe.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    shards = [
        (plans[start : start + SHARD_SIZE], str(out_dir))
        for start in range(0, len(plans), SHARD_SIZE)
    ]
    records = []
    bar = tqdm(total=len(plans), desc="synth", unit="utt", disable=not progress)
    with bar, context.Pool(min(workers, len(shards)), maxtasksperchild=1) as pool:
        for shard_records in pool.imap(_render_shard, shards):
            records.extend(shard_records)
            bar.update(len(shard_records))
    return records


def generate_corpus(
    out_dir: str | os.PathLike,
    per_class: int = 750,
    seed: int = 0,
    workers: int | None = None,
    voices: list[str] | tuple[str, ...] | None = None,
    progress: bool = True,
    sentences: str | os.PathLike | None = None,
    real_share: float = 0.5,
) -> Path:
    """Generate the synthetic corpus (see the module docstring) and return its manifest path.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Where ``wav/``, ``manifest.jsonl`` and ``corpus.json`` go (created if missing).
    per_class : int
        Utterances per emotion; the corpus has ``4 * per_class``.
    seed : int
        Same seed and settings → byte-identical manifest and identical audio.
    workers : int, optional
        Processes to synthesise with (default ``os.cpu_count()``); the output does not depend
        on it.
    voices : list of str, optional
        espeak-ng voices, a multiple of five, cut into five consecutive groups
        (default :data:`VOICE_GROUPS`).
    progress : bool
        Show a tqdm progress bar.
    sentences : str or os.PathLike, optional
        A GoEmotions text manifest (``python -m train goemotions``): its train and dev
        sentences are voiced in ``real_share`` of the utterances (see
        :mod:`train.real_sentences`); without it every sentence is templated.
    real_share : float
        Share of utterances voicing a real sentence, 0..1.

    Returns
    -------
    Path
        ``out_dir / "manifest.jsonl"``.

    Raises
    ------
    EspeakUnavailableError
        When libespeak-ng or its voice data is missing.
    ValueError
        For a bad ``per_class``, ``workers`` or voice list.

    Notes
    -----
    Workers are started from a fork server, so a script that calls this must do so under
    ``if __name__ == "__main__":``, as with any ``multiprocessing`` code.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not 0.0 <= real_share <= 1.0:
        raise ValueError(f"real_share must be within 0..1, got {real_share}")
    groups = _voice_groups(voices)
    real = RealSentences.from_manifest(sentences, seed) if sentences is not None else None
    probe = Espeak()  # fail here, with the typed error, rather than inside a worker
    for group_voices in groups.values():
        for voice in group_voices:
            probe.set_voice(voice)
    del probe
    plans = plan_corpus(per_class, seed, groups, real, real_share)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = _render_all(plans, out_dir, workers, progress)

    manifest = out_dir / MANIFEST_NAME
    _write_atomic(manifest, "".join(json.dumps(record) + "\n" for record in records))
    settings = _settings(per_class, seed, groups, plans, real, real_share)
    _write_atomic(out_dir / SETTINGS_NAME, json.dumps(settings, indent=2) + "\n")
    return manifest


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def add_arguments(parser) -> None:
    """The ``synth`` subcommand's options."""
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--per-class", type=int, default=750, help="utterances per emotion")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same corpus)")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default: all CPU cores)"
    )
    parser.add_argument(
        "--sentences",
        type=Path,
        default=None,
        help="GoEmotions text manifest (python -m train goemotions): voice its train/dev "
        "sentences instead of templates in --real-share of the utterances",
    )
    parser.add_argument(
        "--real-share",
        type=float,
        default=0.5,
        help="with --sentences: share of utterances voicing a real sentence (default 0.5)",
    )


def main(args) -> int:
    """Run ``python -m train synth``; returns the exit code (2: espeak-ng missing, bad input)."""
    began = time.perf_counter()
    try:
        manifest = generate_corpus(
            args.out,
            args.per_class,
            args.seed,
            args.workers,
            sentences=args.sentences,
            real_share=args.real_share,
        )
    except (EspeakUnavailableError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    lines = manifest.read_text(encoding="utf-8").splitlines()
    settings = json.loads((manifest.parent / SETTINGS_NAME).read_text(encoding="utf-8"))
    if "real_sentences" in settings:
        real = settings["real_sentences"]
        skipped = ", ".join(f"{why}: {n}" for why, n in real["skipped"].items()) or "none"
        print(f"real sentences voiced: {sum(real['voiced'].values())} (skipped: {skipped})")
    hours = sum(json.loads(line)["duration"] for line in lines) / 3600
    elapsed = time.perf_counter() - began
    print(f"wrote {len(lines)} utterances ({hours:.2f} h) to {manifest} in {elapsed:.1f} s")
    return 0
