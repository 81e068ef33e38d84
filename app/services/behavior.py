"""Behaviour analysis: validate feature sequences, score them with the batched model, decide.

`anomaly_score` is the summed probability of the labels that are not normal (by default
everything except standing and walking); a sequence is an anomaly when it reaches the
threshold (the checkpoint's, chosen on training data, or `ANOMALY_THRESHOLD`).
Other services (events/episodes) call `analyze` / `analyze_many` directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.errors import ValidationFailed
from app.core.settings import ModelSettings
from app.ml import DEFAULT_NORMAL_LABELS
from app.ml.batcher import InferenceBatcher, Prediction
from app.schemas.behavior import ModelInfo


@dataclass(frozen=True)
class AnalysisResult:
    """The verdict for one sequence."""

    is_anomaly: bool
    normal_score: float
    anomaly_score: float
    threshold: float
    top_label: str
    labels: list[str]
    scores: dict[str, float]
    model_version: str
    inference_ms: float


class BehaviorService:
    """Scores frame-wise feature sequences with the in-process LSTM."""

    def __init__(self, batcher: InferenceBatcher, settings: ModelSettings) -> None:
        self.batcher = batcher
        self.settings = settings

    @property
    def normal_labels(self) -> frozenset[str]:
        ckpt = self.batcher.checkpoint
        return frozenset(ckpt.normal_labels) if ckpt else DEFAULT_NORMAL_LABELS

    @property
    def threshold(self) -> float:
        return self.batcher.threshold

    def model_info(self) -> ModelInfo:
        """Checkpoint metadata and metrics (no weights); 503 when no model is loaded."""
        if self.batcher.checkpoint is None:
            raise self.batcher.unavailable()
        # The response schema itself: it keeps whatever else the checkpoint records (`format`).
        return ModelInfo.model_validate(
            {
                **self.batcher.checkpoint.metadata(),
                "threshold": self.threshold,
                "checkpoint_threshold": self.batcher.checkpoint.threshold,
                "max_sequence_length": self.settings.max_sequence_length,
            }
        )

    async def analyze(self, sequence: Sequence[Sequence[float]]) -> AnalysisResult:
        return (await self.analyze_many([sequence], _single=True))[0]

    async def analyze_many(
        self, sequences: Sequence[Sequence[Sequence[float]]], *, _single: bool = False
    ) -> list[AnalysisResult]:
        """Results in input order; concurrent callers share forward passes."""
        if not self.batcher.loaded:
            raise self.batcher.unavailable()
        if not isinstance(sequences, list | tuple) or not sequences:
            raise ValidationFailed("sequences must be a non-empty list of sequences")
        arrays = [
            self._to_array(seq, "sequence" if _single else f"sequences[{i}]")
            for i, seq in enumerate(sequences)
        ]
        outputs = await self.batcher.predict(arrays)
        return [self._verdict(p) for p in outputs]

    def _to_array(self, sequence: Any, where: str) -> np.ndarray:
        ckpt = self.batcher.checkpoint
        assert ckpt is not None
        dim = ckpt.feature_dim
        max_len = self.settings.max_sequence_length
        # Fast path: a well-formed list of frames converts in one C call (the schema already
        # made every feature a number); anything else walks the frames below to say what and
        # where is wrong.
        if isinstance(sequence, list | tuple) and 0 < len(sequence) <= max_len:
            try:
                arr = np.asarray(sequence)
            except (TypeError, ValueError):  # ragged frames
                pass
            else:
                if arr.ndim == 2 and arr.shape[1] == dim and arr.dtype.kind in "iuf":
                    with np.errstate(over="ignore"):  # out-of-range values become inf
                        arr = arr.astype(np.float32)
                    if np.isfinite(arr).all():
                        return arr
        return self._checked_array(sequence, where, dim, max_len)

    def _checked_array(self, sequence: Any, where: str, dim: int, max_len: int) -> np.ndarray:
        if not isinstance(sequence, list | tuple):
            raise ValidationFailed(
                f"{where} must be a list of frames (each a list of {dim} numbers)"
            )
        if not sequence:
            raise ValidationFailed(f"{where} is empty; send at least one frame of {dim} numbers")
        if len(sequence) > max_len:
            raise ValidationFailed(
                f"{where} has {len(sequence)} frames; the maximum is {max_len} "
                "(MAX_SEQUENCE_LENGTH): send the most recent frames"
            )
        for t, frame in enumerate(sequence):
            if not isinstance(frame, list | tuple):
                raise ValidationFailed(f"{where} frame {t} is not a list of {dim} numbers")
            if len(frame) != dim:
                raise ValidationFailed(
                    f"{where} frame {t} has {len(frame)} features; the model expects {dim} "
                    "numbers per frame"
                )
        arr = np.asarray(sequence)
        if arr.dtype.kind not in "iuf":
            for t, frame in enumerate(sequence):
                for f, v in enumerate(frame):
                    if isinstance(v, bool) or not isinstance(v, int | float):
                        raise ValidationFailed(
                            f"{where} frame {t} feature {f} is {type(v).__name__}; "
                            "features must be numbers"
                        )
            raise ValidationFailed(f"{where} features must be numbers")
        with np.errstate(over="ignore"):  # out-of-range values become inf, reported below
            arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            t, f = (int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            value = sequence[t][f]
            shown = value if isinstance(value, float) and not math.isfinite(value) else "too large"
            raise ValidationFailed(
                f"{where} frame {t} feature {f} is {shown}; features must be finite numbers "
                "(within ±3.4e38)"
            )
        return arr

    def _verdict(self, prediction: Prediction) -> AnalysisResult:
        # The version that ran the batch, not whatever serves now (a swap may be under way).
        ckpt, ms = prediction.checkpoint, prediction.ms
        normal = set(ckpt.normal_labels)
        scores = {label: float(p) for label, p in zip(ckpt.labels, prediction.probs, strict=True)}
        normal_score = sum(p for label, p in scores.items() if label in normal)
        normal_score = min(1.0, max(0.0, normal_score))
        anomaly_score = 1.0 - normal_score
        threshold = self.batcher.threshold_of(ckpt)
        return AnalysisResult(
            is_anomaly=anomaly_score >= threshold,
            normal_score=normal_score,
            anomaly_score=anomaly_score,
            threshold=threshold,
            top_label=max(scores, key=scores.__getitem__),
            labels=list(ckpt.labels),
            scores=scores,
            model_version=ckpt.model_version,
            inference_ms=round(ms, 3),
        )
