"""Retrieval evaluation: hit@1, hit@3 and MRR of the document ranking for a question set,
for the hybrid ranking and for each of its two halves (`sentinel eval-retrieval`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from app.services.rag import RagService
from app.services.retrieval import RetrievalMode

# Passages looked at per question: the document ranking is their distinct documents.
DEPTH = 10


@dataclass(frozen=True, slots=True)
class EvalCase:
    """A question and the document (title or id) that answers it."""

    question: str
    doc: str


@dataclass(slots=True)
class ModeScore:
    """How one ranking did on a question set."""

    mode: RetrievalMode
    questions: int
    hit1: float
    hit3: float
    mrr: float
    misses: list[str] = field(default_factory=list)  # questions whose document was not first


def load_cases(path: Path) -> list[EvalCase]:
    """One `{"question": ..., "doc": ...}` per line; blank lines are skipped."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cases.append(EvalCase(str(row["question"]).strip(), str(row["doc"]).strip()))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f'{path}:{number}: expected {{"question": "...", "doc": "title or id"}} ({exc})'
            ) from exc
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
    """Score each ranking mode on the cases (documents ranked by their best passage)."""
    embeddings = await rag.embedder.aembed([c.question for c in cases])
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
