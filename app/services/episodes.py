"""The episode state machine and its decision.

Rules (applied per source in arrival order, inside the ingest transaction; documented in README):
- START opens an episode. A START while one is open first closes the open one with
  `close_reason="superseded"` (decided from what it has, alerting like any close), then opens anew.
- PROBS adds its probabilities (and any sequence frames) to the open episode; a PROBS with no open
  episode is stored unattached (`episode_id: null`).
- END closes the open episode (`close_reason="end"`), counting its own probabilities and sequence.
  An END with no open episode becomes a one-event episode (`close_reason="end_without_start"`)
  decided from the END alone.
- Timestamps are recorded as sent and never reorder events. An event stamped before the
  episode's start still counts and increments `out_of_order`; `ended_at` is never before
  `started_at`.
- Decision: with a sequence (END's own, else the frames accumulated from START/PROBS) the
  behaviour analyzer decides; otherwise the mean probability per label over the episode's
  events, and the anomaly score is the sum of the means of non-normal labels (capped at 1)
  against the analyzer's threshold. No probabilities and no sequence → decision `unknown`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, assert_never

from loguru import logger

from app.core.encoding import json_size
from app.core.errors import Unavailable, ValidationFailed
from app.ml import DEFAULT_NORMAL_LABELS
from app.models.event import CloseReason, DecidedBy, EpisodeDecision, EpisodeStatus
from app.repositories.events import EpisodeRepository, EpisodeState
from app.schemas.events import EventType

# Labels treated as normal whatever the model says (the agent's own "normal" class).
ALWAYS_NORMAL = frozenset({"normal"})
DEFAULT_THRESHOLD = 0.5


class BehaviorAnalyzer(Protocol):
    """What the episode decision needs from the behaviour analyzer (`BehaviorService`)."""

    @property
    def normal_labels(self) -> frozenset[str]: ...

    @property
    def threshold(self) -> float: ...

    async def analyze(self, sequence: Sequence[Sequence[float]]) -> Any: ...


@dataclass
class Decision:
    """How a closed episode was judged."""

    decision: EpisodeDecision
    decided_by: DecidedBy
    anomaly_score: float | None = None
    threshold: float | None = None
    top_label: str | None = None
    scores: dict[str, float] | None = None
    model_version: str | None = None


@dataclass
class Transition:
    """What one event did: the episode it belongs to and the episodes it closed."""

    episode_id: uuid.UUID | None
    open_after: EpisodeState | None
    closed: list[EpisodeState] = field(default_factory=list)


class EpisodeDecider:
    """Decides a closing episode: the analyzer for sequences, the PROBS aggregate otherwise."""

    def __init__(self, analyzer: BehaviorAnalyzer | None, fallback_threshold: float | None) -> None:
        self.analyzer = analyzer
        self.fallback_threshold = (
            fallback_threshold if fallback_threshold is not None else DEFAULT_THRESHOLD
        )

    def policy(self) -> tuple[frozenset[str], float]:
        """Normal labels (lower-case) and the threshold, from the analyzer when it has a model."""
        if self.analyzer is not None:
            try:
                labels = frozenset(label.lower() for label in self.analyzer.normal_labels)
                return labels | ALWAYS_NORMAL, float(self.analyzer.threshold)
            except Exception as exc:  # no model loaded: keep deciding from probabilities
                logger.debug("analyzer policy unavailable: {}", type(exc).__name__)
        return DEFAULT_NORMAL_LABELS | ALWAYS_NORMAL, self.fallback_threshold

    def from_probs(self, episode: EpisodeState) -> Decision:
        if episode.probs_count == 0:
            return Decision(EpisodeDecision.unknown, DecidedBy.none)
        normal, threshold = self.policy()
        means = {
            label: round(total / episode.probs_count, 6)
            for label, total in sorted(episode.probs_sum.items())
        }
        score = min(1.0, sum(p for label, p in means.items() if label.lower() not in normal))
        top = max(means, key=lambda label: (means[label], label))
        return Decision(
            EpisodeDecision.abnormal if score >= threshold else EpisodeDecision.normal,
            DecidedBy.probs,
            anomaly_score=round(score, 6),
            threshold=threshold,
            top_label=top,
            scores=means,
        )

    async def decide(self, episode: EpisodeState, own_sequence: list | None) -> Decision:
        sequence = own_sequence or episode.sequence
        if sequence and self.analyzer is not None:
            try:
                result = await self.analyzer.analyze(sequence)
            except Unavailable as exc:
                logger.info("behaviour model unavailable, deciding from PROBS: {}", exc.message)
            except ValidationFailed as exc:
                if own_sequence:
                    raise ValidationFailed(f"sequence: {exc.message}") from exc
                logger.info("accumulated sequence rejected, deciding from PROBS: {}", exc.message)
            else:
                return Decision(
                    EpisodeDecision.abnormal if result.is_anomaly else EpisodeDecision.normal,
                    DecidedBy.sequence,
                    anomaly_score=float(result.anomaly_score),
                    threshold=float(result.threshold),
                    top_label=result.top_label,
                    scores={k: float(v) for k, v in dict(result.scores).items()},
                    model_version=str(result.model_version),
                )
        return self.from_probs(episode)


class EpisodeTracker:
    """Applies START/PROBS/END (and stored HEARTBEATs) to a source's episodes inside the caller's
    transaction."""

    def __init__(
        self,
        decider: EpisodeDecider,
        max_sequence_frames: int,
        max_sequence_bytes: int = 262_144,
    ) -> None:
        self.decider = decider
        self.max_frames = max_sequence_frames
        # Stored frames per episode, as JSON bytes: every event of the source reads them back,
        # so their size bounds the work each later event (and each close) does.
        self.max_bytes = max_sequence_bytes
        # Episodes whose frames were already cut (logged once each; bounded, oldest dropped).
        self._truncated: dict[uuid.UUID, None] = {}

    async def apply(
        self,
        episodes: EpisodeRepository,
        current: EpisodeState | None,
        *,
        source_id: str,
        event_type: EventType,
        at: datetime,
        probs: dict[str, float] | None,
        sequence: list | None,
    ) -> Transition:
        """Apply one event to the source's open episode (`current`, or None).

        An exhaustive `match` on `EventType`: a new event type fails the type check here
        until it is given a rule (and `assert_never` refuses it at run time).
        """
        match event_type:
            case EventType.START:
                closed = []
                if current is not None:
                    await self._close(current, CloseReason.superseded, at, None)
                    closed.append(current)
                episode = self._open(episodes, source_id, at)
                self._add(episode, at, probs, sequence)
                return Transition(episode.id, episode, closed)
            case EventType.PROBS:
                if current is None:
                    return Transition(None, None)
                self._add(current, at, probs, sequence)
                return Transition(current.id, current)
            case EventType.END:
                if current is None:
                    current = self._open(episodes, source_id, at)
                    reason = CloseReason.end_without_start
                else:
                    reason = CloseReason.end
                self._add(current, at, probs, None)
                await self._close(current, reason, at, sequence)
                return Transition(current.id, None, [current])
            case EventType.HEARTBEAT:
                # A stored heartbeat belongs to no episode and changes none.
                return Transition(None, current)
            case _:
                assert_never(event_type)

    @staticmethod
    def _open(episodes: EpisodeRepository, source_id: str, at: datetime) -> EpisodeState:
        episode = EpisodeState(id=uuid.uuid4(), source_id=source_id, started_at=at)
        episodes.add(episode)
        return episode

    def _add(
        self,
        episode: EpisodeState,
        at: datetime,
        probs: dict[str, float] | None,
        sequence: list | None,
    ) -> None:
        episode.event_count += 1
        if at < episode.started_at:
            episode.out_of_order += 1
        if probs:
            # In place: `EpisodeRepository.save` writes the aggregates on every update.
            sums, maxes = episode.probs_sum, episode.probs_max
            for label, p in probs.items():
                sums[label] = sums.get(label, 0.0) + p
                maxes[label] = max(maxes.get(label, 0.0), p)
            episode.probs_count += 1
        if sequence:
            # Always a new list: `EpisodeRepository.save` writes the column only when the
            # episode's list is no longer the one it loaded.
            stored = episode.sequence or []
            room = self.max_bytes - (json_size(stored) if stored else 2)
            added = self._fitting(sequence, room)
            if len(added) < len(sequence):
                self._note_truncated(episode, len(sequence) - len(added))
            frames = [*stored, *added]
            episode.sequence = frames[-self.max_frames :]

    @staticmethod
    def _fitting(frames: list, room: int) -> list:
        """The leading `frames` whose JSON fits in `room` bytes (one more byte per comma)."""
        kept: list = []
        for frame in frames:
            room -= json_size(frame) + 1
            if room < 0:
                break
            kept.append(frame)
        return kept

    def _note_truncated(self, episode: EpisodeState, dropped: int) -> None:
        """Record, once per episode, that frames past `EPISODE_SEQUENCE_MAX_BYTES` were dropped."""
        if episode.id in self._truncated:
            return
        self._truncated[episode.id] = None
        if len(self._truncated) > 4096:
            del self._truncated[next(iter(self._truncated))]
        logger.info(
            "episode {} of {}: stored frames reached EPISODE_SEQUENCE_MAX_BYTES ({} bytes); "
            "{} later frame(s) not stored",
            episode.id,
            episode.source_id,
            self.max_bytes,
            dropped,
        )

    async def _close(
        self,
        episode: EpisodeState,
        reason: CloseReason,
        at: datetime,
        own_sequence: list | None,
    ) -> None:
        decision = await self.decider.decide(episode, own_sequence)
        if own_sequence:
            # The frames the verdict came from: what an operator's label will train on.
            kept = self._fitting(list(own_sequence[-self.max_frames :]), self.max_bytes - 2)
            if len(kept) < min(len(own_sequence), self.max_frames):
                self._note_truncated(episode, min(len(own_sequence), self.max_frames) - len(kept))
            episode.sequence = kept
        episode.status = EpisodeStatus.closed
        episode.close_reason = reason
        episode.ended_at = max(at, episode.started_at)
        episode.decision = decision.decision
        episode.decided_by = decision.decided_by
        episode.anomaly_score = decision.anomaly_score
        episode.threshold = decision.threshold
        episode.top_label = decision.top_label
        episode.scores = decision.scores
        episode.model_version = decision.model_version
