"""Behaviour datasets: BasicMotions (bundled in the `aeon` wheel) and a user's own `.npz`.

All datasets are [N, T, F] float32 arrays, zero-padded, with `lengths` [N] and string labels.

The `.npz` format for your own data:
- ``X``: float array [N, T, F] (frames × features, zero-padded after each sequence's end)
- ``lengths`` (optional): int array [N], real frames per sequence (default: T for all)
- ``y``: string labels [N]
- ``X_test``, ``lengths_test``, ``y_test`` (optional): an official test split; without them a
  seeded stratified 25 % split of ``X`` is held out as the test set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("basic-motions",)


class DatasetError(Exception):
    """The dataset cannot be loaded or is malformed (message says what to fix)."""


@dataclass
class SequenceSet:
    """Padded sequences with their real lengths and labels."""

    x: np.ndarray  # [N, T, F] float32
    lengths: np.ndarray  # [N] int64
    y: np.ndarray  # [N] str

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> SequenceSet:
        return SequenceSet(self.x[idx], self.lengths[idx], self.y[idx])

    @property
    def feature_dim(self) -> int:
        return int(self.x.shape[2])


@dataclass
class Dataset:
    """A named train/test pair."""

    name: str
    train: SequenceSet
    test: SequenceSet

    def fingerprint(self) -> str:
        """sha256 over both splits' values and labels: identifies the exact training data."""
        h = hashlib.sha256()
        for part in (self.train, self.test):
            h.update(np.ascontiguousarray(part.x, dtype=np.float32).tobytes())
            h.update(np.ascontiguousarray(part.lengths, dtype=np.int64).tobytes())
            h.update("\x1f".join(map(str, part.y)).encode())
        return "sha256:" + h.hexdigest()


def _checked(x: np.ndarray, lengths: np.ndarray | None, y: np.ndarray, what: str) -> SequenceSet:
    x = np.asarray(x)
    if x.ndim != 3:
        raise DatasetError(f"{what}: X must be [N, T, F], got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DatasetError(f"{what}: X must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"{what}: X contains NaN or infinite values")
    y = np.asarray(y).astype(str)
    if y.shape != (x.shape[0],):
        raise DatasetError(f"{what}: y must have one label per sequence ({x.shape[0]})")
    if lengths is None:
        lengths = np.full(x.shape[0], x.shape[1], dtype=np.int64)
    lengths = np.asarray(lengths).astype(np.int64)
    if lengths.shape != (x.shape[0],) or (lengths < 1).any() or (lengths > x.shape[1]).any():
        raise DatasetError(f"{what}: lengths must be [N] integers in 1..T={x.shape[1]}")
    return SequenceSet(x, lengths, y)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): `fraction` of each class held out (at least one if >1 member)."""
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    held: list[int] = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n = round(len(idx) * fraction)
        n = min(max(n, 1 if len(idx) > 1 else 0), len(idx) - 1)
        held.extend(idx[:n])
        keep.extend(idx[n:])
    return np.sort(np.array(keep, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))


# BasicMotions as shipped with the checkpoint (exported once from the `aeon` wheel, 140 KB):
# retraining in a server or an image without the training dependencies reads it from here.
BUNDLED_BASIC_MOTIONS = (
    Path(__file__).resolve().parents[2] / "data" / "models" / "basic_motions.npz"
)


def load_basic_motions() -> Dataset:
    """BasicMotions (UEA): 6 channels (accelerometer + gyroscope) × 100 steps, 40/40 split.

    From `data/models/basic_motions.npz` when present (the same values, so the same
    fingerprint), else from the `aeon` package."""
    if BUNDLED_BASIC_MOTIONS.is_file():
        bundled = load_npz(BUNDLED_BASIC_MOTIONS)
        return Dataset("basic-motions", bundled.train, bundled.test)
    try:
        from aeon.datasets import load_basic_motions as _load
    except ImportError as exc:  # training-only dependency group
        raise DatasetError("BasicMotions needs the `aeon` package (uv sync --group train)") from exc
    parts = {}
    for split in ("train", "test"):
        x, y = _load(split=split)  # x: [N, C, T]
        parts[split] = _checked(np.transpose(x, (0, 2, 1)), None, y, f"BasicMotions {split}")
    return Dataset("basic-motions", parts["train"], parts["test"])


def load_npz(path: str | Path, seed: int = 0) -> Dataset:
    """A user's `.npz` (format in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise DatasetError(f"{path} is not a readable .npz file: {exc}") from exc
    for key in ("X", "y"):
        if key not in arrays:
            raise DatasetError(f"{path} has no '{key}' array (found: {sorted(arrays)})")
    full = _checked(arrays["X"], arrays.get("lengths"), arrays["y"], str(path))
    if "X_test" in arrays:
        if "y_test" not in arrays:
            raise DatasetError(f"{path} has X_test but no y_test")
        test = _checked(arrays["X_test"], arrays.get("lengths_test"), arrays["y_test"], "test")
        if test.feature_dim != full.feature_dim:
            raise DatasetError("X_test must have the same feature dimension as X")
        train = full
    else:
        keep, held = stratified_split(full.y, 0.25, seed)
        train, test = full.subset(keep), full.subset(held)
    return Dataset(path.stem, train, test)


def load_dataset(name: str | None = None, npz: str | Path | None = None, seed: int = 0) -> Dataset:
    if npz:
        return load_npz(npz, seed=seed)
    if name in (None, "basic-motions"):
        return load_basic_motions()
    raise DatasetError(f"unknown dataset '{name}'; choose one of {', '.join(DATASETS)}")
