"""Sentence templates and word lists for the synthetic corpus.

A sentence is a template whose slots are filled from word lists. The *emotion slots* take words
of the sentence's text emotion: ``{feel}`` (how a person feels: "furious", "ready"), ``{thing}``
(how something was: "outrageous", "printed"), ``{noun}`` (an event or thing: "insult",
"meeting") and ``{verb}`` (a past-tense action: "wrecked", "filed"). Every template has at least
one emotion slot, and every template is filled with neutral words as often as with emotional
ones, so neither the template nor the neutral fillers (``{s}`` subjects, ``{obj}`` objects,
``{time}``, ``{place}``) say anything about the label: only the emotion words do.

Templates are declarative and end in a full stop; the synthesiser, not the transcript, turns it
into an exclamation when the prosody is aroused (see :mod:`train.synth`). Words contain no
apostrophes, hyphens or digits, so that espeak-ng reports exactly one word event per
whitespace-separated token. Some fillings are a little odd ("I have never been this upstairs
before"); that is the price of independence between template and emotion, and harmless here.
"""

import re

import numpy as np

from mgcma.constants import EMOTIONS

# Subjects with the verb forms that agree with them: (subject, be, have, was).
SUBJECTS: tuple[tuple[str, str, str, str], ...] = (
    ("I", "am", "have", "was"),
    ("we", "are", "have", "were"),
    ("they", "are", "have", "were"),
    ("she", "is", "has", "was"),
    ("he", "is", "has", "was"),
    ("my brother", "is", "has", "was"),
    ("my sister", "is", "has", "was"),
    ("our neighbor", "is", "has", "was"),
    ("the kids", "are", "have", "were"),
    ("my boss", "is", "has", "was"),
    ("your mother", "is", "has", "was"),
    ("the team", "is", "has", "was"),
)

OBJECTS = (
    "the boxes", "the files", "my car", "the chairs", "our tickets", "the keys", "her laptop",
    "the garden", "the windows", "the papers", "his notes", "the table", "the phone",
    "the letters", "the bicycle", "the groceries", "the curtains", "my jacket",
)  # fmt: skip
TIMES = (
    "today", "yesterday", "this morning", "last night", "on Monday", "this afternoon",
    "again", "at noon", "last week", "on Friday", "this evening", "after lunch",
)  # fmt: skip
PLACES = (
    "at work", "at home", "in the office", "downtown", "at school", "in the car",
    "at the station", "in the hallway", "at the store", "in the lobby", "at the bank",
)  # fmt: skip

# Emotion words per text emotion. Neutral rows are the same parts of speech without affect.
FEEL: dict[str, tuple[str, ...]] = {
    "neutral": (
        "ready", "busy", "awake", "seated", "outside", "upstairs", "downstairs", "nearby",
        "available", "early", "listening", "working", "waiting", "dressed", "packed",
    ),
    "happy": (
        "happy", "thrilled", "delighted", "excited", "glad", "overjoyed", "cheerful", "proud",
        "grateful", "ecstatic", "joyful", "elated", "lucky", "relieved", "pleased",
    ),
    "angry": (
        "angry", "furious", "livid", "outraged", "fed up", "mad", "annoyed", "irritated",
        "enraged", "infuriated", "disgusted", "hostile", "resentful", "frustrated", "bitter",
    ),
    "sad": (
        "sad", "heartbroken", "miserable", "lonely", "depressed", "gloomy", "hopeless",
        "devastated", "crushed", "unhappy", "sorrowful", "grieving", "tearful", "defeated",
        "broken",
    ),
}  # fmt: skip
THING: dict[str, tuple[str, ...]] = {
    "neutral": (
        "square", "blue", "printed", "scheduled", "open", "closed", "full", "wooden",
        "plastic", "grey", "standard", "normal", "typical", "numbered",
    ),
    "happy": (
        "wonderful", "amazing", "fantastic", "perfect", "beautiful", "brilliant", "lovely",
        "awesome", "delightful", "marvelous", "incredible", "terrific", "superb", "gorgeous",
    ),
    "angry": (
        "outrageous", "ridiculous", "unacceptable", "disgusting", "insulting", "pathetic",
        "absurd", "infuriating", "stupid", "rude", "unfair", "shameful", "intolerable",
        "offensive",
    ),
    "sad": (
        "tragic", "painful", "heartbreaking", "depressing", "bleak", "dismal", "mournful",
        "dreary", "pitiful", "unbearable", "sorry", "lonesome", "grim", "cheerless",
    ),
}  # fmt: skip
NOUN: dict[str, tuple[str, ...]] = {
    "neutral": (
        "meeting", "report", "schedule", "delivery", "form", "update", "lecture", "train",
        "package", "invoice", "budget", "memo", "appointment", "inventory",
    ),
    "happy": (
        "party", "celebration", "surprise", "gift", "vacation", "wedding", "promotion",
        "victory", "reunion", "festival", "holiday", "prize", "compliment", "success",
    ),
    "angry": (
        "insult", "lie", "mess", "scam", "betrayal", "nonsense", "excuse", "fraud",
        "disgrace", "ripoff", "cheat", "garbage", "racket", "threat",
    ),
    "sad": (
        "funeral", "loss", "goodbye", "grief", "tears", "breakup", "illness", "divorce",
        "accident", "failure", "farewell", "memorial", "heartache", "sorrow",
    ),
}  # fmt: skip
VERB: dict[str, tuple[str, ...]] = {
    "neutral": (
        "moved", "checked", "filed", "printed", "counted", "opened", "closed", "labelled",
        "sorted", "copied", "measured", "carried", "signed", "cleaned",
    ),
    "happy": (
        "loved", "enjoyed", "celebrated", "won", "adored", "treasured", "praised",
        "welcomed", "cheered", "hugged", "admired", "embraced",
    ),
    "angry": (
        "ruined", "wrecked", "smashed", "stole", "destroyed", "trashed", "ignored",
        "cheated", "insulted", "sabotaged", "broke", "blamed",
    ),
    "sad": (
        "lost", "missed", "buried", "mourned", "abandoned", "forgot", "failed", "regretted",
        "grieved", "cried over", "gave away", "left behind",
    ),
}  # fmt: skip

