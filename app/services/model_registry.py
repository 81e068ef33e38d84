"""Behaviour-model versions: the registry every process reads, the promotion gate, the hot
swap, and retraining on operators' labels.

Versions live in the database (`model_versions`, ~50 KB each), so every replica reads the same
ones; the latest row of `model_activations` names the active one. Before the first activation
the checkpoint file the server started with (`MODEL_CHECKPOINT_PATH`) is the active version:
each process registers it as the first version at start-up.

Hot swap: every process compares the active version with the one it serves every
`MODEL_SYNC_SECS` (and at once after an activation it made itself) and swaps it in between two
micro-batches (`InferenceBatcher.swap`): a request in flight finishes on the version it began
with, no batch mixes two versions, and every answer names its version.

The gate: a version is refused (409, with the figures) when its accuracy on the base test
split is more than `GATE_BASE_TOLERANCE` below the active one's, or its accuracy on held-out
feedback is lower than the active one's on the same episodes (the version's own held-out
episodes, or the active one's when it has none; current labels). `force` overrides it and is
recorded. Activating an older version is the rollback, through the same gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.core.database import Database
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.i18n import GATE_MESSAGE, NOT_ENOUGH_FEEDBACK
from app.core.metrics import MODEL_ACTIVE, MODEL_SWAPS
from app.core.settings import ModelSettings
from app.core.tasks import cancel_task
from app.ml.batcher import InferenceBatcher
from app.ml.checkpoint import (
    BehaviorCheckpoint,
    CheckpointError,
    checkpoint_bytes,
    checkpoint_from_bytes,
    load_checkpoint,
)
from app.ml.data import Dataset, DatasetError, load_dataset
from app.ml.retrain import MIN_FEEDBACK, FeedbackSet, figures, retrain, usable_feedback
from app.models.base import utcnow
from app.models.learning import ModelActivation, ModelOrigin, ModelVersion
from app.repositories.learning import LabelRepository, ModelVersionRepository
from app.schemas.learning import ModelActivationOut, ModelList, ModelStatus, ModelVersionOut

GATE_BASE_TOLERANCE = 0.02
METRICS_EVERY = 15  # sync rounds between two feedback-metric refreshes


class NotEnoughFeedback(ValueError):
    """Fewer usable labelled episodes than retraining needs."""


@dataclass
class RetrainResult:
    """A retraining job's result: the candidate version and its figures beside the active's."""

    model_version: str
    active_version: str
    train_seconds: float
    candidate: dict[str, Any]
    active: dict[str, Any]
    trained_on: dict[str, Any]
    status: str = "candidate"
    next_step: str = ""
    skipped: dict[str, int] = field(default_factory=dict)


class ModelRegistry:
    """Versions, activation with a gate, the swap loop (a lifecycle component), retraining."""

    def __init__(
        self,
        database: Database,
        batcher: InferenceBatcher,
        settings: ModelSettings,
        feedback_metrics: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.db = database
        self.batcher = batcher
        self.settings = settings
        self.feedback_metrics = feedback_metrics
        self._task: asyncio.Task[None] | None = None
        self._base: Dataset | None = None
        self._file: BehaviorCheckpoint | None = None
        self._sync_lock = asyncio.Lock()
        self._rounds = 0

    # -- lifecycle: register the shipped version, follow the active one ----------------------

    async def start(self) -> None:
        try:
            await self.ensure_seeded()
            await self.sync()
        except (SQLAlchemyError, OSError) as exc:  # no tables yet, database down: serve the file
            logger.warning("model registry unavailable at start-up: {}", type(exc).__name__)
        self._task = asyncio.create_task(self._loop(), name="model-registry-sync")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync_secs)
            try:
                await self.sync()
                self._rounds += 1
                if self.feedback_metrics and self._rounds % METRICS_EVERY == 1:
                    await self.feedback_metrics()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup: keep serving, try next round
                logger.warning("model registry sync failed: {}", type(exc).__name__)

    async def ensure_seeded(self) -> None:
        """Register the started-with checkpoint as a version (idempotent across processes)."""
        ckpt = await self.file_checkpoint()
        if ckpt is None:
            return
        try:
            async with self.db.sessions() as session, session.begin():
                repo = ModelVersionRepository(session)
                if not await repo.exists(ckpt.model_version):
                    row = _version_row(ckpt, ModelOrigin.SHIPPED, None, "system")
                    base = await self.base_data()
                    if base is not None and base.fingerprint() == ckpt.data_fingerprint:
                        counts = Counter(map(str, base.train.y))
                        row.trained_on["label_counts"] = dict(sorted(counts.items()))
                    await repo.add(row)
        except IntegrityError:  # another process registered it first
            pass

    async def file_checkpoint(self) -> BehaviorCheckpoint | None:
        """The checkpoint file's version: the one the batcher loaded, or (in a CLI or a worker,
        which serve no model) read once from `MODEL_CHECKPOINT_PATH`."""
        if self.batcher.file_checkpoint is not None:
            return self.batcher.file_checkpoint
        if self._file is None:
            try:
                self._file = await asyncio.to_thread(load_checkpoint, self.settings.checkpoint_path)
            except CheckpointError:
                return None
        return self._file

    async def _active_name(self) -> str | None:
        async with self.db.sessions() as session:
            return await ModelVersionRepository(session).active()

    async def sync(self) -> str | None:
        """Serve the active version if this process serves another; returns what it serves."""
        if not self.batcher.started:
            return None
        async with self._sync_lock:
            serving = self.batcher.checkpoint
            target = await self._active_name()
            file_ckpt = await self.file_checkpoint()
            if target is None and file_ckpt is not None:
                target = file_ckpt.model_version  # nothing activated yet: the file serves
            if target is None or (serving is not None and serving.model_version == target):
                self._export(serving)
                return serving.model_version if serving else None
            ckpt = await self._checkpoint(target)
            if ckpt is None:
                return serving.model_version if serving else None
            await self.batcher.swap(ckpt)
            MODEL_SWAPS.inc()
            self._export(ckpt)
            return ckpt.model_version

    @staticmethod
    def _export(ckpt: BehaviorCheckpoint | None) -> None:
        MODEL_ACTIVE.clear()
        if ckpt is not None:
            MODEL_ACTIVE.labels(ckpt.model_version).set(1)

    async def _checkpoint(self, model_version: str) -> BehaviorCheckpoint | None:
        """A version's checkpoint (the file's without a database read)."""
        file_ckpt = await self.file_checkpoint()
        if file_ckpt is not None and file_ckpt.model_version == model_version:
            return file_ckpt
        async with self.db.sessions() as session:
            row = await ModelVersionRepository(session).get(model_version)
            data = row.checkpoint if row else None
        if data is None:
            return None
        try:
            return await asyncio.to_thread(checkpoint_from_bytes, data, f"version {model_version}")
        except CheckpointError as exc:
            logger.error("model version {} cannot be served: {}", model_version, exc)
            return None

    # -- reading --------------------------------------------------------------------------

    async def listing(self) -> ModelList:
        await self.ensure_seeded()
        async with self.db.sessions() as session:
            repo = ModelVersionRepository(session)
            rows = await repo.listing()
            activations = await repo.activations()
        active = _active_of(activations, await self.file_checkpoint())
        return ModelList(active=active, items=[_out(r, active, activations) for r in rows])

    async def _version(
        self, model_version: str
    ) -> tuple[ModelVersion, str | None, list[ModelActivation]]:
        """The version's row, the active version's name and every activation; 404 if none."""
        await self.ensure_seeded()
        async with self.db.sessions() as session:
            repo = ModelVersionRepository(session)
            row = await repo.get(model_version)
            if row is None:
                raise NotFound(f"No model version '{model_version}'")
            activations = await repo.activations()
        return row, _active_of(activations, await self.file_checkpoint()), activations

    async def get(self, model_version: str) -> ModelVersionOut:
        row, active, activations = await self._version(model_version)
        return _out(row, active, activations)

    # -- activation and its gate -----------------------------------------------------------

    async def activate(
        self, model_version: str, by: str, force: bool = False, reason: str | None = None
    ) -> ModelVersionOut:
        """Make `model_version` active (after the gate, unless `force`); this process swaps
        at once, the others within `MODEL_SYNC_SECS`."""
        target, active_name, _ = await self._version(model_version)
        if active_name == model_version:
            return await self.get(model_version)
        candidate = await self._checkpoint(model_version)
        if candidate is None:
            raise Conflict(
                f"Model version '{model_version}' cannot be loaded",
                code="model_broken",
                context={"version": model_version},
            )
        active = await self._checkpoint(active_name) if active_name else None
        if active is not None and candidate.feature_dim != active.feature_dim:
            raise Conflict(
                f"Model version '{model_version}' expects {candidate.feature_dim} features per "
                f"frame; the active one {active.feature_dim}",
                code="model_incompatible",
            )
        gate: dict[str, Any] | None = None
        if active is not None:
            held = target.trained_on.get("held_out_episode_ids") or []
            if not held and active_name:
                async with self.db.sessions() as session:
                    active_row = await ModelVersionRepository(session).get(active_name)
                    trained = active_row.trained_on if active_row else {}
                    held = (trained or {}).get("held_out_episode_ids") or []
            gate = await self._gate(candidate, active, held)
            if gate["refused"] and not force:
                params = _gate_params(model_version, active.model_version, gate)
                raise Conflict(
                    GATE_MESSAGE.format(**params),
                    code="model_gate",
                    context=params,
                    details={"gate": gate},
                )
        async with self.db.sessions() as session, session.begin():
            await ModelVersionRepository(session).activate(
                ModelActivation(
                    model_version=model_version,
                    previous_version=active_name,
                    activated_by=by,
                    forced=bool(force and gate and gate["refused"]),
                    reason=reason,
                    gate=gate,
                )
            )
        logger.info(
            "model version {} activated (was {}){}",
            model_version,
            active_name,
            " by force, past the gate" if force and gate and gate["refused"] else "",
        )
        await self.sync()
        return await self.get(model_version)

    async def _gate(
        self, candidate: BehaviorCheckpoint, active: BehaviorCheckpoint, held: list[str]
    ) -> dict[str, Any]:
        """Both versions on the base test split and on the held-out feedback episodes."""
        base = await self.base_data()
        ids = []
        for raw in held:
            with contextlib.suppress(ValueError):
                ids.append(uuid.UUID(str(raw)))
        async with self.db.sessions() as session:
            rows = await LabelRepository(session).by_ids(ids)
        feedback = _usable(rows, active)
        return await asyncio.to_thread(
            _gate_figures, candidate, active, base, feedback, self.batcher
        )

    async def base_data(self) -> Dataset | None:
        """The bundled base data (BasicMotions), loaded once; None when it is not installed."""
        if self._base is None:
            try:
                self._base = await asyncio.to_thread(load_dataset, None)
            except DatasetError as exc:
                logger.warning("base training data unavailable: {}", exc)
                return None
        return self._base

    # -- retraining (the `model.retrain` job; also `sentinel train-behavior --with-feedback`) --

    async def active_checkpoint(self) -> BehaviorCheckpoint:
        """The active version, read from the database (a worker serves no model itself)."""
        name = await self._active_name()
        if name is not None:
            ckpt = await self._checkpoint(name)
            if ckpt is not None:
                return ckpt
        file_ckpt = await self.file_checkpoint()
        if file_ckpt is not None:
            return file_ckpt
        return await asyncio.to_thread(load_checkpoint, self.settings.checkpoint_path)

    async def _feedback(
        self, source_ids: list[str] | None, active: BehaviorCheckpoint
    ) -> tuple[FeedbackSet, int]:
        """The labelled episodes retraining can use, and how many are labelled in all."""
        async with self.db.sessions() as session:
            rows = await LabelRepository(session).training_set(source_ids)
        return _usable(rows, active), len(rows)

    async def check_feedback(self, source_ids: list[str] | None) -> None:
        """Refuse a retraining that would fail for want of labels before it becomes a job:
        a job that fails for good pages someone (`job_failed`), a 409 tells only the caller."""
        try:
            active = await self.active_checkpoint()
        except CheckpointError:
            return  # the job fails with its own message ("No active model to retrain")
        feedback, labelled = await self._feedback(source_ids, active)
        if len(feedback.items) < MIN_FEEDBACK:
            params = {"found": len(feedback.items), "labelled": labelled, "needed": MIN_FEEDBACK}
            raise Conflict(
                NOT_ENOUGH_FEEDBACK.format(**params), code="not_enough_feedback", context=params
            )

    async def retrain(
        self,
        *,
        source_ids: list[str] | None,
        epochs: int | None,
        created_by: str | None,
        log: Callable[[str], None] | None = None,
    ) -> RetrainResult:
        """Fine-tune the active version on the base data plus labelled episodes; store the
        result as a candidate. Raises `NotEnoughFeedback` below `MIN_FEEDBACK` episodes."""
        try:
            active = await self.active_checkpoint()
        except CheckpointError as exc:
            raise ValidationFailed(f"No active model to retrain: {exc}") from exc
        base = await self.base_data()
        if base is None:
            raise ValidationFailed(
                "The base training data is missing: restore data/models/basic_motions.npz "
                "from the repository (or install the `aeon` package)"
            )
        feedback, labelled = await self._feedback(source_ids, active)
        if len(feedback.items) < MIN_FEEDBACK:
            scope = f" from {', '.join(source_ids)}" if source_ids else ""
            raise NotEnoughFeedback(
                f"Found {len(feedback.items)} labelled episodes with a stored sequence{scope} "
                f"({labelled} labelled in all); retraining needs at least {MIN_FEEDBACK}"
            )
        outcome = await asyncio.to_thread(
            retrain, active, base, feedback, epochs=epochs or 30, log=log
        )
        ckpt = outcome.checkpoint
        trained_on = {
            **outcome.trained_on,
            "held_out_episode_ids": outcome.held_out_ids,
            "requested_source_ids": source_ids,
        }
        metrics = {
            "candidate": outcome.candidate,
            "active": outcome.active,
            "compared_with": active.model_version,
        }
        row = _version_row(ckpt, ModelOrigin.RETRAINED, active.model_version, created_by)
        row.metrics, row.trained_on = metrics, trained_on
        try:
            async with self.db.sessions() as session, session.begin():
                repo = ModelVersionRepository(session)
                if not await repo.exists(ckpt.model_version):
                    await repo.add(row)
        except IntegrityError:  # the same weights stored by a retried attempt
            pass
        # Training is deterministic: the same data gives the same weights, hence the same
        # version, which may already be active or retired.
        status = (await self.get(ckpt.model_version)).status
        return RetrainResult(
            status=status.value,
            model_version=ckpt.model_version,
            active_version=active.model_version,
            train_seconds=outcome.train_seconds,
            candidate=outcome.candidate,
            active=outcome.active,
            trained_on={k: v for k, v in trained_on.items() if k != "held_out_episode_ids"},
            next_step=f"POST /api/v1/models/{ckpt.model_version}/activate"
            if status is not ModelStatus.ACTIVE
            else "none: this version already serves",
            skipped=feedback.skipped,
        )


def _gate_figures(
    candidate: BehaviorCheckpoint,
    active: BehaviorCheckpoint,
    base: Dataset | None,
    feedback: FeedbackSet,
    batcher: InferenceBatcher,
) -> dict[str, Any]:
    gate: dict[str, Any] = {"active_version": active.model_version, "refused": False, "reasons": []}
    if base is not None:
        cand = figures(candidate, base.test, batcher.threshold_of(candidate))
        act = figures(active, base.test, batcher.threshold_of(active))
        gate["base_test"] = {
            "candidate": cand["accuracy"],
            "active": act["accuracy"],
            "n": cand["n"],
        }
        if cand["accuracy"] < act["accuracy"] - GATE_BASE_TOLERANCE:
            gate["refused"] = True
            gate["reasons"].append("base_test")
    if feedback.items:
        held = feedback.to_set(range(len(feedback.items)), active.feature_dim)
        cand = figures(candidate, held, batcher.threshold_of(candidate))
        act = figures(active, held, batcher.threshold_of(active))
        gate["feedback_holdout"] = {
            "candidate": cand["accuracy"],
            "active": act["accuracy"],
            "n": cand["n"],
        }
        if cand["accuracy"] < act["accuracy"]:
            gate["refused"] = True
            gate["reasons"].append("feedback_holdout")
    return gate


def _gate_params(model_version: str, active: str, gate: dict[str, Any]) -> dict[str, str]:
    """The gate's figures as message parameters (accuracies to three places, n/a if absent)."""

    def acc(part: str, side: str) -> str:
        value = (gate.get(part) or {}).get(side)
        return "n/a" if value is None else f"{value:.3f}"

    return {
        "version": model_version,
        "active": active,
        "base_new": acc("base_test", "candidate"),
        "base_old": acc("base_test", "active"),
        "fb_new": acc("feedback_holdout", "candidate"),
        "fb_old": acc("feedback_holdout", "active"),
        "fb_n": str((gate.get("feedback_holdout") or {}).get("n", 0)),
    }


