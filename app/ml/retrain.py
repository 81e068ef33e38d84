"""Retraining on operators' labels: the active version fine-tuned on the base training data
plus the labelled episodes, compared with the active version on the same data.

Recipe: warm start from the active version's weights, its normalisation and its threshold;
`epochs` passes (AdamW, one-cycle, lr 1e-3, the usual augmentation) over the base training
split plus the kept part of the feedback. A stratified quarter of the feedback (at least one
episode of each label that has two or more) is held out and never trained on: the candidate
and the active version are both scored on it and on the base test split. Fine-tuning keeps
what the base data taught (it stays in every epoch) and takes seconds, not the ten minutes of
the full ensemble-and-distil recipe.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from app.ml.checkpoint import BehaviorCheckpoint
from app.ml.data import Dataset, SequenceSet, stratified_split
from app.ml.model import pad_sequences
from app.ml.training import TrainConfig, anomaly_scores, train_network

MIN_FEEDBACK = 8
HOLD_OUT = 0.25
ALWAYS_NORMAL = frozenset({"normal"})


@dataclass(frozen=True)
class LabelledSequence:
    """One labelled episode's frames, as training takes them."""

    episode_id: str
    source_id: str
    label: str
    frames: np.ndarray  # [T, F] float32


@dataclass
class FeedbackSet:
    """Usable labelled episodes, and how many were left out and why."""

    items: list[LabelledSequence]
    skipped: dict[str, int] = field(default_factory=dict)

    def to_set(self, idx: Sequence[int] | np.ndarray, feature_dim: int) -> SequenceSet:
        chosen = [self.items[i] for i in idx]
        if not chosen:
            return SequenceSet(
                np.zeros((0, 1, feature_dim), np.float32),
                np.zeros(0, np.int64),
                np.array([], dtype=str),
            )
        x, lengths = pad_sequences([c.frames for c in chosen], feature_dim)
        return SequenceSet(x, lengths, np.array([c.label for c in chosen]))


def usable_feedback(
    rows: Sequence[tuple[str, str, str, list | None]], feature_dim: int, labels: Sequence[str]
) -> FeedbackSet:
    """(episode id, source id, label, stored frames) → the episodes training can use."""
    known = set(labels)
    items: list[LabelledSequence] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for episode_id, source_id, label, frames in rows:
        if not frames:
            skip("no stored sequence")
            continue
        if label not in known:
            skip("label unknown to the active model")
            continue
        try:
            arr = np.asarray(frames, dtype=np.float32)
        except (TypeError, ValueError):
            skip("unreadable sequence")
            continue
        if arr.ndim != 2 or arr.shape[1] != feature_dim or not np.isfinite(arr).all():
            skip(f"frames are not {feature_dim} finite features")
            continue
        items.append(LabelledSequence(episode_id, source_id, label, arr))
    return FeedbackSet(items, skipped)


def _concat(a: SequenceSet, b: SequenceSet) -> SequenceSet:
    if len(b) == 0:
        return a
    t = max(a.x.shape[1], b.x.shape[1])
    x = np.zeros((len(a) + len(b), t, a.feature_dim), np.float32)
    x[: len(a), : a.x.shape[1]] = a.x
    x[len(a) :, : b.x.shape[1]] = b.x
    return SequenceSet(x, np.concatenate([a.lengths, b.lengths]), np.concatenate([a.y, b.y]))


def figures(ckpt: BehaviorCheckpoint, data: SequenceSet, threshold: float) -> dict[str, Any]:
    """Accuracy (top label), false alarms (flagged, label normal) and misses on `data`."""
    if len(data) == 0:
        return {"n": 0, "accuracy": None, "false_alarms": 0, "misses": 0}
    probs = ckpt.build_classifier().predict_proba_padded(data.x, data.lengths)
    normal = set(ckpt.normal_labels) | ALWAYS_NORMAL
    flagged = anomaly_scores(probs, ckpt.labels, list(normal)) >= threshold
    actual = np.array([str(v) not in normal for v in data.y])
    predicted = np.array(ckpt.labels)[probs.argmax(1)]
    return {
        "n": len(data),
        "accuracy": round(float((predicted == data.y.astype(str)).mean()), 4),
        "false_alarms": int((flagged & ~actual).sum()),
        "misses": int((~flagged & actual).sum()),
    }


