"""Text helpers of the RAG pipeline: question normalisation, PII masking, the prompt, the local
(extractive) answer and the user-facing notice when no model can answer."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from app import prompts
from app.clients.llm.base import ChatMessage
from app.clients.vector_store import ChunkHit

if TYPE_CHECKING:
    from app.services.relevance import Quote

# -- normalisation and cache keys ---------------------------------------------------------


def normalise_question(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip("?!.。？！ ")


def cache_key(question: str, top_k: int, index_version: int) -> str:
    raw = f"{normalise_question(question)}\x1f{top_k}\x1f{index_version}"
    return hashlib.sha256(raw.encode()).hexdigest()


# -- PII masking ----------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Korean resident registration number: YYMMDD-GNNNNNN (G = 1..8).
_RRN = re.compile(r"\b\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[- ]?[1-8]\d{6}\b")
# Phone numbers: Korean mobile/landline (010-1234-5678, 02-123-4567) and international forms.
_PHONE = re.compile(r"(?<!\d)(?:\+\d{1,3}[ -]?)?(?:\(?0\d{1,2}\)?[ -]?)?\d{3,4}[ -]\d{4}(?!\d)")


def mask_pii(text: str) -> str:
    """Mask emails, Korean resident registration numbers and phone numbers."""
    text = _EMAIL.sub("[EMAIL]", text)
    text = _RRN.sub("[RRN]", text)
    return _PHONE.sub("[PHONE]", text)


# -- prompt ---------------------------------------------------------------------------------


_DELIMITER = re.compile(r"<\s*/?\s*passages\s*>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_ENTITY_ROUNDS = 3  # `&amp;lt;` decodes twice; a model reads through layers, so do we


def _visible(text: str) -> str:
    """NFKC without the invisible format characters (zero-width space/joiners, bidi marks)."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def _spans(text: str) -> list[tuple[str, int, int]]:
    """`text` as a model would read it, one (character, start, end) per character, where
    start:end is the original text it came from: NFKC, format characters dropped, HTML
    entities decoded (a few rounds, so double-encoding is seen through too)."""
    units = [(c, i, i + 1) for i, ch in enumerate(text) for c in _visible(ch)]
    for _ in range(_ENTITY_ROUNDS):
        flat = "".join(c for c, _, _ in units)
        matches = [m for m in _ENTITY.finditer(flat) if html.unescape(m.group()) != m.group()]
        if not matches:
            break
        decoded: list[tuple[str, int, int]] = []
        at = 0
        for m in matches:
            decoded += units[at : m.start()]
            start, end = units[m.start()][1], units[m.end() - 1][2]
            decoded += [(c, start, end) for c in _visible(html.unescape(m.group()))]
            at = m.end()
        units = decoded + units[at:]
    return units


def _defuse(text: str) -> str:
    """Document text cannot open or close the passage block, however it spells the tag:
    `＜/passages＞`, `&lt;/passages&gt;` and `<\u200b/passages>` are defused like the ASCII
    tag. Only a tag's own characters are replaced; every other character stays as written
    (Korean text, compatibility jamo and full-width forms elsewhere are not normalised)."""
    probe = _visible(text)
    for _ in range(_ENTITY_ROUNDS):
        probe = _visible(html.unescape(probe))
    if "passages" not in probe.casefold():
        return text  # the fast path: no spelling of the word at all
    units = _spans(text)
    flat = "".join(c for c, _, _ in units)
    pieces: list[str] = []
    at = 0
    for m in _DELIMITER.finditer(flat):
        start, end = units[m.start()][1], units[m.end() - 1][2]
        if start < at:  # overlaps the previous tag through one shared entity: already gone
            continue
        pieces += [text[at:start], "‹/passages›" if "/" in m.group() else "‹passages›"]
        at = end
    return "".join(pieces) + text[at:]