def _version_row(
    ckpt: BehaviorCheckpoint, origin: ModelOrigin, parent: str | None, by: str | None
) -> ModelVersion:
    data = checkpoint_bytes(ckpt)
    created = utcnow()
    if origin is ModelOrigin.SHIPPED:  # when it was trained, not when a process registered it
        with contextlib.suppress(ValueError):
            trained = datetime.fromisoformat(ckpt.created_at)
            created = trained if trained.tzinfo else trained.replace(tzinfo=UTC)
    return ModelVersion(
        model_version=ckpt.model_version,
        created_at=created,
        created_by=by,
        origin=origin,
        parent_version=parent,
        checkpoint=data,
        size_bytes=len(data),
        labels=list(ckpt.labels),
        normal_labels=list(ckpt.normal_labels),
        threshold=float(ckpt.threshold),
        data_fingerprint=ckpt.data_fingerprint[:80],
        metrics={},
        trained_on={
            "base_dataset": str(ckpt.training.get("dataset", "")),
            "base_sequences": int(ckpt.training.get("n_train", 0) or 0),
            "feedback_episodes": 0,
            "data_fingerprint": ckpt.data_fingerprint,
        }
        if origin is ModelOrigin.SHIPPED
        else {},
    )


def _active_of(
    activations: list[ModelActivation], file_ckpt: BehaviorCheckpoint | None
) -> str | None:
    if activations:
        return activations[-1].model_version
    return file_ckpt.model_version if file_ckpt else None


