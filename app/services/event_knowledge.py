"""Event-grounded answers: closed episodes (and their alerts) as short summaries in Chroma.

After an ingest commits a close, or the alert dispatcher records an alert's outcome, the
episode ids are queued here; a background task writes one summary per episode into the
`<CHROMA_COLLECTION>_events` collection, so "what happened at camera-3 last night?" is
answered from them. Indexing never fails (or slows) an ingest: errors are logged and the
next close or a `POST /api/v1/knowledge/reindex` repairs the collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from app.clients.vector_store import ChunkHit, VectorStore
from app.core.database import Database
from app.core.errors import Unavailable
from app.models.alert import Alert
from app.models.event import Episode, EpisodeDecision, EpisodeStatus
from app.repositories.alerts import AlertRepository
from app.repositories.events import EpisodeRepository
from app.repositories.rag_cache import IndexVersionStore

BATCH = 100
STOP_DRAIN_SECS = 5.0
# Words of a question that could be a source id ("camera-3", "lobby", "cam_2.north").
_TOKEN = re.compile(r"\w[\w.:/@-]*\w|\w")
MAX_CANDIDATES = 50


def _part_of_day(at: datetime) -> str:
    hour = at.hour
    if 5 <= hour < 12:
        return "in the morning"
    if 12 <= hour < 17:
        return "in the afternoon"
    if 17 <= hour < 21:
        return "in the evening"
    return "at night"


def readable_time(at: datetime) -> str:
    """`Tuesday 24 November 2026, 23:10 UTC (at night)`."""
    at = at.astimezone(UTC)
    return f"{at:%A} {at.day} {at:%B %Y, %H:%M} UTC ({_part_of_day(at)})"


def episode_title(episode: Episode) -> str:
    return f"Episode at {episode.source_id} {episode.started_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def episode_summary(episode: Episode, alert: Alert | None) -> str:
    """A few plain sentences a reader (or the extractive answer) can quote on their own."""
    started = episode.started_at.astimezone(UTC)
    ended = (episode.ended_at or episode.started_at).astimezone(UTC)
    sentences = [
        f"Episode at {episode.source_id} from {started.isoformat()} to {ended.isoformat()} "
        f"({readable_time(started)} to {ended:%H:%M} UTC).",
    ]
    decision = episode.decision or EpisodeDecision.unknown
    if episode.top_label:
        score = (episode.scores or {}).get(episode.top_label)
        label = (
            f"{episode.top_label} (score {score:.2f})" if score is not None else episode.top_label
        )
        sentences.append(
            f"At {episode.source_id} the behaviour was judged {decision}: top label {label}."
        )
    else:
        sentences.append(f"At {episode.source_id} the behaviour was judged {decision}.")
    if episode.anomaly_score is not None:
        threshold = f" against threshold {episode.threshold:.2f}" if episode.threshold else ""
        sentences.append(
            f"Anomaly score {episode.anomaly_score:.2f}{threshold}, decided by "
            f"{episode.decided_by or 'none'}."
        )
    if alert is not None:
        sentences.append(
            f"An alert for {episode.source_id} was raised; its status is {alert.status}."
        )
    else:
        sentences.append(f"No alert was raised for {episode.source_id}.")
    sentences.append(
        f"{episode.event_count} events; closed by {episode.close_reason or 'unknown'}."
    )
    return " ".join(sentences)


def summary_item(episode: Episode, alert: Alert | None) -> tuple[str, str, dict[str, Any]]:
    """(Chroma id, text, metadata) for one closed episode."""
    doc_id = f"episode:{episode.id}"
    ended = episode.ended_at or episode.started_at
    meta: dict[str, Any] = {
        "doc_id": doc_id,
        "title": episode_title(episode),
        "kind": "episode",
        "source_id": episode.source_id,
        "episode_id": str(episode.id),
        "started_at": episode.started_at.astimezone(UTC).isoformat(),
        "ended_at": ended.astimezone(UTC).isoformat(),
        "decision": episode.decision or EpisodeDecision.unknown,
    }
    if alert is not None:
        meta["alert_status"] = alert.status
    return doc_id, episode_summary(episode, alert), meta


def source_candidates(question: str) -> list[str]:
    """The question's words, as they could name a source id (deduplicated, in order)."""
    seen: dict[str, None] = {}
    for token in _TOKEN.findall(question):
        seen.setdefault(token, None)
    return list(seen)[:MAX_CANDIDATES]


