"""A small ctypes binding to the espeak-ng C library: synthesis with exact word onsets.

The command-line ``espeak-ng`` can write a WAV, but it cannot say where each word starts. The C
library can: with ``AUDIO_OUTPUT_SYNCHRONOUS`` every call to ``espeak_Synth`` hands the samples and
a list of events to a callback. Each ``espeakEVENT_WORD`` event carries the sample offset at which
the synthesiser started a word and the word's character position in the input text, and each
``espeakEVENT_PHONEME`` event the sample offset and name of one phoneme.

espeak-ng does not report every word. It fuses an unstressed function word with the word before
it into one phonological word ("I am" is spoken as one unit [aI a# m], "in the" as [I n D @2]) and
reports one event for the pair; its character positions are also occasionally off by one. So
:func:`word_onsets` aligns the events to the tokens in order, and splits a fused group at the
phoneme where the fused word begins: the fused word gets the group's last *n* phonemes, where *n*
is the length of its own transcription (``espeak_TextToPhonemes``). Onsets are therefore exact
sample offsets from the synthesiser: a word boundary, or a phoneme boundary inside a fused group.

Only the part of ``speak_lib.h`` that :func:`Espeak.synthesize` needs is declared here (the
header is not installed on most machines, so the numbers below are copied from it). The library
keeps process-global state (one voice, one set of parameters, one callback), so use one
:class:`Espeak` per process; parallel generation uses processes, never threads.

Every failure to find or start the library raises :class:`EspeakUnavailableError`.
"""

import bisect
import ctypes
import ctypes.util
import os
from dataclasses import dataclass

import numpy as np

LIBRARY_ENV = "MGCMA_ESPEAK_LIBRARY"  # a path that overrides the library search
LIBRARY_NAMES = ("espeak-ng", "libespeak-ng.so.1")  # tried in order by find_library / dlopen

# speak_lib.h: espeak_AUDIO_OUTPUT. Synchronous: espeak_Synth returns after the last callback.
AUDIO_OUTPUT_SYNCHRONOUS = 2
# speak_lib.h: espeak_Initialize options. Without DONT_EXIT the library calls exit() on error.
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000
# speak_lib.h: espeak_EVENT_TYPE values that the callback reads.
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_PHONEME = 7  # id.string holds the phoneme's name, e.g. b"aI"
PAUSE_PHONEMES = ("_", ";")  # names starting with these are pauses or zero-length markers
PHONEME_SEPARATOR = "_"  # espeak_TextToPhonemes puts this between phonemes (bits 8-23 of mode)
# speak_lib.h: espeak_POSITION_TYPE and synth flags.
POS_CHARACTER = 1
CHARS_UTF8 = 1  # our text is always encoded as UTF-8, so say so rather than CHARS_AUTO
END_PAUSE = 0x1000  # add the sentence-final pause, so the last word is never cut off
# speak_lib.h: espeak_PARAMETER, with the accepted ranges the library documents.
RATE = 1  # words per minute, 80..450 (default 175)
VOLUME = 2  # amplitude, 0..200 (default 100)
PITCH = 3  # base pitch, 0..100 (default 50)
RANGE = 4  # pitch range, 0..100 (default 50; 0 is a monotone)
EE_OK = 0  # espeak_ERROR: success


class EspeakUnavailableError(RuntimeError):
    """espeak-ng (the C library libespeak-ng or its voice data) cannot be found or started."""


class EspeakEvent(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h (the trailing ``id`` union is 8 bytes wide)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position of the word in the text
        ("length", ctypes.c_int),  # the word's length in characters
        ("audio_position", ctypes.c_int),  # milliseconds from the start of this espeak_Synth call
        ("sample", ctypes.c_int),  # the same instant as a sample offset at the native rate
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(EspeakEvent)
)


@dataclass(frozen=True)
class WordEvent:
    """One ``espeakEVENT_WORD`` event.

    Attributes
    ----------
    char_start : int
        0-based character offset of the word in the synthesised text (-1: none given).
    sample : int
        Sample offset (at the native rate) where the synthesiser started the word.
    """

    char_start: int
    sample: int


@dataclass(frozen=True)
class PhonemeEvent:
    """One ``espeakEVENT_PHONEME`` event: phoneme ``name`` starts at ``sample``."""

    name: str
    sample: int


