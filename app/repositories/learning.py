"""SQL for episode labels and behaviour-model versions; never commits (services own
transactions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.event import Episode
from app.models.learning import EpisodeLabel, EpisodeLabelChange, ModelActivation, ModelVersion


@dataclass(frozen=True)
class LabelledEpisode:
    """A labelled episode as training sees it."""

    episode_id: uuid.UUID
    source_id: str
    label: str
    sequence: list | None


@dataclass(frozen=True)
class LabelledVerdict:
    """A labelled episode's label beside the decision Sentinel made (for the summary)."""

    source_id: str
    label: str
    decision: str | None
    has_sequence: bool


class LabelRepository:
    """Queries on `episode_labels` and `episode_label_changes`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def episode(self, episode_id: uuid.UUID) -> Episode | None:
        return await self.session.get(Episode, episode_id)

    async def current(self, episode_id: uuid.UUID) -> EpisodeLabel | None:
        return await self.session.get(EpisodeLabel, episode_id)

    async def for_episodes(self, episode_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, EpisodeLabel]:
        if not episode_ids:
            return {}
        rows = await self.session.scalars(
            select(EpisodeLabel).where(EpisodeLabel.episode_id.in_(list(episode_ids)))
        )
        return {row.episode_id: row for row in rows}

    async def save(self, label: EpisodeLabel, change: EpisodeLabelChange) -> None:
        self.session.add(label)
        self.session.add(change)
        await self.session.flush()

    async def history(self, episode_id: uuid.UUID) -> list[EpisodeLabelChange]:
        rows = await self.session.scalars(
            select(EpisodeLabelChange)
            .where(EpisodeLabelChange.episode_id == episode_id)
            .order_by(EpisodeLabelChange.id)
        )
        return list(rows)

    async def verdicts(self, source_id: str | None) -> list[LabelledVerdict]:
        """Every labelled episode's label and decision (one row each; no sequences read)."""
        stmt = select(
            EpisodeLabel.source_id,
            EpisodeLabel.label,
            Episode.decision,
            Episode.sequence.is_not(None),
        ).join(Episode, Episode.id == EpisodeLabel.episode_id)
        if source_id is not None:
            stmt = stmt.where(EpisodeLabel.source_id == source_id)
        rows = await self.session.execute(stmt)
        return [LabelledVerdict(s, lab, d, bool(has)) for s, lab, d, has in rows.all()]

    async def training_set(self, source_ids: Sequence[str] | None) -> list[LabelledEpisode]:
        """Labelled episodes with their stored frames, oldest label first (deterministic)."""
        stmt = (
            select(EpisodeLabel.episode_id, EpisodeLabel.source_id, EpisodeLabel.label)
            .add_columns(Episode.sequence)
            .join(Episode, Episode.id == EpisodeLabel.episode_id)
            .order_by(EpisodeLabel.labelled_at, EpisodeLabel.episode_id)
        )
        if source_ids:
            stmt = stmt.where(EpisodeLabel.source_id.in_(list(source_ids)))
        rows = await self.session.execute(stmt)
        return [LabelledEpisode(e, s, lab, seq) for e, s, lab, seq in rows.all()]

    async def by_ids(self, episode_ids: Sequence[uuid.UUID]) -> list[LabelledEpisode]:
        """The given labelled episodes (current labels), in the given order where found."""
        if not episode_ids:
            return []
        rows = await self.session.execute(
            select(EpisodeLabel.episode_id, EpisodeLabel.source_id, EpisodeLabel.label)
            .add_columns(Episode.sequence)
            .join(Episode, Episode.id == EpisodeLabel.episode_id)
            .where(EpisodeLabel.episode_id.in_(list(episode_ids)))
        )
        found = {e: LabelledEpisode(e, s, lab, seq) for e, s, lab, seq in rows.all()}
        return [found[i] for i in episode_ids if i in found]

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(EpisodeLabel)) or 0)


class ModelVersionRepository:
    """Queries on `model_versions` and `model_activations`."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, model_version: str) -> ModelVersion | None:
        return await self.session.get(ModelVersion, model_version)

    async def exists(self, model_version: str) -> bool:
        found = await self.session.scalar(
            select(ModelVersion.model_version).where(ModelVersion.model_version == model_version)
        )
        return found is not None

    async def add(self, version: ModelVersion) -> None:
        self.session.add(version)
        await self.session.flush()

    async def listing(self) -> list[ModelVersion]:
        """Every version newest first, without the weights (deferred)."""
        from sqlalchemy.orm import defer

        rows = await self.session.scalars(
            select(ModelVersion)
            .options(defer(ModelVersion.checkpoint))
            .order_by(ModelVersion.created_at.desc(), ModelVersion.model_version)
        )
        return list(rows)

    async def active(self) -> str | None:
        """The active version: the latest activation's (None before the first)."""
        return await self.session.scalar(
            select(ModelActivation.model_version).order_by(ModelActivation.id.desc()).limit(1)
        )

    async def activations(self) -> list[ModelActivation]:
        rows = await self.session.scalars(select(ModelActivation).order_by(ModelActivation.id))
        return list(rows)

    async def activate(self, activation: ModelActivation) -> None:
        self.session.add(activation)
        await self.session.flush()
