"""Request and response bodies of the behaviour analyzer."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Strict: "1.5" (a string) or true are not numbers. NaN/Infinity pass here and are
# rejected by the service with a message that names the frame and feature.
Number = Annotated[float, Field(strict=True)]
Frame = list[Number]
FrameSequence = list[Frame]

MAX_SEQUENCES_PER_REQUEST = 256


@cache
def examples() -> dict[str, Any]:
    """Real BasicMotions test-split sequences (running, standing) for the Swagger examples."""
    return json.loads((Path(__file__).with_name("behavior_examples.json")).read_text())


class AnalyzeRequest(BaseModel):
    """One sequence (`sequence`) or several (`sequences`) of frame-wise feature vectors."""

    model_config = ConfigDict(extra="forbid")

    sequence: FrameSequence | None = Field(
        None,
        description="Frames in time order; each frame is one feature vector "
        "(BasicMotions model: 6 numbers = accelerometer x/y/z, gyroscope x/y/z).",
    )
    sequences: list[FrameSequence] | None = Field(
        None,
        max_length=MAX_SEQUENCES_PER_REQUEST,
        description=f"Batch form: up to {MAX_SEQUENCES_PER_REQUEST} sequences, answered in order.",
    )
    source_id: str | None = Field(
        None, max_length=200, description="Optional camera/agent id, echoed back."
    )

    @model_validator(mode="after")
    def _one_form(self) -> AnalyzeRequest:
        if (self.sequence is None) == (self.sequences is None):
            raise ValueError(
                "send exactly one of 'sequence' (one list of frames) or "
                "'sequences' (a list of sequences)"
            )
        if self.sequences is not None and not self.sequences:
            raise ValueError("'sequences' is empty; send at least one sequence")
        return self


def analyze_openapi_examples() -> dict[str, dict[str, Any]]:
    ex = examples()
    return {
        "running": {
            "summary": "Running (flagged as an anomaly)",
            "description": ex["running"]["source"],
            "value": {"sequence": ex["running"]["sequence"], "source_id": "cam-01"},
        },
        "standing": {
            "summary": "Standing (normal)",
            "description": ex["standing"]["source"],
            "value": {"sequence": ex["standing"]["sequence"], "source_id": "cam-01"},
        },
        "batch": {
            "summary": "Batch form: several sequences, results in order",
            "value": {"sequences": [ex["standing"]["sequence"], ex["running"]["sequence"]]},
        },
    }


class AnalysisOut(BaseModel):
    """The verdict for one sequence."""

    is_anomaly: bool = Field(description="anomaly_score >= threshold")
    normal_score: float = Field(description="Summed probability of the normal labels")
    anomaly_score: float = Field(description="1 - normal_score")
    threshold: float
    top_label: str = Field(description="The most probable label")
    labels: list[str] = Field(description="All labels, in the model's output order")
    scores: dict[str, float] = Field(description="Label → probability (sums to 1)")
    model_version: str
    inference_ms: float = Field(description="Forward pass time of the batch this rode in")
    source_id: str | None = None

    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "example": {
                "is_anomaly": True,
                "normal_score": 0.012,
                "anomaly_score": 0.988,
                "threshold": 0.35,
                "top_label": "running",
                "labels": ["badminton", "running", "standing", "walking"],
                "scores": {
                    "badminton": 0.01,
                    "running": 0.978,
                    "standing": 0.004,
                    "walking": 0.008,
                },
                "model_version": "basic-motions-bilstm-0123456789",
                "inference_ms": 3.2,
                "source_id": "cam-01",
            }
        },
    )


class BatchAnalysisOut(BaseModel):
    """Batch form: one result per input sequence, in order."""

    results: list[AnalysisOut]
    source_id: str | None = None


class ModelInfo(BaseModel):
    """Checkpoint metadata and the metrics recorded when it was trained (no weights)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model_version: str
    labels: list[str]
    normal_labels: list[str]
    feature_dim: int
    threshold: float = Field(description="The threshold in use (ANOMALY_THRESHOLD overrides)")
    checkpoint_threshold: float = Field(description="The threshold stored in the checkpoint")
    max_sequence_length: int
    architecture: dict[str, Any]
    data_fingerprint: str
    metrics: dict[str, Any]
    training: dict[str, Any]
    created_at: str