# {s}/{be}/{have}/{was}: one subject; {s2}/{be2}/{was2}: a second, independently drawn one.
TEMPLATES: tuple[str, ...] = (
    "{S} {be} {feel} {time}.",
    "{S} {be} so {feel} about the {noun}.",
    "The {noun} was {thing}.",
    "{S} {verb} {obj} {time}.",
    "That {noun} {place} was really {thing}.",
    "Honestly, {s} {be} {feel} right now.",
    "{S} {have} never been this {feel} before.",
    "It was a {thing} {noun}.",
    "{S} {verb} {obj} and it felt {thing}.",
    "After the {noun}, {s} {be} {feel}.",
    "{S} told me the {noun} was {thing}.",
    "{S} {verb} {obj} {place}.",
    "Everyone says the {noun} is {thing}.",
    "{S} {was} {feel} when {s2} {verb} {obj}.",
    "The whole {noun} felt {thing} to me.",
    "{S} {be} still {feel} about what happened {time}.",
    "This {noun} is {thing}.",
    "{S} just {verb} {obj}.",
    "I cannot believe {s} {verb} {obj}.",
    "{S} {be} feeling {feel} {place}.",
    "What a {thing} {noun} that was.",
    "{S} {have} been {feel} since the {noun}.",
    "The news about the {noun} was {thing}.",
    "{S} {verb} {obj} right after the {noun}.",
    "To be honest, the {noun} {time} was {thing}.",
    "{S} {was} {feel} all day {place}.",
    "We talked about the {noun} {time}.",
    "{S} {verb} {obj} {time}, and {s2} {be2} {feel}.",
    "My friend said the {noun} looked {thing}.",
    "{S} {be} {feel}, and the {noun} was {thing}.",
    "Somebody {verb} {obj} {place}.",
    "{S} came home {feel} after the {noun}.",
    "There was a {thing} {noun} {place}.",
    "{S} {be} {feel} that {s2} {verb} {obj}.",
    "It is {thing} that {s} {verb} {obj}.",
    "Nobody expected the {noun} to be so {thing}.",
    "{S} kept thinking about the {noun} {time}.",
    "{S} looked {feel} when the {noun} started.",
    "Apparently {s} {verb} {obj} {time}.",
    "The {noun} was {thing}, and {s} {be} {feel}.",
    "{S} {have} a {thing} feeling about the {noun}.",
    "All of us were {feel} {place} {time}.",
    "I heard that {s} {verb} {obj}.",
    "The way {s} {verb} {obj} was {thing}.",
    "{S} said that {s2} {was2} {feel}.",
    "Then the {noun} happened and {s} {be} {feel}.",
)

_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")
_PUNCTUATION = ",.!?;:"


def _choice(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def make_sentence(emotion: str, rng: np.random.Generator) -> str:
    """A random sentence whose wording carries ``emotion``.

    Parameters
    ----------
    emotion : str
        One of :data:`~mgcma.constants.EMOTIONS`; ``"neutral"`` gives affect-free wording.
    rng : np.random.Generator
        The only source of randomness, so the same generator state gives the same sentence.

    Returns
    -------
    str
        A capitalised sentence ending in a full stop, e.g. "My boss was livid at the bank."
    """
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; expected one of {EMOTIONS}")
    template = _choice(rng, TEMPLATES)
    first = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
    second = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
    fills = {
        "S": first[0][0].upper() + first[0][1:],
        "s": first[0],
        "be": first[1],
        "have": first[2],
        "was": first[3],
        "s2": second[0],
        "be2": second[1],
        "was2": second[3],
        "obj": _choice(rng, OBJECTS),
        "time": _choice(rng, TIMES),
        "place": _choice(rng, PLACES),
        "feel": _choice(rng, FEEL[emotion]),
        "thing": _choice(rng, THING[emotion]),
        "noun": _choice(rng, NOUN[emotion]),
        "verb": _choice(rng, VERB[emotion]),
    }
    return _A_BEFORE_VOWEL.sub(r"\1n ", template.format(**fills))


def sentence_words(text: str) -> list[tuple[str, int]]:
    """The words of a sentence with their character offsets, punctuation stripped.

    Returns
    -------
    list[tuple[str, int]]
        ``(word, offset)`` per whitespace-separated token, e.g. ``[("The", 0), ("noun", 4)]``.
    """
    words = []
    for match in re.finditer(r"\S+", text):
        word = match.group().strip(_PUNCTUATION)
        if word:
            words.append((word, match.start()))
    return words
