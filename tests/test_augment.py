"""Augmentation: each degradation measurably does what it says, and old settings draw the same."""

import numpy as np
import pytest

from train.augment import Augmenter, add_noise, reverberate, room_impulse, telephone
from train.settings import AugmentSettings

RATE = 16000


def _tones(*hertz: float, seconds: float = 1.0) -> np.ndarray:
    times = np.arange(int(RATE * seconds)) / RATE
    return sum(0.2 * np.sin(2 * np.pi * f * times) for f in hertz).astype(np.float32)


def _band_gain(before: np.ndarray, after: np.ndarray, hertz: float) -> float:
    """|after| / |before| at one frequency (1-s clips: bin = Hz)."""
    return float(np.abs(np.fft.rfft(after))[int(hertz)] / np.abs(np.fft.rfft(before))[int(hertz)])


@pytest.mark.parametrize("rt60", [0.3, 0.7])
def test_a_room_decays_60_db_in_its_reverberation_time(rt60):
    impulse = room_impulse(rt60, 0.0, np.random.default_rng(0))
    energy = np.cumsum(impulse[::-1] ** 2)[::-1]
    decay = 10 * np.log10(energy[1:] / energy[1])  # Schroeder's backward integral of the tail
    times = np.arange(1, len(impulse)) / RATE
    t5, t25 = times[np.argmax(decay < -5)], times[np.argmax(decay < -25)]
    assert 3 * (t25 - t5) == pytest.approx(rt60, rel=0.1)  # T20, extrapolated to 60 dB
    assert impulse[0] == 1.0 and np.sum(impulse[1:] ** 2) == pytest.approx(1.0)  # DRR 0 dB


def test_reverberation_smears_a_click_and_keeps_the_power():
    click = np.zeros(RATE, dtype=np.float32)
    click[1000] = 1.0
    wet = reverberate(click, 0.5, 0.0, np.random.default_rng(1))
    assert wet.shape == click.shape and wet.dtype == np.float32
    assert np.mean(wet**2) == pytest.approx(np.mean(click**2), rel=1e-4)
    assert np.count_nonzero(np.abs(wet[1100:]) > 1e-4) > RATE // 4  # a tail, long after
    assert np.abs(wet[:1000]).max() < 1e-6  # nothing before the sound (FFT rounding aside)


def test_telephone_keeps_the_voice_band_and_drops_the_rest():
    clip = _tones(150, 1000, 5000)
    line = telephone(clip)
    assert line.shape == clip.shape and line.dtype == np.float32
    assert _band_gain(clip, line, 1000) == pytest.approx(1.0, abs=0.1)
    assert _band_gain(clip, line, 5000) < 0.01  # above 4 kHz: gone
    assert _band_gain(clip, line, 150) < 0.35  # below 300 Hz: mostly gone


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_sits_at_the_asked_snr_with_its_colour(colour):
    clip = _tones(440, seconds=2.0)
    noise = add_noise(clip, 10.0, np.random.default_rng(2), colour).astype(np.float64) - clip
    assert 10 * np.log10(np.mean(clip**2) / np.mean(noise**2)) == pytest.approx(10.0, abs=0.1)
    power = np.abs(np.fft.rfft(noise)) ** 2
    low, high = power[200:400].mean(), power[6000:6200].mean()  # 100–200 Hz, 3–3.1 kHz
    if colour == "white":
        assert low / high == pytest.approx(1.0, rel=0.3)
    else:  # 1/f: ≈ 3050 / 150 = 20× more power per Hz at the low band
        assert 12 < low / high < 30
    with pytest.raises(ValueError, match="colour"):
        add_noise(clip, 10.0, np.random.default_rng(2), "brown")


def test_settings_without_the_new_degradations_draw_exactly_as_before():
    """reverb/telephone at 0 and white noise only: no extra random draw, so a run made before
    they existed augments the same clips the same way (and its cached copies stay valid)."""
    clip = _tones(220, 660)
    old = Augmenter(AugmentSettings())
    for seed in range(5):
        rng = np.random.default_rng(seed)
        expected = _old_augment(clip, np.random.default_rng(seed))
        np.testing.assert_array_equal(old(clip, rng), expected)


def _old_augment(samples, rng):
    """The previous release's Augmenter, verbatim in behaviour, for the default settings."""
    from train.augment import speed_perturb

    s = AugmentSettings()
    if rng.random() >= s.probability:
        return samples
    samples = speed_perturb(samples, 1.0 + rng.uniform(-s.speed, s.speed))
    samples = samples * 10 ** (rng.uniform(-s.gain_db, s.gain_db) / 20)
    if rng.random() < 0.5:
        snr = rng.uniform(s.noise_snr_db, s.noise_snr_db + 20)
        power = float(np.mean(samples.astype(np.float64) ** 2))
        noise = rng.standard_normal(samples.shape) * np.sqrt(power / 10 ** (snr / 10))
        samples = samples + noise.astype(np.float32)
    peak = float(np.abs(samples).max(initial=0.0))
    return (samples / peak if peak > 1.0 else samples).astype(np.float32)


def test_every_degradation_can_be_drawn_and_bad_settings_are_refused():
    settings = AugmentSettings(probability=1.0, reverb=1.0, telephone=1.0, pink_noise=True)
    clip = _tones(300, 1200)
    out = Augmenter(settings)(clip, np.random.default_rng(3))
    assert out.shape[0] > 0 and np.isfinite(out).all() and np.abs(out).max() <= 1.0
    power = np.abs(np.fft.rfft(out)) ** 2
    above = power[np.fft.rfftfreq(len(out), 1 / RATE) > 4000].sum()
    assert above / power.sum() < 1e-4  # the telephone ran last: nothing above 4 kHz, noise too
    with pytest.raises(ValueError, match="augment.reverb is a probability"):
        Augmenter(AugmentSettings(reverb=1.5))
    with pytest.raises(ValueError, match="reverb_rt60"):
        Augmenter(AugmentSettings(reverb=0.5, reverb_rt60=0.1))
