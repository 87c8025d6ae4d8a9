"""Colour arithmetic for tests that check what a figure's colours say: lightness, CIELAB distance
and the common colour-vision deficiencies (Machado, Oliveira & Fernandes 2009, severity 1)."""

from __future__ import annotations

import re

import numpy as np

DEFICIENCIES = {  # linear-RGB matrices
    "normal vision": np.eye(3),
    "protanopia": np.array([
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ]),
    "deuteranopia": np.array([
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ]),
    "tritanopia": np.array([
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ]),
}  # fmt: skip


def rgb(color: str) -> np.ndarray:
    """'#RRGGBB' or 'rgb(r, g, b)' → (3,) floats in 0..255."""
    if color.startswith("#"):
        return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    return np.array([float(v) for v in re.findall(r"[\d.]+", color)[:3]])


def _linear(values: np.ndarray) -> np.ndarray:
    c = values / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(color: str, deficiency: str = "normal vision") -> np.ndarray:
    """CIELAB (D65) of a colour as seen with `deficiency`."""
    linear = np.clip(DEFICIENCIES[deficiency] @ _linear(rgb(color)), 0.0, 1.0)
    to_xyz = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = to_xyz @ linear / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def lightness(color: str) -> float:
    """CIELAB L*: 0 black, 100 white."""
    return float(lab(color)[0])


def distance(a: str, b: str, deficiency: str = "normal vision") -> float:
    """CIE76 ΔE between two colours (about 2.3: just noticeable; over 20: clearly different)."""
    return float(np.linalg.norm(lab(a, deficiency) - lab(b, deficiency)))


def hue(color: str) -> float:
    """CIELAB hue angle in degrees."""
    _, a, b = lab(color)
    return float(np.degrees(np.arctan2(b, a)) % 360)


def scale_ends(colorscale) -> tuple[str, str]:
    """(colour of the lowest value, colour of the highest) of a plotly colour scale."""
    stops = sorted((float(position), color) for position, color in colorscale)
    return stops[0][1], stops[-1][1]
