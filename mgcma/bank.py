"""A reference bank: embeddings of known utterances, their 2-D maps, and matched-pair statistics.

Built once by `python -m train bank` (which fits UMAP and the PCA there, never on a request
path) and read here. It places a new utterance among the bank's: its nearest neighbours, its
position on the 2-D maps (the inverse-distance-weighted mean of its neighbours' map coordinates:
milliseconds, where a UMAP transform takes seconds) and the percentile of its W2 distance,
similarity and overlap among the bank's matched speech–text pairs. One cosine search per
embedding gives both its neighbours and its map position; what depends on the bank alone (unit
vectors, sorted statistics, the means on the principal axes) is computed once, at load.

Files: `bank.safetensors` (arrays) and `bank.json` (per-utterance metadata and build facts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from mgcma.files import as_umask_allows

ARRAYS_NAME, META_NAME = "bank.safetensors", "bank.json"
PLACEMENT_NEIGHBOURS = 10  # neighbours averaged to place a new point on a map
STATISTICS = ("w2_distance", "similarity", "overlap", "instance_similarity")
REQUIRED = (
    "speech",
    "text",
    "fused",
    "speech_xy",
    "text_xy",
    "fused_xy",
    "speech_mu",
    "text_mu",
    "speech_sigma",
    "text_sigma",
    "pca_axes",
    "pca_center",
)


class BankError(ValueError):
    """A bank directory is missing, corrupt or inconsistent."""


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)


@dataclass
class ReferenceBank:
    """Arrays are float32; N utterances, k instance width, h fused width, g Gaussian width.

    arrays: speech (N, k), text (N, k), fused (N, h), speech_xy / text_xy / fused_xy (N, 2),
    speech_mu / text_mu / speech_sigma / text_sigma (N, g), pca_axes (2, g), pca_center (g,),
    and one (N,) array per name in STATISTICS.
    meta: {"ids", "texts", "labels", "speakers", "groups": lists of N, "emotions", …}
    """

    arrays: dict[str, np.ndarray]
    meta: dict

    def __post_init__(self) -> None:
        self.arrays = {k: np.asarray(v, dtype=np.float32) for k, v in self.arrays.items()}
        missing = [name for name in REQUIRED if name not in self.arrays]
        if missing:
            raise BankError(f"the bank lacks array(s): {', '.join(missing)}")
        count = len(self.arrays["speech"])
        lengths = {k: len(v) for k, v in self.arrays.items() if k not in ("pca_axes", "pca_center")}
        wrong = {k: n for k, n in lengths.items() if n != count}
        wrong.update(
            {
                k: len(self.meta.get(k, []))
                for k in ("ids", "texts", "labels")
                if len(self.meta.get(k, [])) != count
            }
        )
        if wrong:
            raise BankError(f"the bank's arrays disagree in length ({count} expected): {wrong}")
        # normalised copies for cosine search; the instance space and its map are joint
        self._unit = {kind: _unit(self.arrays[kind]) for kind in ("speech", "text", "fused")}
        self._joint = np.concatenate([self._unit["speech"], self._unit["text"]])  # (2N, k)
        self._joint_xy = np.concatenate([self.arrays["speech_xy"], self.arrays["text_xy"]])
        self._sorted = {s: np.sort(self.arrays[s]) for s in STATISTICS if s in self.arrays}
        axes, center = self.arrays["pca_axes"], self.arrays["pca_center"]  # (2, g), (g,)
        self._projected = {
            m: (self.arrays[f"{m}_mu"] - center) @ axes.T for m in ("speech", "text")
        }  # (N, 2) each

    def __len__(self) -> int:
        return len(self.arrays["speech"])

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file(
            {
                k: np.ascontiguousarray(
                    v, dtype=np.float16 if v.ndim == 2 and k != "pca_axes" else np.float32
                )
                for k, v in self.arrays.items()
            },
            str(directory / ARRAYS_NAME),
        )
        as_umask_allows(directory / ARRAYS_NAME)  # safetensors writes its files 0600
        (directory / META_NAME).write_text(json.dumps(self.meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ReferenceBank:
        directory = Path(directory)
        for name in (ARRAYS_NAME, META_NAME):
            if not (directory / name).is_file():
                raise BankError(f"{directory} has no {name}: not a reference bank")
        try:
            arrays = load_file(str(directory / ARRAYS_NAME))
            meta = json.loads((directory / META_NAME).read_text())
        except (SafetensorError, OSError, ValueError) as error:
            raise BankError(f"{directory}: the bank is corrupt: {error}") from error
        return cls(arrays, meta)

    # -- queries ------------------------------------------------------------------------------

    def search(
        self, embedding: np.ndarray, kind: str, k: int = 8
    ) -> tuple[list[dict], tuple[float, float]]:
        """One cosine search: the k bank utterances of `kind` nearest to `embedding`, and its
        position on `kind`'s map (speech and text share one map, the fused its own)."""
        if kind not in self._unit:
            raise ValueError(f"kind must be speech, text or fused, not {kind!r}")
        query = _unit(np.asarray(embedding, dtype=np.float32))
        if kind == "fused":
            pool_cosine = self._unit["fused"] @ query  # (N,)
            cosine, coordinates = pool_cosine, self.arrays["fused_xy"]
        else:
            pool_cosine = self._joint @ query  # (2N,): the speech rows, then the text rows
            half = slice(0, len(self)) if kind == "speech" else slice(len(self), None)
            cosine, coordinates = pool_cosine[half], self._joint_xy
        return self._top(cosine, kind, k), _weighted_position(1.0 - pool_cosine, coordinates)

    def nearest(self, embedding: np.ndarray, kind: str = "fused", k: int = 8) -> list[dict]:
        """The k bank utterances closest in cosine distance to `embedding` of `kind`."""
        return self.search(embedding, kind, k)[0]

    def place(self, embedding: np.ndarray, kind: str) -> tuple[float, float]:
        """A 2-D map position: inverse-distance-weighted mean of the closest bank points."""
        return self.search(embedding, kind, 0)[1]

    def _top(self, cosine: np.ndarray, kind: str, k: int) -> list[dict]:
        k = min(k, len(cosine))
        if k == 0:
            return []
        top = np.argpartition(-cosine, k - 1)[:k]
        top = top[np.argsort(-cosine[top])]
        xy = self.arrays[f"{kind}_xy"]
        return [self._describe(int(i), 1.0 - float(cosine[i]), xy[i]) for i in top]

    def _describe(self, index: int, distance: float, xy: np.ndarray) -> dict:
        meta = self.meta
        return {
            "index": index,
            "id": meta["ids"][index],
            "text": meta["texts"][index],
            "label": meta["labels"][index],
            "speaker": meta.get("speakers", [""] * len(self))[index],
            "distance": round(distance, 4),
            "x": float(xy[0]),
            "y": float(xy[1]),
        }

    def percentile(self, statistic: str, value: float) -> float | None:
        """Share (in %) of the bank's matched pairs whose `statistic` is at most `value`."""
        values = self._sorted.get(statistic)
        if values is None or value is None or not np.isfinite(value):
            return None
        return float(100.0 * np.searchsorted(values, value, side="right") / len(values))

    def annotate(self, analysis, k: int = 8) -> None:
        """Fill `analysis.neighbours` (fused), `.speech_neighbours`, `.map_position` and
        `.percentiles` in place: one search per embedding."""
        positions, neighbours = {}, {}
        for kind, embedding in (
            ("speech", analysis.speech_embedding),
            ("text", analysis.text_embedding),
            ("fused", analysis.fused_embedding),
        ):
            if embedding is not None and embedding.shape[-1] == self.arrays[kind].shape[-1]:
                found, position = self.search(embedding, kind, k if kind != "text" else 0)
                neighbours[kind], positions[kind] = found, list(position)
        analysis.map_position = positions or None
        analysis.neighbours = neighbours.get("fused", analysis.neighbours)
        analysis.speech_neighbours = neighbours.get("speech", analysis.speech_neighbours)
        analysis.percentiles = {
            name: self.percentile(name, getattr(analysis, name))
            for name in STATISTICS
            if getattr(analysis, name, None) is not None
        } or None

    def projected_means(self) -> dict[str, np.ndarray]:
        """Bank Gaussian means on the distribution view's two principal axes: (N, 2) each,
        projected once at load."""
        return self._projected


def _weighted_position(distance: np.ndarray, coordinates: np.ndarray) -> tuple[float, float]:
    """Inverse-distance-weighted mean of the map coordinates of the closest points: (M,) → x, y."""
    k = min(PLACEMENT_NEIGHBOURS, len(distance))
    top = np.argpartition(distance, k - 1)[:k]
    weights = 1.0 / (np.maximum(distance[top], 0.0) + 1e-3)
    x, y = (coordinates[top] * weights[:, None]).sum(0) / weights.sum()
    return float(x), float(y)