class PromptBuilder:
    """Builds the chat messages from the prompt files with LangChain prompt templates."""

    def __init__(self) -> None:
        from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

        self.template = ChatPromptTemplate.from_messages(
            [
                ("system", prompts.load("rag_system")),
                MessagesPlaceholder("history"),
                ("human", prompts.load("rag_user")),
            ]
        )

    @staticmethod
    def context(hits: list[ChunkHit]) -> str:
        """Numbered passages for the user message. Document text cannot close the block: a
        `<passages>` or `</passages>` tag inside it is defused."""
        if not hits:
            return "(no passages found)"
        return "\n\n".join(
            f"[{i}] {_defuse(h.title)}\n{_defuse(h.chunk)}" for i, h in enumerate(hits, 1)
        )

    def build(
        self, question: str, hits: list[ChunkHit], history: list[tuple[str, str]]
    ) -> list[ChatMessage]:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        past: list[Any] = []
        for q, a in history:
            past += [HumanMessage(q), AIMessage(a)]
        messages = self.template.format_messages(
            context=self.context(hits), history=past, question=question
        )
        role = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
        return [ChatMessage(role[type(m)], str(m.content)) for m in messages]  # type: ignore[arg-type]


# -- local answer ---------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?。？！])\s+|\n+")
_SENTENCE_IN_LINE = re.compile(r"(?<=[.!?。？！])\s+")
_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|?\s*$")
_WORDISH = re.compile(r"[\w\uac00-\ud7a3]")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 1]


def answer_units(text: str) -> list[tuple[int, str]]:
    """The quotable pieces of a passage with their offsets in it: sentences of prose, list
    items, table rows and code lines — never a heading, a fence marker or an empty line."""
    units: list[tuple[int, str]] = []
    pos = 0
    in_code = False
    comment = ""  # a comment line in code says what the next line does: quote them together
    for line in text.splitlines(keepends=True):
        start = pos
        pos += len(line)
        stripped = line.strip()
        if _FENCE_LINE.match(line):
            in_code = not in_code
            comment = ""
            continue
        if in_code and stripped.startswith(("#", "//")):
            comment = stripped
            continue
        if in_code and stripped and comment:
            stripped, comment = f"{stripped}  {comment}", ""
        if not stripped or stripped.startswith("#") or _TABLE_RULE.match(stripped):
            continue
        if len(_WORDISH.findall(stripped)) < 2 or (stripped.endswith(":") and len(stripped) < 20):
            continue  # a label such as "- 환경변수:" says nothing on its own
        offset = start + line.index(stripped[0])
        if in_code or stripped.startswith(("-", "*", "|")) or re.match(r"\d+[.)]\s", stripped):
            bullet = re.match(r"[-*+]\s+", stripped) if not in_code else None
            if bullet:  # the answer renders its own bullets
                offset, stripped = offset + bullet.end(), stripped[bullet.end() :]
            units.append((offset, stripped))
            continue
        for m in re.finditer(r"\S(?:.*?)(?:(?<=[.!?。？！])(?=\s)|$)", stripped):
            sentence = m.group(0).strip()
            if len(_WORDISH.findall(sentence)) >= 2:
                units.append((offset + m.start(), sentence))
    return units


def fuse_ranks(rankings: list[list[float]], weights: list[float], k: int) -> list[float]:
    """Weighted reciprocal rank fusion of several score lists over the same items (a score of
    0 or less does not rank the item in that list)."""
    fused = [0.0] * (len(rankings[0]) if rankings else 0)
    for scores, weight in zip(rankings, weights, strict=True):
        order = sorted((i for i, v in enumerate(scores) if v > 0), key=lambda i: -scores[i])
        for rank, i in enumerate(order, 1):
            fused[i] += weight / (k + rank)
    return fused


def pick_sentences(
    question_vec: np.ndarray,
    sentences: list[tuple[int, str]],
    sentence_vecs: np.ndarray,
    limit: int = 3,
) -> list[tuple[int, str]]:
    """The `limit` sentences closest to the question, kept in source order."""
    if not sentences:
        return []
    scores = sentence_vecs @ question_vec
    best = sorted(np.argsort(-scores)[:limit].tolist())
    return [sentences[i] for i in best]


def _numbered(text: str) -> bool:
    return bool(re.match(r"(?:\d{1,3}[.)]|[①-⑳])\s*", text))