@dataclass(frozen=True)
class Synthesis:
    """Output of one :meth:`Espeak.synthesize` call.

    Attributes
    ----------
    samples : np.ndarray
        ``(N,)`` int16 mono at ``sample_rate``.
    sample_rate : int
        The library's native rate (22,050 Hz for the standard voices).
    words : list[WordEvent]
        Word events in the order spoken (fewer than the words of the text, see module docstring).
    phonemes : list[PhonemeEvent]
        Phoneme events in the order spoken, pauses excluded.
    """

    samples: np.ndarray
    sample_rate: int
    words: list[WordEvent]
    phonemes: list[PhonemeEvent]


def library_path() -> str:
    """Where libespeak-ng is: ``$MGCMA_ESPEAK_LIBRARY`` or the system search.

    Raises
    ------
    EspeakUnavailableError
        When the library cannot be found.
    """
    override = os.environ.get(LIBRARY_ENV)
    if override:
        return override
    for name in LIBRARY_NAMES:
        found = ctypes.util.find_library(name)
        if found:
            return found
    raise EspeakUnavailableError(
        "libespeak-ng was not found; install espeak-ng (e.g. `apt-get install espeak-ng "
        f"libespeak-ng1`) or set {LIBRARY_ENV} to the library's path"
    )


def load_library() -> ctypes.CDLL:
    """Open libespeak-ng and declare the functions used here.

    Raises
    ------
    EspeakUnavailableError
        When the library cannot be found or opened.
    """
    path = library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as error:
        raise EspeakUnavailableError(f"cannot load libespeak-ng from {path!r}: {error}") from None
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,  # text
        ctypes.c_size_t,  # size in bytes, including the terminating NUL
        ctypes.c_uint,  # position
        ctypes.c_int,  # position_type
        ctypes.c_uint,  # end_position (0: to the end)
        ctypes.c_uint,  # flags
        ctypes.POINTER(ctypes.c_uint),  # unique_identifier (may be NULL)
        ctypes.c_void_p,  # user_data
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_TextToPhonemes.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),  # pointer to the text pointer (advanced by the call)
        ctypes.c_int,  # text mode
        ctypes.c_int,  # phoneme mode: bits 8-23 hold the separator character
    ]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    return lib


class Espeak:
    """The espeak-ng library, initialised once for synchronous synthesis in this process.

    Raises
    ------
    EspeakUnavailableError
        When the library or its voice data cannot be found.
    """

    def __init__(self) -> None:
        self._lib = load_library()
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT
        rate = self._lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
        if rate <= 0:
            raise EspeakUnavailableError(
                "espeak_Initialize failed: the espeak-ng voice data (espeak-ng-data) is missing"
            )
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._words: list[WordEvent] = []
        self._phonemes: list[PhonemeEvent] = []
        # Keep a reference: the library calls it for as long as this object lives.
        self._callback = SYNTH_CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, num_samples: int, events) -> int:
        """Synth callback: copy the samples and the events; returning 0 means "continue"."""
        if num_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        index = 0
        while events and events[index].type != EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == EVENT_WORD:
                self._words.append(WordEvent(event.text_position - 1, event.sample))
            elif event.type == EVENT_PHONEME:
                name = bytes(event.id).split(b"\0", 1)[0].decode("ascii", "replace")
                if name and not name.startswith(PAUSE_PHONEMES):
                    self._phonemes.append(PhonemeEvent(name, event.sample))
            index += 1
        return 0

    def set_voice(self, name: str) -> None:
        """Select a voice by name, e.g. ``"en-us"`` or ``"en-gb-x-rp+f3"`` (voice+variant)."""
        if self._lib.espeak_SetVoiceByName(name.encode()) != EE_OK:
            raise ValueError(f"espeak-ng has no voice {name!r}; see `espeak-ng --voices=en`")

    def set_prosody(self, *, rate: int, volume: int, pitch: int, pitch_range: int) -> None:
        """Set absolute speaking rate (wpm), volume (0..200), pitch (0..100) and range (0..100)."""
        settings = ((RATE, rate), (VOLUME, volume), (PITCH, pitch), (RANGE, pitch_range))
        for parameter, value in settings:
            if self._lib.espeak_SetParameter(parameter, int(value), 0) != EE_OK:
                raise ValueError(f"espeak-ng rejected parameter {parameter} = {value}")

    def phoneme_count(self, word: str) -> int:
        """How many phonemes the current voice uses for ``word`` said on its own."""
        buffer = ctypes.create_string_buffer(word.encode("utf-8") + b"\0")
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        mode = ord(PHONEME_SEPARATOR) << 8
        phonemes = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), CHARS_UTF8, mode) or b""
        return sum(1 for part in phonemes.decode().split(PHONEME_SEPARATOR) if part.strip())

    def synthesize(self, text: str) -> Synthesis:
        """Speak ``text`` with the current voice and prosody.

        Parameters
        ----------
        text : str
            Plain text (not SSML).

        Returns
        -------
        Synthesis
            The samples at the native rate with the word and phoneme events.
        """
        self._chunks, self._words, self._phonemes = [], [], []
        encoded = text.encode("utf-8") + b"\0"
        buffer = ctypes.create_string_buffer(encoded, len(encoded))
        status = self._lib.espeak_Synth(
            buffer, len(encoded), 0, POS_CHARACTER, 0, CHARS_UTF8 | END_PAUSE, None, None
        )
        if status != EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Synthesis(samples.astype(np.int16), self.sample_rate, self._words, self._phonemes)