class EventKnowledgeIndexer:
    """Writes closed-episode summaries into the events collection, off the request path."""

    def __init__(
        self, database: Database, vector_store: VectorStore, index_version: IndexVersionStore
    ) -> None:
        self.db = database
        self.vectors = vector_store
        self.index_version = index_version
        self._queue: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="event-knowledge-indexer")

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None  # nothing new is queued from here on
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_DRAIN_SECS):
                await self._queue.join()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def schedule(self, episode_ids: list[uuid.UUID]) -> None:
        """Queue episodes for (re)indexing; a no-op while stopped. Never raises."""
        if self._task is None:
            return
        for episode_id in episode_ids:
            self._queue.put_nowait(episode_id)

    async def join(self) -> None:
        """Wait until everything queued so far is indexed (or failed and logged)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.index(list(dict.fromkeys(batch)))
            except Exception as exc:  # the collection is repaired by the next close or a reindex
                logger.warning("event summary indexing failed: {}: {}", type(exc).__name__, exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    # -- indexing ------------------------------------------------------------------------

    async def _load(self, episode_ids: list[uuid.UUID]) -> list[tuple[str, str, dict[str, Any]]]:
        async with self.db.sessions() as session:
            episodes = await EpisodeRepository(session).get_many(episode_ids)
            closed = [e for e in episodes if e.status == EpisodeStatus.closed]
            alerts = await AlertRepository(session).for_episodes([e.id for e in closed])
        return [summary_item(e, alerts.get(e.id)) for e in closed]

    async def index(self, episode_ids: list[uuid.UUID]) -> int:
        """Summarise these episodes now; returns how many were written."""
        items = await self._load(episode_ids)
        if items:
            await self.vectors.upsert_events(items)
            # Cached answers were built without these summaries.
            await self.index_version.bump()
        return len(items)

    async def rebuild(self) -> int:
        """Summarise every closed episode in the database and remove summaries of episodes
        that are gone. The collection is never dropped, so other processes (and a rebuild
        running at the same time elsewhere) keep a valid handle."""
        async with self.db.sessions() as session:
            ids = await EpisodeRepository(session).closed_ids()
        written = 0
        kept: set[str] = set()
        for start in range(0, len(ids), BATCH):
            items = await self._load(ids[start : start + BATCH])
            await self.vectors.upsert_events(items)
            kept.update(item_id for item_id, _, _ in items)
            written += len(items)
        stale = [item_id for item_id in await self.vectors.event_ids() if item_id not in kept]
        await self.vectors.delete_events(stale)
        if written or stale:
            await self.index_version.bump()
        return written

    # -- retrieval -----------------------------------------------------------------------

    async def retrieve(
        self, question: str, embedding: list[float], top_k: int
    ) -> tuple[list[ChunkHit], bool]:
        """Episode hits for a question, and whether it named a known source.

        A question naming a source id that has summaries is answered from that source's
        episodes only; otherwise the closest episodes of any source. A vector store failure
        here leaves the answer to the documents.
        """
        name = self.vectors.events_collection
        try:
            candidates = source_candidates(question)
            if candidates:
                named = await self.vectors.query(
                    embedding,
                    top_k,
                    collection=name,
                    where={"source_id": {"$in": candidates}},
                )
                if named:
                    return named, True
            return await self.vectors.query(embedding, top_k, collection=name), False
        except Unavailable as exc:
            logger.info("event summaries unavailable for this answer: {}", exc.message)
            return [], False


def merge_hits(
    documents: list[ChunkHit], episodes: list[ChunkHit], top_k: int, named_source: bool
) -> list[ChunkHit]:
    """Best `top_k` by score; a question naming a source keeps at least half for its episodes."""
    reserved = episodes[: (top_k + 1) // 2] if named_source else []
    rest = sorted([*documents, *episodes[len(reserved) :]], key=lambda h: h.score, reverse=True)[
        : top_k - len(reserved)
    ]
    return sorted([*reserved, *rest], key=lambda h: h.score, reverse=True)