def local_answer_text(quotes: Sequence[Quote], language: str) -> str:
    """The quoted sentences (a numbered procedure line by line), each source's citation
    after its last quote."""
    if not quotes:
        return not_found_text([], language)
    if len(quotes) == 1:
        return f"{quotes[0].text} [{quotes[0].source}]"
    lines = []
    for i, quote in enumerate(quotes):
        line = quote.text if _numbered(quote.text) else f"- {quote.text}"
        last_of_source = i + 1 == len(quotes) or quotes[i + 1].source != quote.source
        lines.append(f"{line} [{quote.source}]" if last_of_source else line)
    return "\n".join(lines)


def not_found_text(closest: list[str], language: str) -> str:
    """The answer when no passage clears the relevance floor, with the closest titles."""
    if language == "ko":
        text = "지식 베이스에서 이 질문에 답하는 내용을 찾지 못했습니다."
        if closest:
            text += " 가장 가까운 문서: " + ", ".join(f"「{t}」" for t in closest) + "."
        return text
    text = "The knowledge base has nothing that answers this question."
    if closest:
        text += " Closest documents: " + ", ".join(f'"{t}"' for t in closest) + "."
    return text


def _when(seconds: float, language: str) -> str:
    at = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%H:%M UTC")
    minutes = max(1, round(seconds / 60))
    return f"{at} ({minutes}분 후)" if language == "ko" else f"{at} (in {minutes} min)"


def notice_text(
    language: str, configured: bool, cooling: dict[str, float], disabled: dict[str, str]
) -> str:
    """Why this is a local answer, when it gets better, and what the user can do."""
    earliest = min(cooling.values()) if cooling else None
    if language == "ko":
        if not configured:
            why = "LLM 제공자가 설정되지 않아(GEMINI_API_KEY / OPENAI_API_KEY 없음)"
        elif earliest is not None:
            why = (
                f"모든 AI 모델의 할당량이 소진되었거나 사용할 수 없어"
                f" (가장 빠른 재사용 가능 시각: {_when(earliest, 'ko')})"
            )
        else:
            why = "AI 모델이 일시적으로 응답하지 않아"
        if not configured:
            tips = (
                "전체 답변을 받으려면 API 키(GEMINI_API_KEY 또는 OPENAI_API_KEY)를 설정하고 "
                "서버를 다시 시작하세요."
            )
        else:
            wait = "할당량이 초기화될 때까지 기다리거나, " if earliest is not None else ""
            tips = (
                "다른 API 키를 설정하거나, 다른 모델을 RAG_LLM_FALLBACK_MODELS / OPENAI_MODELS에 "
                f"추가하거나, {wait}이전에 답변된 질문을 다시 하세요 "
                "(캐시된 답변은 모델 없이 제공됩니다)."
            )
        disabled_note = f" 인증 오류로 비활성화된 모델: {', '.join(disabled)}." if disabled else ""
        return f"{why} 지식 베이스에서 추출한 답변을 제공합니다.{disabled_note} {tips}"
    if not configured:
        why = "No LLM provider is configured (GEMINI_API_KEY / OPENAI_API_KEY are empty)"
    elif earliest is not None:
        why = (
            "Every AI model is out of quota or unavailable; the earliest one is back at "
            f"{_when(earliest, 'en')}"
        )
    else:
        why = "The AI models are not answering right now"
    disabled_note = f" Disabled after auth errors: {', '.join(disabled)}." if disabled else ""
    if not configured:
        # Nothing to wait for without a key: a quota never resets for a provider not configured.
        tips = "To get full answers: set GEMINI_API_KEY or OPENAI_API_KEY and restart the server."
    else:
        wait = "wait for the quota reset, " if earliest is not None else ""
        tips = (
            "To get full answers: set another API key, add another model to "
            f"RAG_LLM_FALLBACK_MODELS / OPENAI_MODELS, {wait}or ask a question "
            "answered before (cached answers need no model)."
        )
    return f"{why}, so this answer is extracted from the knowledge base.{disabled_note} {tips}"


def languages(setting: str) -> list[str]:
    chosen = [p.strip().lower() for p in setting.split(",") if p.strip().lower() in ("ko", "en")]
    return chosen or ["en"]
