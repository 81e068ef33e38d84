"""The vectorised BM25 of `LexicalIndex` against the textbook per-chunk loop: the same scores,
bit for bit, and the same order (ties included) while documents are added, replaced (new text,
new chunk ids, as the chunker gives), removed and added back."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter

from app.services.retrieval import LexicalIndex


class ReferenceBM25:
    """BM25 (k1=1.2, b=0.75) as a loop over chunks; ties keep the order chunks are first met."""

    def __init__(self) -> None:
        self.docs: dict[str, list[tuple[str, list[str]]]] = {}

    def replace(self, doc_id: str, chunks: list[tuple[str, list[str]]]) -> None:
        self.docs.pop(doc_id, None)
        if chunks:
            self.docs[doc_id] = chunks

    def search(self, tokens: list[str], limit: int, terms: list[str]) -> list[tuple[str, float]]:
        chunks = [chunk for items in self.docs.values() for chunk in items]
        lengths = {chunk_id: len(toks) for chunk_id, toks in chunks}
        average = sum(lengths.values()) / len(lengths)
        counts = {chunk_id: Counter(toks) for chunk_id, toks in chunks}
        scores: dict[str, float] = {}
        for term in terms:  # the index's own term order, so the float sums match
            having = [c for c, _ in chunks if counts[c][term]]
            idf = math.log(1.0 + (len(lengths) - len(having) + 0.5) / (len(having) + 0.5))
            for c in having:
                tf = counts[c][term]
                norm = 1.2 * (1.0 - 0.75 + 0.75 * lengths[c] / average)
                scores[c] = scores.get(c, 0.0) + idf * tf * (1.2 + 1) / (tf + norm)
        return heapq.nlargest(limit, scores.items(), key=lambda item: item[1])


def test_vectorised_bm25_matches_the_per_chunk_formula_through_updates():
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(40)]
    index, reference = LexicalIndex(), ReferenceBM25()
    for step in range(200):
        doc = f"d{rng.randrange(30)}"
        chunks = [
            (
                f"{doc}-{step}-{i}",
                rng.choices(vocabulary[: rng.randrange(3, 40)], k=rng.randrange(1, 12)),
            )
            for i in range(rng.randrange(0, 4))
        ]
        index.replace(doc, chunks)
        reference.replace(doc, chunks)
        if step % 10 or not len(index):
            continue
        for _ in range(10):
            tokens = rng.choices(vocabulary, k=rng.randrange(1, 5))
            terms = list(set(tokens))  # what the index iterates, in the same process
            assert index.search(tokens, 8) == reference.search(tokens, 8, terms)
