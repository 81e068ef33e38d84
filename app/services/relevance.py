"""How well a passage answers a question, on an absolute scale, and the answer's focus.

Fused retrieval scores are ranks: the best passage for "What is the capital of France?" is
ranked first just like the best one for a real question. The relevance floor needs a score
that means the same thing for every question, so a passage is judged by **coverage**: the
share of the question's term weight (BM25 inverse document frequency over the knowledge
chunks; a term no chunk contains weighs as much as the rarest term) found in the passage's
title, heading path and text. For questions without Hangul the packaged English embedder adds
a second opinion, the cosine similarity of question and passage. A question with no content
words at all ("🤔🤔🤔") covers nothing.

The focused local answer uses the same scale: the sentences (or a whole numbered procedure)
of the best passage that cover most of the question, and another passage only when it
answers too.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass

from app.clients.vector_store import ChunkHit
from app.core.settings import LLMSettings
from app.core.tokenizer import has_hangul
from app.services.rag_text import answer_units
from app.services.retrieval import KnowledgeIndex

EPISODE_PREFIX = "episode:"
# A numbered step ("1. ", "2) ", "① ") or a bullet opens a list item.
_STEP = re.compile(r"^\s*(?:\d{1,3}[.)]|[①-⑳]|[-*+])\s+")
_NUMBERED = re.compile(r"^\s*(?:\d{1,3}[.)]|[①-⑳])\s*")
# Other units of the best passage join the answer only when they cover this share of what
# the best unit covers (and add something it lacks).
_COMPANION_SHARE = 0.8
# How much better a later passage's best sentence must cover the question to lead the answer.
_LEAD_MARGIN = 0.2
# A second passage joins only when its best sentence covers at least this share on its own.
_SECOND_PASSAGE_MIN = 0.5
# Most sentences quoted from one passage (a numbered procedure is quoted whole).
_MAX_UNITS = 3


def is_episode(hit: ChunkHit) -> bool:
    return hit.doc_id.startswith(EPISODE_PREFIX)


@dataclass(frozen=True, slots=True)
class Judged:
    """A passage with how much of the question it covers (0..1) and, where the embedder
    reads the question's language, its cosine similarity to the question."""

    hit: ChunkHit
    coverage: float
    similarity: float | None

    def relevant(self, settings: LLMSettings) -> bool:
        if self.coverage >= settings.relevance_floor:
            return True
        return self.similarity is not None and self.similarity >= settings.relevance_floor_dense


@dataclass(frozen=True, slots=True)
class Quote:
    """A piece of the answer: text quoted from source number `source` (1-based)."""

    source: int
    text: str


