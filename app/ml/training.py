"""Training and evaluation of the behaviour classifier.

Recipe (reproducible for a given seed): per-feature normalisation from the training split;
a k-fold ensemble — member *i* is trained on every fold but *i* — so each training sequence
gets an out-of-fold prediction. The anomaly threshold is chosen on those out-of-fold scores
(never on the test split); the served model averages all members' probabilities.
Augmentation: random crops (teaches variable-length input), per-channel scaling, jitter.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from torch import nn

from app.ml import DEFAULT_NORMAL_LABELS
from app.ml.checkpoint import BehaviorCheckpoint
from app.ml.data import Dataset, SequenceSet, stratified_split
from app.ml.model import BehaviorClassifier, BehaviorLSTM, LSTMConfig


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int = 60
    folds: int = 4
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.2
    bidirectional: bool = True
    lr: float = 3e-3
    weight_decay: float = 1e-3
    batch_size: int = 16
    seed: int = 7
    augment: bool = True
    min_crop: float = 0.5
    threads: int = 2
    device: str = "cpu"  # resolved from MODEL_DEVICE / --device by the caller
    # Distillation: the k-fold ensemble is the teacher; one smaller student learns its
    # probabilities (and the labels) and is what the checkpoint serves (~5× cheaper).
    distill: bool = True
    student_hidden_size: int = 32
    student_bidirectional: bool = True
    student_epochs: int = 80
    distill_temperature: float = 2.0
    distill_alpha: float = 0.7
    normal_labels: Sequence[str] = field(default_factory=lambda: sorted(DEFAULT_NORMAL_LABELS))

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["normal_labels"] = list(self.normal_labels)
        return d


def normalisation_stats(data: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean/std over real (unpadded) frames."""
    mask = np.arange(data.x.shape[1])[None, :] < data.lengths[:, None]
    frames = data.x[mask]
    mean = frames.mean(0).astype(np.float32)
    std = frames.std(0).astype(np.float32)
    return mean, np.where(std < 1e-6, 1.0, std).astype(np.float32)


def _augment(
    x: np.ndarray, lengths: np.ndarray, rng: np.random.Generator, min_crop: float
) -> tuple[np.ndarray, np.ndarray]:
    """Random crop to [min_crop·L, L] frames, per-channel scaling, small jitter (normalised x)."""
    out = np.zeros_like(x)
    new_len = np.empty_like(lengths)
    for i, n in enumerate(lengths):
        keep = int(rng.integers(max(1, int(n * min_crop)), n + 1))
        start = int(rng.integers(0, n - keep + 1))
        seg = x[i, start : start + keep]
        seg = seg * rng.normal(1.0, 0.1, size=(1, x.shape[2])) + rng.normal(0, 0.03, seg.shape)
        out[i, :keep] = seg
        new_len[i] = keep
    return out.astype(np.float32), new_len


