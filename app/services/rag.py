"""The knowledge assistant: cache → retrieve → prompt → LLM router → answer (or a local answer)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
from loguru import logger
from pydantic import BaseModel

from app.clients.llm.errors import BadRequest
from app.clients.vector_store import ChunkHit, VectorStore
from app.core.database import Database
from app.core.errors import NotFound, ValidationFailed
from app.core.metrics import RAG_CACHE
from app.core.security import Principal, Role
from app.core.settings import LLMSettings
from app.ml.embedding import Embedder
from app.models.knowledge import Conversation, ConversationTurn
from app.repositories.conversations import ConversationRepository
from app.repositories.llm import LLMStatsStore
from app.repositories.rag_cache import AnswerCache, IndexVersionStore
from app.services.event_knowledge import (
    EventKnowledgeIndexer,
    event_intent,
    merge_hits,
    question_language,
)
from app.services.llm_router import (
    AllModelsUnavailable,
    Attempt,
    LLMRouter,
    ModelUsage,
    Routed,
    StreamInterrupted,
)
from app.services.rag_text import (
    PromptBuilder,
    cache_key,
    languages,
    local_answer_text,
    mask_pii,
    not_found_text,
    notice_text,
)
from app.services.relevance import RelevanceJudge
from app.services.retrieval import KnowledgeIndex, RetrievalMode, as_hit


@dataclass(frozen=True, slots=True)
class CacheCounts:
    """Answer-cache hits and misses since the counters began."""

    exact_hits: int
    semantic_hits: int
    misses: int


@dataclass(frozen=True, slots=True)
class LLMUsageReport:
    """What `GET /api/v1/admin/llm/stats` shows."""

    chain: list[str]
    models: list[ModelUsage]
    cache: CacheCounts
    local_answers: int


@dataclass(frozen=True, slots=True)
class SourcePassage:
    """A retrieved passage an answer is grounded in."""

    doc_id: str
    title: str
    chunk: str
    score: float
    section: str | None = None
    start: int | None = None
    end: int | None = None
    page: int | None = None

    @classmethod
    def of(cls, hit: ChunkHit) -> SourcePassage:
        return cls(
            doc_id=hit.doc_id,
            title=hit.title,
            chunk=hit.chunk,
            score=hit.score,
            section=hit.metadata.get("section"),
            start=hit.metadata.get("start"),
            end=hit.metadata.get("end"),
            page=hit.metadata.get("page"),
        )


@dataclass(slots=True)
class Answer:
    """An answer with its sources and where it came from (`POST /api/v1/rag/ask`)."""

    answer: str
    sources: list[SourcePassage]
    provider: str
    model: str
    cached: bool = False
    degraded: bool = False
    notice: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    # False: nothing in the knowledge base answers; `suggestions` names the closest titles.
    found: bool = True
    suggestions: list[str] = field(default_factory=list)
    # Set once the turn is recorded; None for a cached answer outside a conversation.
    conversation_id: uuid.UUID | None = None
    # The recorded turn (what feedback names); None when no turn was recorded.
    turn_id: uuid.UUID | None = None

    @classmethod
    def routed(cls, text: str, sources: list[SourcePassage], routed: Routed) -> Answer:
        """A model's answer."""
        return cls(
            answer=text,
            sources=sources,
            provider=routed.provider,
            model=routed.model,
            attempts=routed.attempts,
            usage={"tokens_in": routed.tokens_in, "tokens_out": routed.tokens_out},
        )

    def cache_payload(self, answer: str) -> str:
        """What the answer cache stores: the text (as given, masked or not) and its origin."""
        return json.dumps(
            {
                "answer": answer,
                "sources": [asdict(s) for s in self.sources],
                "provider": self.provider,
                "model": self.model,
            }
        )

    @classmethod
    def from_cache(cls, payload: str) -> Answer:
        """An answer read back from `cache_payload`."""
        cached = json.loads(payload)
        return cls(
            answer=cached.get("answer", ""),
            sources=[SourcePassage(**s) for s in cached.get("sources", [])],
            provider=cached.get("provider", "cache"),
            model=cached.get("model", ""),
            cached=True,
        )