@dataclass
class RetrainOutcome:
    """The candidate checkpoint and the figures beside the active version's."""

    checkpoint: BehaviorCheckpoint
    candidate: dict[str, Any]
    active: dict[str, Any]
    held_out_ids: list[str]
    trained_on: dict[str, Any]
    train_seconds: float


def _fingerprint(data: SequenceSet) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.x, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(data.lengths, dtype=np.int64).tobytes())
    h.update("\x1f".join(map(str, data.y)).encode())
    return "sha256:" + h.hexdigest()


def retrain(
    active: BehaviorCheckpoint,
    base: Dataset,
    feedback: FeedbackSet,
    *,
    epochs: int = 30,
    seed: int = 7,
    threshold: float | None = None,
    log: Callable[[str], None] | None = None,
) -> RetrainOutcome:
    """Fine-tune `active` on `base.train` + most of `feedback`; score both on the rest."""
    log = log or (lambda _msg: None)
    if len(feedback.items) < MIN_FEEDBACK:
        raise ValueError(
            f"found {len(feedback.items)} labelled episodes with a stored sequence; "
            f"retraining needs at least {MIN_FEEDBACK}"
        )
    if base.train.feature_dim != active.feature_dim:
        raise ValueError(
            f"the base data has {base.train.feature_dim} features per frame; "
            f"the active model expects {active.feature_dim}"
        )
    started = time.perf_counter()
    labels = np.array([item.label for item in feedback.items])
    keep, held = stratified_split(labels, HOLD_OUT, seed)
    dim = active.feature_dim
    kept_set, held_set = feedback.to_set(keep, dim), feedback.to_set(held, dim)
    train_set = _concat(base.train, kept_set)
    log(
        f"fine-tuning {active.model_version} on {len(base.train)} base + {len(kept_set)} "
        f"labelled sequences ({len(held_set)} held out), {epochs} epochs"
    )
    cfg = TrainConfig(epochs=epochs, lr=1e-3, seed=seed, distill=False)
    label_index = {lab: i for i, lab in enumerate(active.labels)}
    net = train_network(
        train_set,
        label_index,
        active.norm_mean,
        active.norm_std,
        cfg,
        seed,
        log,
        warm_start=(active.config, active.state_dicts[0]),
    )
    digest = hashlib.sha256()
    for key, tensor in net.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    kind = f"{'bi' if active.config.bidirectional else ''}lstm"
    threshold = active.threshold if threshold is None else threshold
    counts = dict(sorted(Counter(map(str, train_set.y)).items()))
    source_ids = sorted({feedback.items[i].source_id for i in keep})
    fingerprint = _fingerprint(train_set)
    trained_on: dict[str, Any] = {
        "label_counts": counts,
        "base_sequences": len(base.train),
        "base_dataset": base.name,
        "feedback_episodes": len(kept_set),
        "feedback_held_out": len(held_set),
        "feedback_skipped": dict(feedback.skipped),
        "source_ids": source_ids,
        "data_fingerprint": fingerprint,
    }
    ckpt = BehaviorCheckpoint(
        config=active.config,
        state_dicts=[net.state_dict()],
        labels=list(active.labels),
        normal_labels=list(active.normal_labels),
        norm_mean=active.norm_mean,
        norm_std=active.norm_std,
        threshold=float(threshold),
        model_version=f"site-{kind}-{digest.hexdigest()[:10]}",
        data_fingerprint=fingerprint,
        training={
            **cfg.to_dict(),
            "recipe": "fine-tune",
            "parent": active.model_version,
            "n_train": len(train_set),
            "torch": str(torch.__version__),
        },
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    candidate = {
        "base_test": figures(ckpt, base.test, threshold),
        "feedback_holdout": figures(ckpt, held_set, threshold),
    }
    compared = {
        "base_test": figures(active, base.test, threshold),
        "feedback_holdout": figures(active, held_set, threshold),
    }
    seconds = round(time.perf_counter() - started, 1)
    ckpt.training["train_seconds"] = seconds
    ckpt.metrics = {"candidate": candidate, "active": compared}
    log(
        f"fine-tuned {ckpt.model_version}: base test {candidate['base_test']['accuracy']}, "
        f"held-out feedback {candidate['feedback_holdout']['accuracy']} "
        f"(active: {compared['base_test']['accuracy']}, {compared['feedback_holdout']['accuracy']})"
    )
    return RetrainOutcome(
        checkpoint=ckpt,
        candidate=candidate,
        active=compared,
        held_out_ids=[feedback.items[i].episode_id for i in held],
        trained_on=trained_on,
        train_seconds=seconds,
    )
