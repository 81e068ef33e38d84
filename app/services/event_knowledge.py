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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from loguru import logger

from app.clients.vector_store import ChunkHit, VectorStore
from app.core.database import Database
from app.core.errors import Unavailable
from app.core.tokenizer import has_hangul
from app.models.alert import Alert
from app.models.event import Episode, EpisodeDecision, EpisodeStatus
from app.repositories.alerts import AlertRepository
from app.repositories.events import EpisodeRepository
from app.repositories.rag_cache import IndexVersionStore
from app.services.alert_text import safe_source_id

BATCH = 100
STOP_DRAIN_SECS = 5.0
# Words of a question that could be a source id ("camera-3", "lobby", "cam_2.north").
_TOKEN = re.compile(r"\w[\w.:/@-]*\w|\w")
_TRAILING_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]+$")
MAX_CANDIDATES = 50


# Words for the part of the day, on the clock of ALERT_TIMEZONE. In Korean the word stands
# where "AM/PM" would (오후 2:30), so it doubles as the meridiem.
_DAY_PARTS = (
    (5, "새벽", "in the early hours"),
    (12, "오전", "in the morning"),
    (17, "오후", "in the afternoon"),
    (21, "저녁", "in the evening"),
    (24, "밤", "at night"),
)
_WEEKDAYS_KO = "월화수목금토일"
_DECISION_KO = {"normal": "정상", "abnormal": "이상", "unknown": "판정 불가"}
_DECIDED_BY = {
    "ko": {"sequence": "행동 모델로", "probs": "확률 평균으로", "none": "판정 근거 없이"},
    "en": {
        "sequence": "the behaviour model",
        "probs": "the averaged probabilities",
        "none": "none",
    },
}
_ALERT_STATUS_KO = {
    "pending": "발송 대기",
    "sending": "발송 중",
    "sent": "발송 완료",
    "partial": "일부 채널만 발송",
    "failed": "발송 실패",
    "undeliverable": "발송 불가",
    "suppressed": "억제됨",
    "silenced": "무음 처리됨",
    "grouped": "진행 중인 인시던트에 묶임",
    "inhibited": "게이트웨이 연결 끊김으로 보류됨",
}
_CLOSE_REASON_KO = {
    "end": "END 이벤트를 받아 종료되었습니다",
    "superseded": "새 START가 들어와 종료되었습니다",
    "end_without_start": "START 없이 END만 받아 종료되었습니다",
}


def day_part(at: datetime, language: str) -> str:
    """새벽/오전/오후/저녁/밤 (or the English words) for a local time."""
    for until, ko, en in _DAY_PARTS:
        if at.hour < until:
            return ko if language == "ko" else en
    raise AssertionError("hour out of range")  # pragma: no cover


def _clock(at: datetime) -> str:
    return f"{at.hour % 12 or 12}:{at.minute:02d}"


def local_time(at: datetime, zone: tzinfo, language: str, *, date: bool = True) -> str:
    """`2026년 11월 24일 (화) 오후 2:30 KST` / `Tue 24 Nov 2026, 2:30 PM KST (in the afternoon)`;
    without `date`, only the clock part (`오후 2:31 KST` / `2:31 PM KST`)."""
    at = at.astimezone(zone)
    name = at.tzname() or ""
    if language == "ko":
        clock = f"{day_part(at, 'ko')} {_clock(at)} {name}".rstrip()
        if not date:
            return clock
        weekday = _WEEKDAYS_KO[at.weekday()]
        return f"{at.year}년 {at.month}월 {at.day}일 ({weekday}) {clock}"
    clock = f"{_clock(at)} {'AM' if at.hour < 12 else 'PM'} {name}".rstrip()
    if not date:
        return clock
    return f"{at:%a} {at.day} {at:%b %Y}, {clock} ({day_part(at, 'en')})"