class StreamEvent(BaseModel):
    """One Server-Sent Event of an answer stream: `name` and the fields of its JSON data
    (only those set, so an optional field is absent rather than null)."""

    name: ClassVar[str]

    def json_data(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_unset=True), ensure_ascii=False)


class MetaEvent(StreamEvent):
    """First: the sources, the conversation (None for a cached answer outside one)."""

    name: ClassVar[str] = "meta"
    sources: list[SourcePassage]
    conversation_id: uuid.UUID | None
    cached: bool


class TokenEvent(StreamEvent):
    """A text delta."""

    name: ClassVar[str] = "token"
    text: str


class DoneEvent(StreamEvent):
    """Last, after an answer: where it came from."""

    name: ClassVar[str] = "done"
    provider: str
    model: str
    usage: dict[str, int]
    cached: bool
    degraded: bool
    notice: str | None
    attempts: list[Attempt]
    conversation_id: uuid.UUID | None
    turn_id: uuid.UUID | None
    found: bool = True
    suggestions: list[str] = []


class ErrorEvent(StreamEvent):
    """Last, instead of `done`: why the answer stopped and what had been sent."""

    name: ClassVar[str] = "error"
    detail: str
    code: str
    partial: str
    provider: str | None = None
    model: str | None = None


@dataclass(slots=True)
class Retrieval:
    """What retrieval found for a question: the passages to answer from, in order."""

    hits: list[ChunkHit]
    events_asked: bool = False
    # False when no passage clears the relevance floor; `closest` then names the nearest titles.
    found: bool = True
    closest: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Prepared:
    """Everything known about a question before a model is asked."""

    question: str
    logged_question: str
    top_k: int
    conversation_id: uuid.UUID
    new_conversation: bool
    owner_id: uuid.UUID | None
    history: list[tuple[str, str]]
    index_version: int
    key: str
    cached: Answer | None = None
    embedding: np.ndarray | None = None
    hits: list[ChunkHit] = field(default_factory=list)
    # False when nothing passed the relevance floor: the answer says so, no model is asked.
    found: bool = True
    closest: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[SourcePassage]:
        return [SourcePassage.of(h) for h in self.hits]


