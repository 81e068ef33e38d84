"""Retrieval evaluation (`sentinel eval-retrieval`): hit@1, hit@3 and MRR of the document
ranking for a question set, for the hybrid ranking and for each of its two halves; and the
whole question path (`RagService.retrieve`: event intent, episodes, documents, relevance floor)
for document, event and out-of-domain questions, optionally over synthetic closed episodes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.schemas.events import EventIn, EventType
from app.services.event_knowledge import EventKnowledgeIndexer
from app.services.events import EventService
from app.services.rag import RagService
from app.services.retrieval import RetrievalMode

# Passages looked at per question: the document ranking is their distinct documents.
DEPTH = 10
# Passages the full path returns per question (the API's default top_k).
TOP_K = 5
ANY_SOURCE = "*"


@dataclass(frozen=True, slots=True)
class EvalCase:
    """A question and what answers it: a document (title or id), an episode of a source
    (`event`, `*` for any source), or nothing in the knowledge base (both None)."""

    question: str
    doc: str | None = None
    event: str | None = None

    @property
    def kind(self) -> str:
        """`document`, `event` or `ood` (out of domain)."""
        if self.event is not None:
            return "event"
        return "document" if self.doc is not None else "ood"


@dataclass(slots=True)
class ModeScore:
    """How one ranking did on a question set."""

    mode: RetrievalMode
    questions: int
    hit1: float
    hit3: float
    mrr: float
    misses: list[str] = field(default_factory=list)  # questions whose document was not first


@dataclass(slots=True)
class PathScore:
    """How the full question path did on one kind of question: `hit1` is the share whose
    first passage is right (for out-of-domain questions: whose retrieval found nothing), and
    `asked` how many were taken as questions about events."""

    kind: str
    questions: int = 0
    hits: int = 0
    asked: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def hit1(self) -> float:
        return self.hits / self.questions if self.questions else 0.0


_ROW_SHAPE = (
    '{"question": "...", "doc": "title or id"}, {"question": "...", "event": "source id or *"} '
    'or {"question": "...", "doc": null}'
)


def _case(row: Any) -> EvalCase:
    question = str(row["question"]).strip()
    if "event" in row:
        return EvalCase(question, event=str(row["event"]).strip())
    doc = row["doc"]
    return EvalCase(question, doc=str(doc).strip() if doc is not None else None)


def load_cases(path: Path) -> list[EvalCase]:
    """One question a line (see `_ROW_SHAPE`); blank lines are skipped."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            cases.append(_case(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: expected {_ROW_SHAPE} ({exc})") from exc
    if not cases:
        raise ValueError(f"{path}: no questions")
    return cases


def document_title(text: str, fallback: str) -> str:
    """A markdown document's first `# heading`, else `fallback`."""
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


async def evaluate(
    rag: RagService, cases: list[EvalCase], modes: list[RetrievalMode]
) -> list[ModeScore]:
    """Score each ranking mode on the document cases (documents ranked by their best
    passage); none when the set has no document questions."""
    cases = [c for c in cases if c.doc is not None]
    if not cases:
        return []
    embeddings = await rag.embedder.aembed([c.question for c in cases], query=True)
    scores = []
    for mode in modes:
        hit1 = hit3 = 0
        reciprocal = 0.0
        misses = []
        for case, vector in zip(cases, embeddings, strict=True):
            hits = await rag.documents(case.question, vector.tolist(), DEPTH, mode)
            ranking = list(dict.fromkeys((h.doc_id, h.title) for h in hits))
            rank = next(
                (i for i, (doc_id, title) in enumerate(ranking, 1) if case.doc in (doc_id, title)),
                0,
            )
            hit1 += rank == 1
            hit3 += 0 < rank <= 3
            reciprocal += 1.0 / rank if rank else 0.0
            if rank != 1:
                misses.append(case.question)
        n = len(cases)
        scores.append(ModeScore(mode, n, hit1 / n, hit3 / n, reciprocal / n, misses))
    return scores


async def evaluate_path(
    rag: RagService, cases: list[EvalCase], top_k: int = TOP_K
) -> list[PathScore]:
    """Score `RagService.retrieve` (what an answer is built from) per kind of question."""
    scores = {kind: PathScore(kind) for kind in ("document", "event", "ood")}
    embeddings = await rag.embedder.aembed([c.question for c in cases], query=True)
    for case, vector in zip(cases, embeddings, strict=True):
        found = await rag.retrieve(case.question, vector.tolist(), top_k)
        score = scores[case.kind]
        score.questions += 1
        score.asked += found.events_asked
        first = found.hits[0] if found.found and found.hits else None
        if case.kind == "ood":
            hit = not found.found
        elif first is None:
            hit = False
        elif case.event is not None:
            source = first.metadata.get("source_id")
            hit = first.metadata.get("kind") == "episode" and case.event in (ANY_SOURCE, source)
        else:
            hit = case.doc in (first.doc_id, first.title)
        score.hits += hit
        if not hit:
            score.misses.append(case.question)
    return [s for s in scores.values() if s.questions]


# -- synthetic episodes ------------------------------------------------------------------------

# Sources and the shipped behaviour model's labels (standing and walking are its normal ones).
SOURCES = ("cam-lobby-1", "cam-b1-parking", "cam-3", "cam-gym-2")
LABELS = ("badminton", "running", "standing", "walking")
ABNORMAL_LABELS = frozenset({"badminton", "running"})
SPREAD = timedelta(days=3)


def synthetic_probs(label: str) -> dict[str, float]:
    """Probabilities with `label` on top (0.85), the rest shared out."""
    rest = round(0.15 / (len(LABELS) - 1), 4)
    return {other: 0.85 if other == label else rest for other in LABELS}


def synthetic_episodes(count: int, now: datetime) -> list[list[EventIn]]:
    """`count` episodes (START → PROBS → END), round-robin over `SOURCES` and `LABELS`,
    spread over the last three days; about half are abnormal (and raise an alert)."""
    episodes = []
    for number in range(count):
        source = SOURCES[number % len(SOURCES)]
        # Labels rotate at another pace than sources, so each source gets each label.
        label = LABELS[(number // len(SOURCES) + number) % len(LABELS)]
        started = now - SPREAD * (number + 1) / (count + 1)
        probs = synthetic_probs(label)
        episodes.append(
            [
                EventIn(source_id=source, event_type=EventType.START, timestamp=started),
                EventIn(
                    source_id=source,
                    event_type=EventType.PROBS,
                    timestamp=started + timedelta(seconds=20),
                    probs=probs,
                ),
                EventIn(
                    source_id=source,
                    event_type=EventType.END,
                    timestamp=started + timedelta(seconds=45),
                    probs=probs,
                ),
            ]
        )
    return episodes


async def post_episodes(
    events: EventService, indexer: EventKnowledgeIndexer, count: int, now: datetime
) -> int:
    """Post synthetic episodes through the real ingest path and wait until their summaries
    are indexed; returns how many episodes closed."""
    closed = 0
    for episode in synthetic_episodes(count, now):
        results = [await events.ingest(event) for event in episode]
        closed += results[-1].episode_id is not None
    await indexer.join()
    return closed