class RelevanceJudge:
    """Scores passages against a question on the coverage scale (see the module doc)."""

    def __init__(self, index: KnowledgeIndex, settings: LLMSettings) -> None:
        self.index = index
        self.settings = settings

    def _max_idf(self) -> float:
        # The idf of a term found in one chunk: the rarest a known term can be. (The formula's
        # value for df=0 would outweigh every known term in a small knowledge base.)
        n = len(self.index.lexical)
        return math.log(1.0 + (n - 0.5) / 1.5) if n else 1.0

    def weights(self, terms: set[str]) -> dict[str, float]:
        """Each question term's weight: its idf, or the rarest term's for an unknown one."""
        top = self._max_idf()
        return {t: (self.index.lexical.idf(t) or top) for t in terms}

    @staticmethod
    def coverage(weights: dict[str, float], terms: set[str], text: str = "") -> float:
        """Share of the weight of the question's terms found among `terms`; a term the
        tokenizer split differently in the passage ("할당량" in "할당량이") still counts when
        it appears in the passage's `text` (casefolded) as it is."""
        total = sum(weights.values())
        if total <= 0:
            return 0.0
        found = sum(w for t, w in weights.items() if t in terms or (len(t) > 1 and t in text))
        return found / total

    def _passage(self, hit: ChunkHit) -> tuple[set[str], str]:
        stored = self.index.chunk(hit.chunk_id) if hit.chunk_id else None
        body = stored.tokens.split() if stored is not None else self.index.tokens(hit.chunk)
        text = f"{hit.title}\n{hit.metadata.get('section') or ''}\n{hit.chunk}".casefold()
        return set(body) | set(self.index.tokens(hit.title)), text

    def question_terms(self, question: str) -> set[str]:
        """The words that name the question's topic (all ranking tokens when it has none)."""
        tokenizer = self.index.tokenizer
        return set(tokenizer.tokens(question, content_only=True)) or set(tokenizer.tokens(question))

    def _score_all(self, question: str, hits: list[ChunkHit]) -> tuple[list[float], set[str]]:
        terms = self.question_terms(question)
        weights = self.weights(terms)
        return [self.coverage(weights, *self._passage(h)) for h in hits], terms

    def dense_applies(self, question: str) -> bool:
        """The embedder's similarity counts only where it reads the question's language."""
        if not has_hangul(question):
            return True
        return self.settings.dense_weight_ko >= self.settings.dense_weight

    async def judge(self, question: str, hits: list[ChunkHit]) -> list[Judged]:
        """Coverage (and similarity) of each document passage; episodes are not judged here."""
        if not hits:
            return []
        coverages, terms = await asyncio.to_thread(self._score_all, question, hits)
        # The dense ranking's own cosine (carried on the hit), not a second embedding pass.
        dense = bool(terms) and self.dense_applies(question)
        similarities = [hit.metadata.get("similarity") if dense else None for hit in hits]
        return [
            Judged(hit, coverage, similarity)
            for hit, coverage, similarity in zip(hits, coverages, similarities, strict=True)
        ]

    # -- the focused local answer ------------------------------------------------------------

    def _units(self, chunk: str) -> list[tuple[int, str, bool]]:
        """(offset, text, is a list item) of a passage's quotable units."""
        lines = {}
        pos = 0
        for line in chunk.splitlines(keepends=True):
            lines[pos] = line
            pos += len(line)
        starts = sorted(lines)
        units = []
        for offset, text in answer_units(chunk):
            line_start = max((s for s in starts if s <= offset), default=0)
            units.append((offset, text, bool(_STEP.match(lines.get(line_start, "")))))
        return units

    def _list_around(self, chunk: str, offset: int) -> list[tuple[int, str]]:
        """The whole list (consecutive list lines) that holds the unit at `offset`."""
        lines: list[tuple[int, str]] = []
        pos = 0
        for line in chunk.splitlines(keepends=True):
            lines.append((pos, line.rstrip("\n")))
            pos += len(line)
        at = max(i for i, (start, _) in enumerate(lines) if start <= offset)
        first = last = at

        # Continuation lines (indented, not blank) stay with their item.
        def in_list(i: int) -> bool:
            text = lines[i][1]
            return bool(_STEP.match(text)) or (bool(text.strip()) and text[:1].isspace())

        while first > 0 and in_list(first - 1):
            first -= 1
        while last + 1 < len(lines) and in_list(last + 1):
            last += 1
        return [(s, t.strip()) for s, t in lines[first : last + 1] if t.strip()]

    def _focus_passage(
        self, hit: ChunkHit, weights: dict[str, float]
    ) -> tuple[float, list[tuple[int, str]]]:
        """The best unit's coverage, and the units quoted from this passage (in order). A
        sentence is read with its title and heading path ("카카오 토큰 검증" says what the
        sentence under it is about)."""
        chunk = hit.chunk
        units = self._units(chunk)
        if not units:
            return 0.0, []
        heading = f"{hit.title}\n{hit.metadata.get('section') or ''}"
        context = set(self.index.tokens(heading))
        scored = [
            (
                self.coverage(
                    weights,
                    set(self.index.tokens(text)) | context,
                    f"{heading}\n{text}".casefold(),
                ),
                i,
            )
            for i, (_, text, _) in enumerate(units)
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        best_score, best = scored[0]
        offset, text, in_list = units[best]
        if in_list and (_NUMBERED.match(text) or self._numbered_list(chunk, offset)):
            return best_score, self._list_around(chunk, offset)
        steps = self._steps_after(chunk, offset)
        if steps:  # "…아래 순서로 조치합니다." introduces the steps: quote them with it
            return best_score, [(offset, text), *steps]
        chosen = [best]
        best_terms = set(self.index.tokens(text))
        for score, i in scored[1:]:
            if len(chosen) >= _MAX_UNITS or score < best_score * _COMPANION_SHARE or score <= 0:
                break
            terms = set(self.index.tokens(units[i][1]))
            if terms - best_terms & set(weights):  # says something the best one does not
                chosen.append(i)
                best_terms |= terms
        return best_score, [(units[i][0], units[i][1]) for i in sorted(chosen)]

    def _steps_after(self, chunk: str, offset: int) -> list[tuple[int, str]]:
        """The numbered list right after the line holding `offset` (blank lines between
        allowed), when that line is the last sentence before it."""
        line_end = chunk.find("\n", offset)
        if line_end < 0:
            return []
        rest = chunk[line_end:]
        following = rest.lstrip("\n")
        if not _NUMBERED.match(following):
            return []
        return self._list_around(chunk, line_end + len(rest) - len(following))

    def _numbered_list(self, chunk: str, offset: int) -> bool:
        return any(_NUMBERED.match(t) for _, t in self._list_around(chunk, offset))

    def focus(self, question: str, hits: list[ChunkHit]) -> list[Quote]:
        """The quotes of a local answer (blocking: Kiwi). The passage (of the first three)
        whose best sentence covers most of the question leads; one more joins only when its
        best sentence covers the question as fully and on its own."""
        if not hits:
            return []
        if is_episode(hits[0]):
            # An episode summary is a few sentences that only make sense together: quote the
            # episodes the question found, in their order, each whole.
            return [
                Quote(number, " ".join(hit.chunk.split()))
                for number, hit in enumerate(hits[:3], 1)
                if is_episode(hit)
            ]
        weights = self.weights(self.question_terms(question))
        scored = [
            (*self._focus_passage(hit, weights), number) for number, hit in enumerate(hits[:3], 1)
        ]
        scored = [item for item in scored if item[1]]
        if not scored:
            return []
        # Retrieval ranked whole passages (all their words, dense too): a later passage leads
        # only when its best sentence covers the question clearly better.
        scored.sort(key=lambda item: (-(item[0] - _LEAD_MARGIN * (item[2] > 1)), item[2]))
        best_score, quotes, number = scored[0]
        picked = [Quote(number, text) for _, text in quotes]
        for score, more, other in scored[1:2]:
            if score >= max(best_score, _SECOND_PASSAGE_MIN):
                picked += [Quote(other, text) for _, text in more[:_MAX_UNITS]]
        # The same line quoted from two places is said once.
        seen: set[str] = set()
        unique = []
        for quote in picked:
            key = " ".join(quote.text.split()).casefold()
            if key not in seen:
                seen.add(key)
                unique.append(quote)
        return unique