def _normalise(x: np.ndarray, lengths: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    mask = (np.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
    return (((x - mean) / std) * mask).astype(np.float32)


def train_network(
    data: SequenceSet,
    label_index: dict[str, int],
    mean: np.ndarray,
    std: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    log: Callable[[str], None] | None = None,
    teacher: Sequence[BehaviorLSTM] = (),
    warm_start: tuple[LSTMConfig, dict[str, torch.Tensor]] | None = None,
) -> BehaviorLSTM:
    """Train one network on `data` (raw features) and return it in eval mode.

    `warm_start` (an architecture and its weights) fine-tunes an existing network instead of
    starting from random weights (retraining on operators' labels).

    With `teacher` networks this trains a student of `student_*` size: its loss mixes the
    teacher's averaged, temperature-softened probabilities on the same augmented batch
    (weight `distill_alpha`) with the labels.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    student = bool(teacher)
    if warm_start is not None:
        net = BehaviorLSTM(warm_start[0])
        net.load_state_dict(warm_start[1])
    else:
        net = BehaviorLSTM(
            LSTMConfig(
                input_dim=data.feature_dim,
                num_classes=len(label_index),
                hidden_size=cfg.student_hidden_size if student else cfg.hidden_size,
                num_layers=cfg.num_layers,
                dropout=cfg.dropout,
                bidirectional=cfg.student_bidirectional if student else cfg.bidirectional,
            )
        )
    net.to(cfg.device)
    epochs = cfg.student_epochs if student else cfg.epochs
    temp = cfg.distill_temperature
    x = _normalise(data.x, data.lengths, mean, std)
    y = torch.tensor([label_index[v] for v in data.y], dtype=torch.int64, device=cfg.device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(y) / cfg.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=epochs * steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    net.train()
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            xb, lb = x[idx], data.lengths[idx]
            if cfg.augment:
                xb, lb = _augment(xb, lb, rng, cfg.min_crop)
            t_max = int(lb.max())
            xt, lt = torch.from_numpy(xb[:, :t_max]).to(cfg.device), torch.from_numpy(lb)
            logits = net(xt, lt)
            loss = loss_fn(logits, y[idx])
            if student:
                with torch.no_grad():
                    soft = torch.stack([(t(xt, lt) / temp).softmax(-1) for t in teacher]).mean(0)
                kd = nn.functional.kl_div(
                    (logits / temp).log_softmax(-1), soft, reduction="batchmean"
                ) * (temp * temp)
                loss = cfg.distill_alpha * kd + (1 - cfg.distill_alpha) * loss
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log and (epoch + 1) % max(1, epochs // 5) == 0:
            log(f"  epoch {epoch + 1}/{epochs} loss {total / len(y):.4f}")
    net.eval()
    return net


def anomaly_scores(probs: np.ndarray, labels: Sequence[str], normal: Sequence[str]) -> np.ndarray:
    """Summed probability of the non-normal labels."""
    abnormal = np.array([lab not in set(normal) for lab in labels])
    return probs[:, abnormal].sum(1)


def choose_threshold(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    """The threshold maximising balanced accuracy; among ties, the middle of the widest gap.

    Candidates are midpoints between consecutive sorted scores (plus 0.5), so a perfectly
    separated set gets the threshold with the largest margin on both sides.
    """
    if is_anomaly.all() or (~is_anomaly).all():
        return 0.5
    pts = np.unique(np.concatenate([[0.0, 1.0], scores]))
    candidates = np.concatenate([(pts[:-1] + pts[1:]) / 2, [0.5]])

    def balanced_acc(t: float) -> float:
        pred = scores >= t
        tpr = (pred & is_anomaly).sum() / is_anomaly.sum()
        tnr = (~pred & ~is_anomaly).sum() / (~is_anomaly).sum()
        return float((tpr + tnr) / 2)

    accs = np.array([balanced_acc(t) for t in candidates])
    best = candidates[np.isclose(accs, accs.max())]
    # Widest margin: distance to the nearest training score on either side.
    margins = [np.min(np.abs(scores - t)) for t in best]
    return float(np.clip(best[int(np.argmax(margins))], 0.01, 0.99))


def evaluate(
    probs: np.ndarray,
    y_true: Sequence[str] | np.ndarray,
    labels: Sequence[str],
    normal: Sequence[str],
    threshold: float,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall, confusion matrix, anomaly P/R at threshold."""
    labels = list(labels)
    index = {lab: i for i, lab in enumerate(labels)}
    true = np.array([index.get(str(v), -1) for v in y_true])
    pred = probs.argmax(1)
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(true, pred, strict=True):
        if t >= 0:
            cm[t, p] += 1
    per_class: dict[str, dict[str, float]] = {}
    f1s = []
    for i, lab in enumerate(labels):
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / cm[i].sum() if cm[i].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[lab] = {
            "precision": round(float(prec), 4),
            "recall": round(float(rec), 4),
            "f1": round(float(f1), 4),
            "support": int(cm[i].sum()),
        }
        if cm[i].sum():
            f1s.append(f1)
    scores = anomaly_scores(probs, labels, normal)
    flagged = scores >= threshold
    actual = np.array([str(v) not in set(normal) for v in y_true])
    tp = int((flagged & actual).sum())
    a_prec = tp / flagged.sum() if flagged.sum() else 0.0
    a_rec = tp / actual.sum() if actual.sum() else 0.0
    return {
        "n": len(true),
        "accuracy": round(float((pred == true).mean()), 4),
        "macro_f1": round(float(np.mean(f1s)) if f1s else 0.0, 4),
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "rows_true_cols_pred": cm.tolist()},
        "anomaly": {
            "threshold": round(float(threshold), 4),
            "precision": round(float(a_prec), 4),
            "recall": round(float(a_rec), 4),
            "f1": round(float(2 * a_prec * a_rec / (a_prec + a_rec)) if a_prec + a_rec else 0.0, 4),
            "flagged": int(flagged.sum()),
            "actual": int(actual.sum()),
        },
    }


def _fold_indices(y: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Stratified fold assignment: each class's members dealt round-robin into folds."""
    rng = np.random.default_rng(seed)
    assign = np.empty(len(y), dtype=np.int64)
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        assign[idx] = np.arange(len(idx)) % folds
    return [np.flatnonzero(assign == f) for f in range(folds)]


def _weights_digest(nets: Sequence[nn.Module]) -> str:
    h = hashlib.sha256()
    for net in nets:
        for key, tensor in net.state_dict().items():
            h.update(key.encode())
            h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def train(
    dataset: Dataset, cfg: TrainConfig, log: Callable[[str], None] | None = None
) -> BehaviorCheckpoint:
    """Train the ensemble on `dataset.train`, evaluate on `dataset.test`, return a checkpoint."""
    log = log or (lambda _msg: None)
    torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    train_set = dataset.train
    labels = sorted(set(map(str, train_set.y)))
    normal = [lab for lab in cfg.normal_labels if lab in labels]
    if not normal:
        raise ValueError(
            f"none of the normal labels {list(cfg.normal_labels)} occur in the data "
            f"(labels: {', '.join(labels)})"
        )
    if len(normal) == len(labels):
        raise ValueError("every label is normal; at least one label must be abnormal")
    label_index = {lab: i for i, lab in enumerate(labels)}
    mean, std = normalisation_stats(train_set)

    counts = np.unique(train_set.y, return_counts=True)[1]
    folds = max(2, min(cfg.folds, int(counts.min())))
    if int(counts.min()) < 2:  # too few to fold: one member on a stratified hold-out
        keep, held = stratified_split(train_set.y, 0.25, cfg.seed)
        fold_sets = [held]
    else:
        fold_sets = _fold_indices(train_set.y, folds, cfg.seed)

    nets: list[BehaviorLSTM] = []
    oof = np.full((len(train_set), len(labels)), np.nan, dtype=np.float32)
    for f, held in enumerate(fold_sets):
        keep = np.setdiff1d(np.arange(len(train_set)), held)
        log(f"member {f + 1}/{len(fold_sets)}: {len(keep)} train, {len(held)} held out")
        net = train_network(
            train_set.subset(keep), label_index, mean, std, cfg, cfg.seed * 1000 + f, log
        )
        nets.append(net)
        member = BehaviorClassifier([net], mean, std, device=cfg.device)
        held_set = train_set.subset(held)
        oof[held] = member.predict_proba_padded(held_set.x, held_set.lengths)

    seen = ~np.isnan(oof[:, 0])
    oof_scores = anomaly_scores(oof[seen], labels, normal)
    oof_actual = np.array([str(v) not in normal for v in train_set.y[seen]])
    threshold = choose_threshold(oof_scores, oof_actual)
    log(f"threshold {threshold:.3f} (chosen on {int(seen.sum())} out-of-fold training sequences)")

    classifier = BehaviorClassifier(nets, mean, std, device=cfg.device)
    validation = evaluate(oof[seen], train_set.y[seen], labels, normal, threshold)
    test_probs = classifier.predict_proba_padded(dataset.test.x, dataset.test.lengths)
    test = evaluate(test_probs, dataset.test.y, labels, normal, threshold)
    log(f"out-of-fold accuracy {validation['accuracy']:.3f}; test accuracy {test['accuracy']:.3f}")
    metrics: dict[str, Any] = {"validation_out_of_fold": validation, "test": test}
    if cfg.distill:
        for net in nets:
            net.eval()  # the teacher answers deterministically (no dropout)
        log(
            f"student: {'bi' if cfg.student_bidirectional else ''}LSTM "
            f"{cfg.student_hidden_size} hidden, distilled from the {len(nets)}-member ensemble"
        )
        student = train_network(
            train_set, label_index, mean, std, cfg, cfg.seed * 1000 + 999, log, teacher=nets
        )
        served = BehaviorClassifier([student], mean, std, device=cfg.device)
        student_test = evaluate(
            served.predict_proba_padded(dataset.test.x, dataset.test.lengths),
            dataset.test.y,
            labels,
            normal,
            threshold,
        )
        log(f"student test accuracy {student_test['accuracy']:.3f}")
        metrics = {
            "validation_out_of_fold": validation,  # the teacher's; the threshold comes from it
            "test": student_test,
            "teacher_test": test,
        }
        nets = [student]

    fingerprint = dataset.fingerprint()
    bidirectional = nets[0].config.bidirectional
    kind = f"{'bi' if bidirectional else ''}lstm{'-student' if cfg.distill else ''}"
    version = f"{dataset.name}-{kind}-{_weights_digest(nets)[:10]}"
    return BehaviorCheckpoint(
        config=nets[0].config,
        state_dicts=[net.state_dict() for net in nets],
        labels=labels,
        normal_labels=normal,
        norm_mean=mean,
        norm_std=std,
        threshold=threshold,
        model_version=version,
        data_fingerprint=fingerprint,
        metrics=metrics,
        training={
            **cfg.to_dict(),
            "dataset": dataset.name,
            "folds_used": len(fold_sets),
            "n_train": len(train_set),
            "n_test": len(dataset.test),
            "train_seconds": round(time.perf_counter() - started, 1),
            "torch": str(torch.__version__),
        },
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def distill_checkpoint(
    teacher: BehaviorCheckpoint,
    dataset: Dataset,
    cfg: TrainConfig,
    log: Callable[[str], None] | None = None,
) -> BehaviorCheckpoint:
    """Distil an existing ensemble checkpoint (`train-behavior --teacher`) into one student.

    Same student recipe as `train` with `distill`, but the teacher, its normalisation, labels
    and out-of-fold threshold come from the checkpoint, so a shipped ensemble can be made
    cheaper without retraining it.
    """
    log = log or (lambda _msg: None)
    torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    if dataset.fingerprint() != teacher.data_fingerprint:
        raise ValueError("the teacher checkpoint was trained on different data")
    labels, normal = list(teacher.labels), list(teacher.normal_labels)
    label_index = {lab: i for i, lab in enumerate(labels)}
    teacher_nets = teacher.build_classifier(cfg.device).networks
    log(
        f"student: {'bi' if cfg.student_bidirectional else ''}LSTM {cfg.student_hidden_size} "
        f"hidden, distilled from the {len(teacher_nets)}-member {teacher.model_version}"
    )
    student = train_network(
        dataset.train,
        label_index,
        teacher.norm_mean,
        teacher.norm_std,
        cfg,
        cfg.seed * 1000 + 999,
        log,
        teacher=teacher_nets,
    )
    served = BehaviorClassifier([student], teacher.norm_mean, teacher.norm_std, device=cfg.device)
    test = evaluate(
        served.predict_proba_padded(dataset.test.x, dataset.test.lengths),
        dataset.test.y,
        labels,
        normal,
        teacher.threshold,
    )
    log(f"student test accuracy {test['accuracy']:.3f}")
    kind = f"{'bi' if student.config.bidirectional else ''}lstm-student"
    return BehaviorCheckpoint(
        config=student.config,
        state_dicts=[student.state_dict()],
        labels=labels,
        normal_labels=normal,
        norm_mean=teacher.norm_mean,
        norm_std=teacher.norm_std,
        threshold=teacher.threshold,
        model_version=f"{dataset.name}-{kind}-{_weights_digest([student])[:10]}",
        data_fingerprint=teacher.data_fingerprint,
        metrics={
            "validation_out_of_fold": teacher.metrics.get("validation_out_of_fold", {}),
            "test": test,
            "teacher_test": teacher.metrics.get("test", {}),
        },
        training={
            **cfg.to_dict(),
            "teacher": teacher.model_version,
            "dataset": dataset.name,
            "n_train": len(dataset.train),
            "n_test": len(dataset.test),
            "train_seconds": round(time.perf_counter() - started, 1),
            "torch": str(torch.__version__),
        },
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