@dataclass(frozen=True, slots=True)
class EpisodeFacts:
    """What a summary says about one closed episode, kept in the summary's metadata so the
    text can be rendered at answer time in the question's language and the configured zone."""

    source_id: str
    started_at: datetime
    ended_at: datetime
    decision: str
    top_label: str | None = None
    top_score: float | None = None
    anomaly_score: float | None = None
    threshold: float | None = None
    decided_by: str | None = None
    alert_status: str | None = None
    event_count: int = 0
    close_reason: str | None = None

    @classmethod
    def of(cls, episode: Episode, alert: Alert | None) -> EpisodeFacts:
        score = (episode.scores or {}).get(episode.top_label) if episode.top_label else None
        return cls(
            source_id=episode.source_id,
            started_at=episode.started_at.astimezone(UTC),
            ended_at=(episode.ended_at or episode.started_at).astimezone(UTC),
            decision=episode.decision or EpisodeDecision.unknown,
            top_label=episode.top_label,
            top_score=float(score) if score is not None else None,
            anomaly_score=episode.anomaly_score,
            threshold=episode.threshold,
            decided_by=episode.decided_by,
            alert_status=alert.status if alert is not None else None,
            event_count=episode.event_count,
            close_reason=episode.close_reason,
        )

    def metadata(self) -> dict[str, Any]:
        """Chroma metadata (scalars only: a missing value is left out, never None)."""
        values = {
            "source_id": self.source_id,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "decision": str(self.decision),
            "top_label": self.top_label,
            "top_score": self.top_score,
            "anomaly_score": self.anomaly_score,
            "threshold": self.threshold,
            "decided_by": self.decided_by,
            "alert_status": self.alert_status,
            "event_count": self.event_count,
            "close_reason": self.close_reason,
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> EpisodeFacts | None:
        """The facts back from a summary's metadata; None for a summary written before they
        were stored (its text is then shown as written, until a reindex)."""
        try:
            return cls(
                source_id=str(meta["source_id"]),
                started_at=datetime.fromisoformat(str(meta["started_at"])),
                ended_at=datetime.fromisoformat(str(meta["ended_at"])),
                decision=str(meta["decision"]),
                top_label=meta.get("top_label"),
                top_score=meta.get("top_score"),
                anomaly_score=meta.get("anomaly_score"),
                threshold=meta.get("threshold"),
                decided_by=meta.get("decided_by"),
                alert_status=meta.get("alert_status"),
                event_count=int(meta["event_count"]),
                close_reason=meta.get("close_reason"),
            )
        except (KeyError, TypeError, ValueError):
            return None

    # -- rendering -----------------------------------------------------------------------

    def _span(self, zone: tzinfo, language: str) -> tuple[str, str]:
        start, end = self.started_at.astimezone(zone), self.ended_at.astimezone(zone)
        same_day = start.date() == end.date()
        return local_time(start, zone, language), local_time(end, zone, language, date=not same_day)

    def title(self, zone: tzinfo, language: str) -> str:
        source = safe_source_id(self.source_id)
        start = self.started_at.astimezone(zone)
        if language == "ko":
            return f"{source} 에피소드 · {local_time(start, zone, 'ko')}"
        return f"Episode at {source}, {start:%Y-%m-%d %H:%M} {start.tzname() or ''}".rstrip()

    def summary(self, zone: tzinfo, language: str) -> str:
        """A few plain sentences a reader (or the extractive answer) can quote on their own."""
        return " ".join(self._korean(zone) if language == "ko" else self._english(zone))

    def _label(self) -> str | None:
        if not self.top_label:
            return None
        if self.top_score is None:
            return self.top_label
        return f"{self.top_label} (score {self.top_score:.2f})"

    def _english(self, zone: tzinfo) -> list[str]:
        source = safe_source_id(self.source_id)
        start, end = self._span(zone, "en")
        label = self._label()
        judged = f"At {source} the behaviour was judged {self.decision}"
        sentences = [
            f"Episode at {source} from {start} to {end}.",
            f"{judged}: top label {label}." if label else f"{judged}.",
        ]
        if self.anomaly_score is not None:
            threshold = f" against threshold {self.threshold:.2f}" if self.threshold else ""
            decided = _DECIDED_BY["en"].get(self.decided_by or "none", self.decided_by)
            sentences.append(
                f"Anomaly score {self.anomaly_score:.2f}{threshold}, decided by {decided}."
            )
        if self.alert_status is not None:
            sentences.append(
                f"An alert for {source} was raised; its status is {self.alert_status}."
            )
        else:
            sentences.append(f"No alert was raised for {source}.")
        sentences.append(f"{self.event_count} events; closed by {self.close_reason or 'unknown'}.")
        return sentences

    def _korean(self, zone: tzinfo) -> list[str]:
        source = safe_source_id(self.source_id)
        start, end = self._span(zone, "ko")
        decision = _DECISION_KO.get(self.decision, self.decision)
        sentences = [f"{source} 카메라의 에피소드: {start}부터 {end}까지."]
        if self.decision == EpisodeDecision.unknown:
            sentences.append("확률도 시퀀스도 없어 행동을 판정하지 못했습니다.")
        elif self.top_label:
            score = f", 점수 {self.top_score:.2f}" if self.top_score is not None else ""
            sentences.append(
                f"행동은 '{decision}'으로 판정되었습니다 (가장 높은 라벨: {self.top_label}{score})."
            )
        else:
            sentences.append(f"행동은 '{decision}'으로 판정되었습니다.")
        if self.anomaly_score is not None:
            threshold = f" (기준값 {self.threshold:.2f})" if self.threshold else ""
            decided = _DECIDED_BY["ko"].get(self.decided_by or "none", self.decided_by)
            sentences.append(
                f"이상 점수는 {self.anomaly_score:.2f}{threshold}이며, {decided} 판정했습니다."
            )
        if self.alert_status is not None:
            status = _ALERT_STATUS_KO.get(self.alert_status, self.alert_status)
            sentences.append(f"알림이 발생했고, 알림 상태는 '{status}'입니다.")
        else:
            sentences.append("알림은 발생하지 않았습니다.")
        reason = _CLOSE_REASON_KO.get(self.close_reason or "", "종료 사유는 알 수 없습니다")
        sentences.append(f"이벤트 {self.event_count}건이 기록되었고, {reason}.")
        return sentences


def summary_item(
    episode: Episode, alert: Alert | None, zone: tzinfo = UTC
) -> tuple[str, str, dict[str, Any]]:
    """(Chroma id, text, metadata) for one closed episode; the metadata holds the facts
    (language-neutral, UTC) that `localize` renders for a question."""
    doc_id = f"episode:{episode.id}"
    facts = EpisodeFacts.of(episode, alert)
    meta: dict[str, Any] = {
        "doc_id": doc_id,
        "title": facts.title(zone, "en"),
        "kind": "episode",
        "episode_id": str(episode.id),
        **facts.metadata(),
    }
    return doc_id, facts.summary(zone, "en"), meta


def question_language(question: str) -> str:
    """`ko` for a question with Hangul, else `en` (answers follow the question)."""
    return "ko" if has_hangul(question) else "en"


def localize(hit: ChunkHit, zone: tzinfo, language: str) -> ChunkHit:
    """An episode hit with its title and text in `language`, times in `zone`."""
    facts = EpisodeFacts.from_metadata(hit.metadata)
    if facts is None:
        return hit
    return replace(hit, title=facts.title(zone, language), chunk=facts.summary(zone, language))


def source_candidates(question: str) -> list[str]:
    """The question's words, as they could name a source id (deduplicated, in order)."""
    seen: dict[str, None] = {}
    for token in _TOKEN.findall(question):
        seen.setdefault(token, None)
        # A Korean particle sticks to the id it follows: "cam-3에서" names cam-3.
        bare = _TRAILING_HANGUL.sub("", token)
        if bare and bare != token:
            seen.setdefault(bare, None)
    return list(seen)[:MAX_CANDIDATES]


class EventKnowledgeIndexer:
    """Writes closed-episode summaries into the events collection, off the request path."""

    def __init__(
        self,
        database: Database,
        vector_store: VectorStore,
        index_version: IndexVersionStore,
        timezone: str = "UTC",
    ) -> None:
        self.db = database
        self.vectors = vector_store
        self.index_version = index_version
        # ALERT_TIMEZONE: summaries give times as operators read them in alerts.
        self.zone = ZoneInfo(timezone)
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
        return [summary_item(e, alerts.get(e.id), self.zone) for e in closed]

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
        episodes only; otherwise the closest episodes of any source. Each hit's title and text
        are in the question's language, times in ALERT_TIMEZONE. A vector store failure here
        leaves the answer to the documents.
        """
        hits, named = await self._query(question, embedding, top_k)
        language = question_language(question)
        return [localize(hit, self.zone, language) for hit in hits], named

    async def _query(
        self, question: str, embedding: list[float], top_k: int
    ) -> tuple[list[ChunkHit], bool]:
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


@dataclass(frozen=True, slots=True)
class EventIntent:
    """Whether a question asks about what happened (events), and the words that said so."""

    asked: bool
    cues: tuple[str, ...] = ()


def _cues(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns), re.IGNORECASE)


# Korean words carry their particles ("cam-3에서"), and `\b`/`\w` count Hangul as a word
# character, so ASCII ids are delimited by ASCII classes and Korean cues are plain substrings.
_ID_END = r"(?![A-Za-z0-9_-])"
_ID_START = r"(?<![A-Za-z0-9_-])"
_KO_PLACE = (
    r"로비|주차장|출입구|입구|복도|계단|현관|정문|후문|엘리베이터|창고|매장|옥상|체육관|"
    r"운동장|코트|지하\s*\d*\s*층?|\d+\s*층"
)
_EN_PLACE = (
    r"lobby|parking|garage|entrance|hallway|corridor|gate|door(?:way)?|stair(?:s|way|well)?|"
    r"elevator|warehouse|gym|court|basement|floor"
)
_INTENT_CUES: dict[str, re.Pattern[str]] = {
    # "What happened / 무슨 일이 있었": asks for events outright.
    "happened": _cues(
        r"무슨\s*일",
        r"어떤\s*일이?\s*(?:있|일어|생기|생겼|벌어)",
        r"(?:있었던|일어난|생긴|벌어진|발생한)\s*일",
        r"별일|특이\s*사항|이상\s*(?:은|이)?\s*없었",
        r"\bwhat\s+(?:has\s+|had\s+)?happen",
        r"\bwhat\s+went\s+on\b",
        r"\banything\s+(?:happen|unusual|strange|suspicious|abnormal)",
        r"\bwhat\s+(?:was|were)\s+(?:seen|detected|recorded|spotted|caught)\b",
        r"\bwhat\s+did\s+(?:the\s+)?(?:cam|camera|cctv)\S*\s+(?:see|detect|record|catch)",
    ),
    # A particular camera: an id (cam-3, cam-lobby-1, camera_2), a number or a place.
    "camera": _cues(
        _ID_START + r"(?:cam|camera|cctv)(?:[-_.][A-Za-z0-9][A-Za-z0-9_.-]*|\d+)" + _ID_END,
        r"(?:카메라|camera|cam|cctv)\s*(?:#|no\.?\s*)?\d+" + _ID_END,
        r"\d+\s*번\s*(?:카메라|cctv)",
        rf"(?:{_KO_PLACE})\s*(?:의\s*)?(?:카메라|cctv)",
        rf"\b(?:{_EN_PLACE})\s+(?:cam|camera|cctv)s?\b",
    ),
    "noun": _cues(
        r"카메라|에피소드|이벤트|경보|알림|알람|감지|탐지|이상\s*행동|이상\s*징후|침입|낙상|"
        r"쓰러|넘어지|넘어진|넘어졌|싸움|폭행|배회|사건|사고|움직임|녹화|영상",
        r"\b(?:cameras?|cams?|cctv|episodes?|events?|alerts?|alarms?|detections?|incidents?|"
        r"anomal(?:y|ies|ous)|abnormal|intrusions?|intruders?|fights?|motion|footage|"
        r"activit(?:y|ies)|behaviou?rs?)\b",
    ),
    # Something that took place (past or realised), not a rule about what would.
    "occurred": _cues(
        r"있었|있던|일어났|일어난|생겼|생긴|벌어졌|벌어진|발생했|발생한|발생된|발생되었|"
        r"감지됐|감지되었|감지된|감지했|탐지됐|탐지되었|탐지된|포착|울렸|울린|떴|"
        r"왔(?:어|나|니|는지|던|습)|잡혔|잡힌|찍혔|찍힌|기록됐|기록되었|기록된|발송됐|발송된|"
        r"넘어졌|쓰러졌|쓰러진|뛰었|뛰어다닌|달렸|달린|싸웠|들어왔|나갔|지나갔|보였|나타났",
        r"\b(?:happened|occurred|fired|raised|triggered|went\s+off|detected|spotted|seen|"
        r"recorded|caught|flagged|saw|fell|ran|fought|did|was\s+there|were\s+there|showed\s+up|"
        r"came\s+in|got)\b",
    ),
    # A time window in the past that incidents are asked about.
    "past": _cues(
        r"어제|어젯밤|지난\s*밤|간밤|밤사이|밤새|방금|아까|그저께|그제|엊그제",
        r"지난\s*(?:\d+\s*)?(?:시간|분|일|주|주말|달)",
        r"최근\s*\d+\s*(?:시간|분|일|주)",
        r"\d+\s*(?:시간|분|일)\s*(?:전|동안|사이)",
        r"오늘\s*(?:새벽|아침|오전|오후|저녁|밤)",
        r"\b(?:yesterday|overnight|last\s+night|earlier\s+today|just\s+now|a\s+moment\s+ago)\b",
        r"\b(?:last|past|previous)\s+(?:\d+\s+)?(?:hours?|minutes?|days?|weeks?|night|weekend)\b",
        r"\b\d+\s+(?:hours?|minutes?|days?)\s+ago\b",
        r"\bthis\s+(?:morning|afternoon|evening)\b",
    ),
    # Softer time words: they help another cue, never decide alone ("오늘 점심 메뉴").
    "time": _cues(
        r"오늘|최근|요즘|이번\s*주|주말|새벽|\d{1,2}\s*시(?:\s*\d{1,2}\s*분)?\s*(?:쯤|경|에|부터|사이)",
        r"\b(?:today|tonight|recent(?:ly)?|latest|lately|this\s+week|weekend)\b",
        r"\b(?:at|around|after|before)\s+\d{1,2}(?::\d\d)?\s*(?:am|pm)?\b",
    ),
    "place": _cues(_KO_PLACE, rf"\b(?:{_EN_PLACE})\b"),
    "activity": _cues(
        r"뛰|달리|달린|걷|걸어|서\s*있|배드민턴|넘어|쓰러|싸우|싸움|배회|침입|낙상|누군가|사람",
        r"\b(?:running|ran|walking|walked|standing|badminton|fell|falls?|fight(?:ing)?|fought|"
        r"loiter\w*|intrud\w*|someone|anyone|somebody|anybody|person|people)\b",
    ),
    # Asking for a list or a count of occurrences.
    "listing": _cues(
        r"알려\s*(?:줘|주세요|줄래|주실)|보여\s*(?:줘|주세요|줄래)|목록|몇\s*(?:건|번|개|회)|"
        r"어느\s*카메라|어떤\s*카메라|어디서|어디에서|언제",
        r"\b(?:which|what)\s+(?:cameras?|episodes?|alerts?|sources?|events?)\b",
        r"\bhow\s+many\s+(?:alerts?|episodes?|events?|times|detections?|incidents?)\b",
        r"\b(?:list|show\s+me)\b",
        r"\b(?:when|where)\s+(?:did|was|were)\b",
    ),
    # A question about how things work or what to do: the knowledge base answers it.
    "procedure": _cues(
        r"어떻게|방법|설정|절차|규정|정책|매뉴얼|가이드|해야|하려면|하면\s*되|기준|조건|의미|"
        r"정의|이란|종류|차이|왜|원리|지원하|할\s*수\s*있|환경\s*변수|엔드포인트|필드|스키마|"
        r"형식|포맷|파라미터|옵션|명령|버전|라이브러리|함수|클래스|포함되|구성|구현|기능|역할|"
        r"담당|대응|조치|연동|연결하",
        r"(?:오|울리|발생하|감지되|탐지되|뜨|생기|일어나|들어오|받으)면",
        r"\bAPI\b",
        r"\bhow\s+(?:do|does|did\s+we\s+set|can|could|should|to|are|is|would|much\s+does)\b",
        r"\bwhat\s+(?:should|do\s+(?:we|i|you)\s+do|to\s+do|does\s+\w+(?:\s+\w+)?\s+mean)",
        r"\b(?:require[sd]?|requirements?|must|should|procedure|polic(?:y|ies)|configur\w*|"
        r"set\s*up|settings?|enable|disable|mean(?:s|ing)?|definition|defined|types?\s+of|"
        r"kinds?\s+of|difference|why|endpoints?|payload|field|schema|format|parameters?|"
        r"options?|command|version|library|support(?:s|ed)?|accepts?|contains?|includes?|"
        r"handle[sd]?|respond|escalat\w*)\b",
        r"\b(?:if|whenever|once)\b",
        r"\bwhen\s+(?:an?|the)\s+\w+(?:\s+\w+)?\s+(?:comes?|fires?|is|goes|happens|occurs|arrives)\b",
    ),
}


def event_intent(question: str) -> EventIntent:
    """Does the question ask about events (a camera, an episode, "what happened") rather
    than the knowledge base? Precision first: a question about how alerts or cameras work
    ("낙상 알림이 오면 어떻게 해야 하나요?") is a document question, and time words alone
    ("야간 당직은 몇 시에", "오늘 점심") say nothing."""
    found = {
        name: tuple(m.group(0).strip() for m in cue.finditer(question))
        for name, cue in _INTENT_CUES.items()
    }
    has = {name: bool(words) for name, words in found.items()}
    when = has["past"] or has["time"]
    asked = _decide(has, when)
    cues = tuple(f"{name}:{word}" for name, words in found.items() for word in words)
    return EventIntent(asked, cues)


def _decide(has: dict[str, bool], when: bool) -> bool:
    # How-to and definition questions stay with the documents, unless they point at a
    # particular incident (a past window, or a camera together with a time or an occurrence).
    if has["procedure"] and not (has["past"] or (has["camera"] and (has["occurred"] or when))):
        return False
    if has["happened"] or has["camera"]:
        return True
    if has["noun"] and (has["occurred"] or when or has["listing"]):
        return True
    # "어젯밤 로비에서 누가 뛰었나요?": an activity that took place somewhere, or at some time.
    if has["activity"] and has["occurred"] and (has["place"] or when):
        return True
    # "Was anyone running in the parking garage last night?": a past window at a place.
    return has["past"] and has["place"] and (has["activity"] or has["occurred"])


def merge_hits(documents: list[ChunkHit], episodes: list[ChunkHit], top_k: int) -> list[ChunkHit]:
    """The passages to answer from, in order. Without episodes (no event intent) they are the
    documents alone, so an episode never outranks a document; with them, the episodes come
    first (a named source's, as `retrieve` returns them, are that source's only) and the best
    documents follow, keeping at least one document's place when there is one."""
    if not episodes:
        return documents[:top_k]
    room = max(1, top_k - 1) if documents else top_k
    return [*episodes[:room], *documents][:top_k]