def _anchor_events(token_offsets: list[int], words: list[WordEvent]) -> list[int | None]:
    """Assign word events to tokens in order; ``None`` for a token that got no event."""
    starts: list[int | None] = [None] * len(token_offsets)
    cursor, last_sample = 0, -1
    for event in words:
        if event.char_start < 0 or event.sample <= last_sample or cursor >= len(starts):
            continue
        # The token whose span holds the event, but never one already passed: a position
        # that is off by one then still lands on the next unassigned token.
        index = max(cursor, bisect.bisect_right(token_offsets, event.char_start) - 1)
        if index < len(starts):
            starts[index], cursor, last_sample = event.sample, index + 1, event.sample
    if starts and starts[0] is None:
        starts[0] = 0
    return starts


def word_onsets(
    token_offsets: list[int],
    fused_counts: list[int],
    synthesis: Synthesis,
    end_sample: int,
) -> list[int]:
    """Onset sample of every token of the synthesised text (see the module docstring).

    Parameters
    ----------
    token_offsets : list[int]
        Character offset of each whitespace-separated token, increasing.
    fused_counts : list[int]
        Phoneme count of each token said on its own (:meth:`Espeak.phoneme_count`).
    synthesis : Synthesis
        The synthesis of the text.
    end_sample : int
        Where the last group ends (the end of voiced audio).

    Returns
    -------
    list[int]
        One onset per token at the native rate, strictly increasing.
    """
    starts = _anchor_events(token_offsets, synthesis.words)
    anchors = [index for index, start in enumerate(starts) if start is not None]
    for position, anchor in enumerate(anchors):
        stop = anchors[position + 1] if position + 1 < len(anchors) else len(starts)
        group_end = starts[stop] if stop < len(starts) else end_sample
        fused = list(range(anchor + 1, stop))
        if not fused:
            continue
        inside = [p.sample for p in synthesis.phonemes if starts[anchor] <= p.sample < group_end]
        needed = sum(fused_counts[index] for index in fused)
        if len(inside) > needed:  # the anchor word keeps at least its first phoneme
            # The fused words are the group's last phonemes, each as long as said on its own.
            cut = len(inside)
            for index in reversed(fused):
                cut -= fused_counts[index]
                starts[index] = inside[cut]
        else:  # too few phonemes reported: share the group's span evenly
            step = (group_end - starts[anchor]) / (len(fused) + 1)
            for rank, index in enumerate(fused, start=1):
                starts[index] = int(starts[anchor] + rank * step)
    return _strictly_increasing([int(start) for start in starts])


def _strictly_increasing(starts: list[int]) -> list[int]:
    """Nudge equal onsets apart by one sample so that every word has a positive duration."""
    for index in range(1, len(starts)):
        starts[index] = max(starts[index], starts[index - 1] + 1)
    return starts