class RagService:
    """Answers questions from the knowledge base."""

    def __init__(
        self,
        settings: LLMSettings,
        database: Database,
        embedder: Embedder,
        vector_store: VectorStore,
        router: LLMRouter,
        answer_cache: AnswerCache,
        index_version: IndexVersionStore,
        stats: LLMStatsStore,
        prompts: PromptBuilder,
        index: KnowledgeIndex,
        events: EventKnowledgeIndexer | None = None,
    ) -> None:
        self.settings = settings
        self.db = database
        self.embedder = embedder
        self.vectors = vector_store
        self.router = router
        self.cache = answer_cache
        self.index_version = index_version
        self.stats = stats
        self.prompts = prompts
        self.index = index
        self.events = events
        self.relevance = RelevanceJudge(index, settings)

    # -- preparation -----------------------------------------------------------------

    def _mask(self, text: str) -> str:
        return mask_pii(text) if self.settings.pii_masking else text

    async def _cache_event(self, kind: str, hit: bool) -> None:
        RAG_CACHE.labels(kind, "hit" if hit else "miss").inc()
        if hit:
            await self.stats.add({f"rag|cache_{kind}_hits": 1})

    async def prepare(
        self,
        question: str,
        top_k: int,
        conversation_id: uuid.UUID | None,
        caller: Principal | None = None,
    ) -> Prepared:
        """Conversation, cache lookups and retrieval (raises before any answer streams).

        `caller` None means an anonymous caller in development (no ownership there); otherwise
        a follow-up is allowed only in the caller's own conversation.
        """
        question = question.strip()
        history: list[tuple[str, str]] = []
        new_conversation = conversation_id is None
        owner_id = caller.user_id if caller is not None else None
        if conversation_id is not None:
            async with self.db.sessions() as session:
                repo = ConversationRepository(session)
                found = await repo.owner(conversation_id)
                # Someone else's conversation answers like a missing one: ids are not revealed.
                if found is None or (caller is not None and found[0] != caller.user_id):
                    raise NotFound(
                        f"No conversation with id {conversation_id}; omit conversation_id to "
                        "start a new one",
                        code="conversation_not_found",
                    )
                turns = await repo.recent_turns(conversation_id, self.settings.history_turns)
                history = [(t.question, t.answer) for t in turns]
        version = await self.index_version.current()
        prep = Prepared(
            question=question,
            # Logs never carry personal data, whatever RAG_PII_MASKING says about storage.
            logged_question=mask_pii(question),
            top_k=top_k,
            conversation_id=conversation_id or uuid.uuid4(),
            new_conversation=new_conversation,
            owner_id=owner_id,
            history=history,
            index_version=version,
            key=cache_key(question, top_k, version),
        )
        logger.info("ask (top_k={}): {}", top_k, prep.logged_question[:200])
        # Answers that depend on earlier turns are conversation-specific: they are neither read
        # from nor written to the shared cache (whose key is question, top_k, index version).
        use_cache = not history
        if use_cache and self.settings.cache_ttl_secs > 0:
            payload = await self.cache.get(prep.key)
            await self._cache_event("exact", payload is not None)
            if payload is not None:
                prep.cached = Answer.from_cache(payload)
                return prep
        prep.embedding = (await self.embedder.aembed([question], query=True))[0]
        if use_cache and self.settings.semantic_cache:
            near = await self.vectors.nearest_question(prep.embedding.tolist(), version)
            hit = near is not None and near[0] >= self.settings.semantic_cache_threshold
            await self._cache_event("semantic", hit)
            if hit:
                assert near is not None
                prep.cached = Answer.from_cache(near[1])
                return prep
        await self.stats.add({"rag|cache_misses": 1})
        search, embedding = question, prep.embedding
        if history:
            # A follow-up ("그럼 두 번째는요?") is searched and judged with the question before it.
            search = f"{history[-1][0]}\n{question}"
            embedding = (await self.embedder.aembed([search], query=True))[0]
        retrieved = await self.retrieve(search, embedding.tolist(), top_k)
        prep.hits, prep.found, prep.closest = retrieved.hits, retrieved.found, retrieved.closest
        return prep

    async def retrieve(self, question: str, embedding: list[float], top_k: int) -> Retrieval:
        """Documents first; episode summaries only for a question about events (or naming a
        source); then the relevance floor decides whether anything answers the question."""
        episodes: list[ChunkHit] = []
        named = False
        if self.events is None:
            documents = await self.documents(question, embedding, top_k)
        else:
            # Documents and episode summaries are two collections; ask both at once.
            documents, (episodes, named) = await asyncio.gather(
                self.documents(question, embedding, top_k),
                self.events.retrieve(question, embedding, top_k),
            )
        asked = named or event_intent(question).asked
        judged = await self.relevance.judge(question, documents)
        relevant = [j.hit for j in judged if j.relevant(self.settings)]
        hits = merge_hits(relevant, episodes if asked else [], top_k)
        if hits:
            return Retrieval(hits, asked)
        closest = list(dict.fromkeys(h.title for h in documents))[:3]
        logger.info("ask: nothing clears the relevance floor ({} candidates)", len(documents))
        return Retrieval([], asked, found=False, closest=closest)

    async def warm(self, question: str) -> None:
        """Load what the first question would (embedder, Kiwi, the BM25 mirror, Chroma) and
        run retrieval and a focused local answer once; nothing is recorded or cached."""
        embedding = (await self.embedder.aembed([question], query=True))[0]
        found = await self.retrieve(question, embedding.tolist(), 1)
        await asyncio.to_thread(self.relevance.focus, question, found.hits)
        if self.settings.semantic_cache:
            # Version -1 and already expired: never matched, replaced by the next warm-up.
            await self.vectors.nearest_question(embedding.tolist(), -1)
            await self.vectors.put_question("warm-up", embedding.tolist(), "{}", -1, -1)
        # The first recorded turn compiles the ORM's statements: do it once, rolled back.
        async with self.db.sessions() as session:
            repo = ConversationRepository(session)
            conversation = await repo.add(Conversation(id=uuid.uuid4(), owner_id=None))
            await repo.add_turn(
                ConversationTurn(
                    conversation_id=conversation.id,
                    question=question,
                    answer="",
                    provider="local",
                    model="warm-up",
                    degraded=False,
                    sources={"items": []},
                )
            )
            await session.rollback()

    async def documents(
        self,
        question: str,
        embedding: list[float] | None,
        top_k: int,
        mode: RetrievalMode = RetrievalMode.HYBRID,
    ) -> list[ChunkHit]:
        """The best distinct document passages: BM25 over Korean morphemes fused with the
        dense ranking (only chunks that exist in the database)."""
        return [as_hit(r) for r in await self.index.search(question, embedding, top_k, mode)]

    # -- answers ---------------------------------------------------------------------

    async def _local_result(self, prep: Prepared, exc: AllModelsUnavailable) -> Answer:
        """The most relevant sentences of the top chunks, with a notice saying why."""
        picked = await asyncio.to_thread(self.relevance.focus, prep.question, prep.hits)
        answer_language = question_language(prep.question)
        # A Korean question gets its notice in Korean; otherwise RAG_NOTICE_LANGUAGE decides.
        notice_languages = (
            ["ko"] if answer_language == "ko" else languages(self.settings.notice_language)
        )
        notice = "\n\n".join(
            notice_text(lang, exc.configured, exc.cooling, exc.disabled)
            for lang in notice_languages
        )
        await self.stats.add({"rag|local_answers": 1})
        return Answer(
            answer=local_answer_text(picked, answer_language),
            sources=prep.sources,
            provider="local",
            model="extractive",
            degraded=True,
            notice=notice,
            attempts=exc.attempts,
        )

    @staticmethod
    def _not_found(prep: Prepared) -> Answer:
        """Nothing in the knowledge base answers the question: say so, name the closest
        documents, ask no model."""
        language = question_language(prep.question)
        return Answer(
            answer=not_found_text(prep.closest, language),
            sources=[],
            provider="local",
            model="not_found",
            found=False,
            suggestions=prep.closest,
        )

    async def _remember(self, prep: Prepared, result: Answer) -> None:
        """Cache a model's answer (never a degraded one) and record the conversation turn."""
        if not result.cached and not result.degraded and result.found and not prep.history:
            payload = result.cache_payload(self._mask(result.answer))
            await self.cache.put(prep.key, payload, self.settings.cache_ttl_secs)
            if self.settings.semantic_cache and prep.embedding is not None:
                await self.vectors.put_question(
                    prep.key,
                    prep.embedding.tolist(),
                    payload,
                    prep.index_version,
                    self.settings.semantic_cache_ttl_secs,
                )
        if result.cached and prep.new_conversation:
            # A cached answer outside a conversation stays off the database: the cache hit
            # is then pure memory/Redis (a write would cost more than the whole lookup).
            result.conversation_id = None
            return
        turn_id = uuid.uuid4()
        async with self.db.sessions.begin() as session:
            repo = ConversationRepository(session)
            if prep.new_conversation:
                await repo.add(Conversation(id=prep.conversation_id, owner_id=prep.owner_id))
            await repo.add_turn(
                ConversationTurn(
                    id=turn_id,
                    conversation_id=prep.conversation_id,
                    question=self._mask(prep.question),
                    answer=self._mask(result.answer),
                    provider=result.provider,
                    model=result.model,
                    degraded=result.degraded,
                    sources={
                        "items": [
                            {
                                "doc_id": s.doc_id,
                                "title": s.title,
                                "score": s.score,
                                "section": s.section,
                            }
                            for s in result.sources
                        ]
                    },
                )
            )
        result.conversation_id = prep.conversation_id
        result.turn_id = turn_id

    async def ask(
        self,
        question: str,
        top_k: int = 5,
        conversation_id: uuid.UUID | None = None,
        caller: Principal | None = None,
    ) -> Answer:
        prep = await self.prepare(question, top_k, conversation_id, caller)
        result: Answer
        if prep.cached is not None:
            result = prep.cached
        elif not prep.found:
            result = self._not_found(prep)
        else:
            messages = self.prompts.build(prep.question, prep.hits, prep.history)
            try:
                routed = await self.router.complete(messages)
            except AllModelsUnavailable as exc:
                result = await self._local_result(prep, exc)
            except BadRequest as exc:
                raise ValidationFailed(
                    f"The model provider rejected the request ({exc.message}); shorten or "
                    "rephrase the question",
                    code="llm_bad_request",
                ) from exc
            else:
                result = Answer.routed(routed.text, prep.sources, routed)
        await self._remember(prep, result)
        return result

    async def stream(self, prep: Prepared) -> AsyncIterator[StreamEvent]:
        """SSE events for a prepared question: meta, token…, done — or error."""
        yield MetaEvent(
            sources=prep.sources if prep.cached is None else prep.cached.sources,
            conversation_id=None
            if prep.cached is not None and prep.new_conversation
            else prep.conversation_id,
            cached=prep.cached is not None,
        )
        result: Answer
        if prep.cached is not None:
            result = prep.cached
            yield TokenEvent(text=result.answer)
        elif not prep.found:
            result = self._not_found(prep)
            yield TokenEvent(text=result.answer)
        else:
            messages = self.prompts.build(prep.question, prep.hits, prep.history)
            parts: list[str] = []
            try:
                async for kind, value in self.router.stream(messages):
                    if kind == "token":
                        parts.append(value)
                        yield TokenEvent(text=value)
                    else:
                        result = Answer.routed("".join(parts), prep.sources, value)
            except AllModelsUnavailable as exc:
                result = await self._local_result(prep, exc)
                yield TokenEvent(text=result.answer)
            except StreamInterrupted as exc:
                yield ErrorEvent(
                    detail=f"The answer stream from {exc.routed.provider}:{exc.routed.model} "
                    f"broke off ({exc.cause.message}); ask again to retry",
                    code="stream_interrupted",
                    partial=exc.partial,
                    provider=exc.routed.provider,
                    model=exc.routed.model,
                )
                return
            except BadRequest as exc:
                yield ErrorEvent(detail=exc.message, code="llm_bad_request", partial="")
                return
        await self._remember(prep, result)
        yield DoneEvent.model_validate(result, from_attributes=True)

    # -- conversations and stats -----------------------------------------------------

    async def conversation(
        self, conversation_id: uuid.UUID, caller: Principal | None = None
    ) -> Conversation:
        """A conversation for its owner (admins may read any; each such read is logged)."""
        async with self.db.sessions() as session:
            conversation = await ConversationRepository(session).get(conversation_id)
        foreign = (
            conversation is not None
            and caller is not None
            and conversation.owner_id != caller.user_id
        )
        if foreign and caller is not None and conversation is not None:
            if not caller.has(Role.ADMIN):
                conversation = None
            else:
                logger.info(
                    "audit: admin {} read conversation {} of user {}",
                    caller.user_id,
                    conversation_id,
                    conversation.owner_id,
                )
        if conversation is None:
            raise NotFound(
                f"No conversation with id {conversation_id}", code="conversation_not_found"
            )
        return conversation

    async def conversations(self, caller: Principal | None, limit: int) -> list[Conversation]:
        """The caller's conversations, newest first (anonymous ones in development)."""
        async with self.db.sessions() as session:
            return await ConversationRepository(session).for_owner(
                caller.user_id if caller is not None else None, limit
            )

    async def llm_stats(self) -> LLMUsageReport:
        """The router's per-model view plus the assistant's own cache and local-answer counts."""
        counters = await self.stats.snapshot()
        return LLMUsageReport(
            chain=[ref.key for ref in self.router.chain],
            models=await self.router.usage(),
            cache=CacheCounts(
                exact_hits=counters.get("rag|cache_exact_hits", 0),
                semantic_hits=counters.get("rag|cache_semantic_hits", 0),
                misses=counters.get("rag|cache_misses", 0),
            ),
            local_answers=counters.get("rag|local_answers", 0),
        )
