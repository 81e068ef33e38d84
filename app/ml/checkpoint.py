"""The behaviour checkpoint: one `.pt` file with the weights and everything needed to serve them.

The file is a plain dict of tensors, strings, numbers, lists and dicts, so it loads with
`torch.load(weights_only=True)` (no pickled code runs). Layout (``format`` = FORMAT):

- ``config``: `LSTMConfig` fields; ``state_dicts``: one state dict per ensemble member
- ``labels`` (ordered as the model's outputs), ``normal_labels``, ``feature_dim``
- ``norm_mean`` / ``norm_std``: per-feature normalisation (float32 tensors [F])
- ``threshold``: anomaly decision threshold on the summed probability of non-normal labels
- ``model_version``, ``data_fingerprint`` (sha256 of the training data), ``metrics``,
  ``training`` (the hyper-parameters and seeds used), ``created_at``
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.ml.model import BehaviorClassifier, BehaviorLSTM, LSTMConfig

FORMAT = "sentinel.behavior-lstm/1"


class CheckpointError(Exception):
    """The checkpoint is missing, unreadable or not a Sentinel behaviour checkpoint."""


@dataclass
class BehaviorCheckpoint:
    """A loaded (or about-to-be-saved) checkpoint."""

    config: LSTMConfig
    state_dicts: list[dict[str, torch.Tensor]]
    labels: list[str]
    normal_labels: list[str]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    threshold: float
    model_version: str
    data_fingerprint: str
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @property
    def feature_dim(self) -> int:
        return self.config.input_dim

    def build_classifier(self, device: str = "cpu") -> BehaviorClassifier:
        networks = []
        for state in self.state_dicts:
            net = BehaviorLSTM(self.config)
            net.load_state_dict(state)
            networks.append(net)
        return BehaviorClassifier(networks, self.norm_mean, self.norm_std, device=device)

    def metadata(self) -> dict[str, Any]:
        """Everything except the weights (for /behavior/model and eval output)."""
        return {
            "format": FORMAT,
            "model_version": self.model_version,
            "labels": list(self.labels),
            "normal_labels": list(self.normal_labels),
            "feature_dim": self.feature_dim,
            "threshold": self.threshold,
            "architecture": {**self.config.to_dict(), "ensemble_size": len(self.state_dicts)},
            "data_fingerprint": self.data_fingerprint,
            "metrics": self.metrics,
            "training": self.training,
            "created_at": self.created_at,
        }


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """Only JSON-like types survive a weights_only load (no numpy scalars, no TorchVersion)."""
    return json.loads(json.dumps(value, default=str))


def _payload(ckpt: BehaviorCheckpoint) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "config": ckpt.config.to_dict(),
        "state_dicts": [
            {k: v.detach().cpu().clone() for k, v in sd.items()} for sd in ckpt.state_dicts
        ],
        "labels": list(ckpt.labels),
        "normal_labels": list(ckpt.normal_labels),
        "feature_dim": ckpt.feature_dim,
        "norm_mean": torch.as_tensor(ckpt.norm_mean, dtype=torch.float32),
        "norm_std": torch.as_tensor(ckpt.norm_std, dtype=torch.float32),
        "threshold": float(ckpt.threshold),
        "model_version": ckpt.model_version,
        "data_fingerprint": ckpt.data_fingerprint,
        "metrics": _plain(ckpt.metrics),
        "training": _plain(ckpt.training),
        "created_at": ckpt.created_at,
    }


def save_checkpoint(ckpt: BehaviorCheckpoint, path: str | Path) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(_payload(ckpt), tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a checkpoint is not a secret
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def checkpoint_bytes(ckpt: BehaviorCheckpoint) -> bytes:
    """The checkpoint as the bytes of its `.pt` file (what the model registry stores)."""
    buffer = io.BytesIO()
    torch.save(_payload(ckpt), buffer)
    return buffer.getvalue()


def checkpoint_from_bytes(data: bytes, where: str = "stored checkpoint") -> BehaviorCheckpoint:
    """Load and validate a checkpoint from the bytes of a `.pt` file."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle/unpickler errors all mean "not loadable"
        raise CheckpointError(f"{where} is unreadable: {exc}") from exc
    return _from_payload(payload, where)


def _require(payload: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in payload:
        raise CheckpointError(f"checkpoint has no '{key}' entry")
    value = payload[key]
    if not isinstance(value, kind):
        raise CheckpointError(f"checkpoint entry '{key}' has the wrong type")
    return value


def load_checkpoint(path: str | Path) -> BehaviorCheckpoint:
    """Load and validate a checkpoint; raises `CheckpointError` with a readable reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle/unpickler errors all mean "not loadable"
        raise CheckpointError(f"checkpoint at {path} is unreadable: {exc}") from exc
    return _from_payload(payload, str(path))


def _from_payload(payload: Any, where: str) -> BehaviorCheckpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a Sentinel behaviour checkpoint ({FORMAT})")
    try:
        config = LSTMConfig(**_require(payload, "config", dict))
    except TypeError as exc:
        raise CheckpointError(f"checkpoint config is invalid: {exc}") from exc
    labels = [str(x) for x in _require(payload, "labels", list)]
    normal = [str(x) for x in _require(payload, "normal_labels", list)]
    mean = _require(payload, "norm_mean", torch.Tensor).numpy()
    std = _require(payload, "norm_std", torch.Tensor).numpy()
    if len(labels) != config.num_classes:
        raise CheckpointError("checkpoint labels do not match the network's outputs")
    if not set(normal) <= set(labels):
        raise CheckpointError("checkpoint normal_labels are not all model labels")
    if mean.shape != (config.input_dim,) or std.shape != (config.input_dim,):
        raise CheckpointError("checkpoint normalisation statistics do not match feature_dim")
    ckpt = BehaviorCheckpoint(
        config=config,
        state_dicts=_require(payload, "state_dicts", list),
        labels=labels,
        normal_labels=normal,
        norm_mean=mean,
        norm_std=std,
        threshold=float(_require(payload, "threshold", (float, int))),
        model_version=str(_require(payload, "model_version", str)),
        data_fingerprint=str(payload.get("data_fingerprint", "")),
        metrics=dict(payload.get("metrics") or {}),
        training=dict(payload.get("training") or {}),
        created_at=str(payload.get("created_at", "")),
    )
    if not ckpt.state_dicts:
        raise CheckpointError("checkpoint holds no network weights")
    try:
        ckpt.build_classifier()  # shapes must match the config
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint weights do not match its config: {exc}") from exc
    return ckpt
