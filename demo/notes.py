"""Notes the app shows beside a result, phrased from what the outputs themselves say."""

from __future__ import annotations

from mgcma.analysis import Analysis


def cause(error: Exception, message: str) -> str:
    """The root cause of a failure in a few words (the header has one line for it)."""
    if error.__cause__ is None:
        return message
    while error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


def _top(probs: dict[str, float]) -> tuple[str, float]:
    label = max(probs, key=probs.get)
    return label, probs[label]


def silence_note(level: float, analysis: Analysis, has_text: bool) -> str:
    """What a silent clip's result rests on, read from the outputs themselves: which side's
    answer the fused prediction follows (the voice side answers even for silence)."""
    label, prob = _top(analysis.probs)
    note = (
        f"The clip is silent ({level:.0f} dBFS): there is no speech to hear, so this result is "
        f"unreliable. The model still answers {label} ({prob:.0%})"
    )
    if analysis.speech_probs is not None and analysis.text_probs is not None:
        voice, voice_prob = _top(analysis.speech_probs)
        words, words_prob = _top(analysis.text_probs)
        follows = [side for side, top in (("voice", voice), ("words", words)) if top == label]
        if len(follows) == 2:
            source = "both sides"
        elif follows:
            source = f"the {follows[0]}"
        else:
            source = "neither side alone"
        words_side = f"the words side reads {words} ({words_prob:.0%})"
        note += (
            f": the voice side reads the silence as {voice} ({voice_prob:.0%}), "
            f"{words_side if has_text else 'there is no transcript'}, and the result follows "
            f"{source}"
        )
    elif not has_text:
        note += ", from silence and no transcript"
    return note + ". Check the microphone and record again."