def _out(
    row: ModelVersion, active: str | None, activations: list[ModelActivation]
) -> ModelVersionOut:
    mine = [a for a in activations if a.model_version == row.model_version]
    if row.model_version == active:
        status = ModelStatus.ACTIVE
    elif mine or row.origin is ModelOrigin.SHIPPED:
        status = ModelStatus.RETIRED
    else:
        status = ModelStatus.CANDIDATE
    trained_on = {k: v for k, v in (row.trained_on or {}).items() if k != "held_out_episode_ids"}
    return ModelVersionOut(
        model_version=row.model_version,
        created_at=row.created_at,
        created_by=row.created_by,
        status=status,
        origin=row.origin.value,
        parent_version=row.parent_version,
        labels=list(row.labels),
        normal_labels=list(row.normal_labels),
        threshold=row.threshold,
        size_bytes=row.size_bytes,
        metrics=row.metrics or {},
        trained_on=trained_on,
        activations=[
            ModelActivationOut(
                at=a.activated_at,
                by=a.activated_by,
                forced=a.forced,
                reason=a.reason,
                previous_version=a.previous_version,
            )
            for a in mine
        ],
    )


def _usable(rows: Sequence[Any], active: BehaviorCheckpoint) -> FeedbackSet:
    """The labelled rows (episode id, source, label, frames) the active model can learn from."""
    return usable_feedback(
        [(str(r.episode_id), r.source_id, r.label, r.sequence) for r in rows],
        active.feature_dim,
        active.labels,
    )
