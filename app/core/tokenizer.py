"""Korean-aware tokens for lexical (BM25) ranking.

Korean text is split into morphemes by Kiwi (`kiwipiepy`; its model ships in the
`kiwipiepy-model` package, so nothing is downloaded at run time) and only the content-bearing
ones are kept (nouns, verb and adjective stems, roots, numbers, Chinese characters), so
"할당량이" and "할당량은" both give "할당량". Latin words and identifiers are taken by a
regular expression instead of Kiwi: `RAG_QUOTA_COOLDOWN_SECS` gives the whole identifier plus
its parts ("rag", "quota", "cooldown", "secs"), all case-folded.

Kiwi is CPU work: call `tokens()` from a worker thread, never on the event loop.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

# Morpheme tags kept for ranking: general/proper/bound nouns, numerals, verb and adjective
# stems, roots, adverbs, Chinese characters and numbers. Particles and endings are dropped.
_KEPT_TAGS = frozenset(
    {"NNG", "NNP", "NNB", "NR", "VV", "VA", "XR", "MAG", "SH", "SN", "VV-R", "VA-R", "VV-I", "VA-I"}
)
# Tags that name a topic (the relevance floor's question terms; see `tokens`).
_CONTENT_TAGS = frozenset({"NNG", "NNP", "NR", "XR", "SN"})
# Nouns that frame a question rather than name its topic ("몇 초 동안", "설치 방법", "어떤 종류").
_FRAME_NOUNS = frozenset(
    [
        "동안",
        "때",
        "경우",
        "방법",
        "이유",
        "정도",
        "얼마",
        "무엇",
        "어디",
        "언제",
        "누구",
        "종류",
        "가지",
        "중",
        "후",
        "전",
        "다음",
        "등",
        "것",
        "수",
        "부분",
        "내용",
        "관련",
        "대해",
        "대한",
        "질문",
        "답",
        "설명",
        "뭐",
    ]
)
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
# A Latin word or identifier: letters, digits and the joiners of names (RAG_QUOTA, v0.7.0).
_WORD = re.compile(r"[a-z0-9](?:[a-z0-9_.\-/]*[a-z0-9])?")
_PARTS = re.compile(r"[a-z]+|\d+")
# Frequent English function words carry no signal for ranking.
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "and",
        "or",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "as",
        "from",
        "if",
        "then",
        "than",
        "can",
        "i",
        "we",
        "you",
        "they",
        "he",
        "she",
        "my",
        "our",
        "your",
        "their",
        "there",
        "here",
        "not",
        "no",
        "so",
    ]
)


def has_hangul(text: str) -> bool:
    """Whether `text` contains Korean letters (questions are answered in their language)."""
    return _HANGUL.search(text) is not None


def _stem(word: str) -> str:
    """A light English plural fold ("alerts" -> "alert"); identifiers keep their full form."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and word.isalpha():
        return word[:-1]
    return word


# One Kiwi per process (its model is ~2 s of loading and read-only once built), shared by
# every Tokenizer, e.g. the several apps a test session starts.
_KIWI: Any = None
_KIWI_LOCK = threading.Lock()


class Tokenizer:
    """Morphemes for Korean, normalised words for English and identifiers (thread-safe)."""

    def __init__(self) -> None:
        self._lock = _KIWI_LOCK

    def _load(self) -> Any:
        global _KIWI
        with self._lock:
            if _KIWI is None:
                from kiwipiepy import Kiwi  # the model comes from the kiwipiepy-model package

                _KIWI = Kiwi()
            return _KIWI

    def warm(self) -> None:
        """Load the Kiwi model now (about 2 s) instead of on the first document or question."""
        self._load()

    def tokens(self, text: str, content_only: bool = False) -> list[str]:
        """Ranking tokens of `text`, in order, with repeats (term frequency counts).

        `content_only` keeps what names a topic (nouns, numbers, roots, Latin words and
        identifiers) and drops verb and adjective stems and adverbs ("알려줘" → 알리,
        "높은" → 높): the relevance floor asks whether a passage is about the question's
        topic, and those words are about nearly anything."""
        kept = _CONTENT_TAGS if content_only else _KEPT_TAGS
        text = unicodedata.normalize("NFKC", text)
        out: list[str] = []
        for word in _WORD.findall(text.casefold()):
            parts = _PARTS.findall(word)
            if len(parts) > 1:
                out.append(word)
            out.extend(_stem(p) for p in parts if p not in _STOP and (len(p) > 1 or p.isdigit()))
        if has_hangul(text):
            kiwi = self._load()
            with self._lock:  # one analysis at a time on the shared Kiwi instance
                morphemes = kiwi.tokenize(text)
            for m in morphemes:
                tag = str(m.tag)
                if content_only and m.form in _FRAME_NOUNS:
                    continue
                if (tag in kept and has_hangul(m.form)) or tag == "SH":
                    out.append(m.form)
        return out
