"""Operators' labels on episodes: record (last word wins, every change kept), read, sum up.

A label is one of the active model's labels. What it says about Sentinel's verdict
(`FeedbackOutcome`): a flagged episode labelled normal is a false alarm, an episode judged
normal but labelled abnormal is a miss. Labelled episodes keep their stored frames (retention
leaves them), which is what retraining learns from.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from app.core.database import Database
from app.core.errors import NotFound, ValidationFailed
from app.core.metrics import FALSE_ALARM_RATE, FEEDBACK_EPISODES
from app.ml.batcher import InferenceBatcher
from app.models.base import utcnow
from app.models.event import Episode, EpisodeDecision
from app.models.learning import EpisodeLabel, EpisodeLabelChange
from app.repositories.learning import LabelledVerdict, LabelRepository
from app.schemas.learning import (
    EpisodeFeedback,
    EpisodeFeedbackOut,
    FeedbackHistory,
    FeedbackOutcome,
    FeedbackSummary,
    LabelChangeOut,
    SourceFeedback,
)

ALWAYS_NORMAL = frozenset({"normal"})


def outcome_of(decision: str | None, label: str, normal: Iterable[str]) -> FeedbackOutcome:
    """What a label says about a verdict (normal labels compared case-insensitively)."""
    is_normal = label.lower() in {n.lower() for n in normal} | ALWAYS_NORMAL
    if decision == EpisodeDecision.abnormal:
        return FeedbackOutcome.CONFIRMED if not is_normal else FeedbackOutcome.FALSE_ALARM
    if decision == EpisodeDecision.normal:
        return FeedbackOutcome.CONFIRMED if is_normal else FeedbackOutcome.MISS
    return FeedbackOutcome.UNDECIDED


def feedback_of(row: EpisodeLabel) -> EpisodeFeedback:
    return EpisodeFeedback(label=row.label, note=row.note, by=row.labelled_by, at=row.labelled_at)


def _summarise(source_id: str, rows: list[LabelledVerdict], normal: set[str]) -> SourceFeedback:
    outcomes = [outcome_of(r.decision, r.label, normal) for r in rows]
    false_alarms = outcomes.count(FeedbackOutcome.FALSE_ALARM)
    flagged = sum(1 for r in rows if r.decision == EpisodeDecision.abnormal)
    return SourceFeedback(
        source_id=source_id,
        labelled=len(rows),
        false_alarms=false_alarms,
        misses=outcomes.count(FeedbackOutcome.MISS),
        with_sequence=sum(1 for r in rows if r.has_sequence),
        false_alarm_rate=round(false_alarms / flagged, 4) if flagged else None,
    )


class EpisodeFeedbackService:
    """Labels on episodes; owns the transactions."""

    def __init__(self, database: Database, batcher: InferenceBatcher) -> None:
        self.db = database
        self.batcher = batcher

    def _labels(self) -> tuple[list[str], set[str]]:
        ckpt = self.batcher.checkpoint
        if ckpt is None:
            raise self.batcher.unavailable()
        return list(ckpt.labels), set(ckpt.normal_labels)

    async def label(
        self, episode_id: uuid.UUID, label: str, note: str | None, by: str
    ) -> EpisodeFeedbackOut:
        """Record `label` for the episode (open or closed); a repeat replaces it."""
        labels, normal = self._labels()
        if label not in labels:
            raise ValidationFailed(
                f"Unknown label '{label}': the active model knows {', '.join(labels)}",
                code="unknown_label",
                context={"label": label, "labels": ", ".join(labels)},
                details={"labels": labels},
            )
        now = utcnow()
        async with self.db.sessions() as session, session.begin():
            repo = LabelRepository(session)
            episode: Episode | None = await repo.episode(episode_id)
            if episode is None:
                raise NotFound(f"No episode with id {episode_id}")
            row = await repo.current(episode_id)
            old = row.label if row else None
            if row is None:
                row = EpisodeLabel(episode_id=episode_id, source_id=episode.source_id, changes=0)
            row.label, row.note, row.labelled_by, row.labelled_at = label, note, by, now
            row.changes = (row.changes or 0) + 1
            change = EpisodeLabelChange(
                episode_id=episode_id,
                old_label=old,
                new_label=label,
                note=note,
                changed_by=by,
                changed_at=now,
            )
            await repo.save(row, change)
            decision = episode.decision
        await self.export_metrics()
        return EpisodeFeedbackOut(
            **feedback_of(row).model_dump(),
            episode_id=episode_id,
            outcome=outcome_of(decision, label, normal),
            changes=row.changes,
        )

    async def history(self, episode_id: uuid.UUID) -> FeedbackHistory:
        normal = set(self.batcher.checkpoint.normal_labels) if self.batcher.checkpoint else set()
        async with self.db.sessions() as session:
            repo = LabelRepository(session)
            episode = await repo.episode(episode_id)
            if episode is None:
                raise NotFound(f"No episode with id {episode_id}")
            row = await repo.current(episode_id)
            changes = await repo.history(episode_id)
        current = (
            EpisodeFeedbackOut(
                **feedback_of(row).model_dump(),
                episode_id=episode_id,
                outcome=outcome_of(episode.decision, row.label, normal),
                changes=row.changes,
            )
            if row
            else None
        )
        return FeedbackHistory(
            current=current,
            history=[
                LabelChangeOut(
                    old_label=c.old_label,
                    new_label=c.new_label,
                    note=c.note,
                    by=c.changed_by,
                    at=c.changed_at,
                )
                for c in changes
            ],
        )

    async def summary(self, source_id: str | None = None) -> FeedbackSummary:
        """Per source: labelled episodes, false alarms, misses, and those training can use."""
        normal = set(self.batcher.checkpoint.normal_labels) if self.batcher.checkpoint else set()
        async with self.db.sessions() as session:
            rows = await LabelRepository(session).verdicts(source_id)
        by_source: dict[str, list[LabelledVerdict]] = {}
        for row in rows:
            by_source.setdefault(row.source_id, []).append(row)
        return FeedbackSummary(
            sources=[_summarise(s, by_source[s], normal) for s in sorted(by_source)],
            total=_summarise("*", rows, normal),
        )

    async def export_metrics(self) -> None:
        """Feedback counts and false-alarm rates per source for Prometheus."""
        summary = await self.summary()
        FEEDBACK_EPISODES.clear()
        FALSE_ALARM_RATE.clear()
        for src in summary.sources:
            FEEDBACK_EPISODES.labels(src.source_id, "labelled").set(src.labelled)
            FEEDBACK_EPISODES.labels(src.source_id, "false_alarm").set(src.false_alarms)
            FEEDBACK_EPISODES.labels(src.source_id, "miss").set(src.misses)
            if src.false_alarm_rate is not None:
                FALSE_ALARM_RATE.labels(src.source_id).set(src.false_alarm_rate)
