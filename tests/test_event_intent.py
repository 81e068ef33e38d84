"""Which questions are about events, how episode and document hits are merged, and how an
episode summary reads in Korean and English with local times (units: no app, no database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.clients.vector_store import ChunkHit
from app.models.alert import Alert
from app.models.event import Episode
from app.services.event_knowledge import (
    EpisodeFacts,
    day_part,
    event_intent,
    local_time,
    localize,
    merge_hits,
    source_candidates,
    summary_item,
)

SEOUL = ZoneInfo("Asia/Seoul")

EVENT_QUESTIONS_KO = [
    "cam-lobby-1에서 어제 무슨 일이 있었나요?",
    "지난밤 이상 행동이 감지된 카메라는?",
    "최근 경보가 울린 에피소드 알려줘",
    "어젯밤 로비에서 무슨 일 있었어?",
    "어젯밤 로비에서 뛰어다닌 사람이 있었나요?",
    "cam-3에서 감지된 이상 행동은 무엇인가요?",
    "오늘 알림이 몇 건 왔어?",
    "3번 카메라에 무슨 일이 있었는지 알려줘",
    "주차장 카메라에서 지난 24시간 동안 감지된 게 있나요?",
    "간밤에 특이사항 있었어?",
    "최근 에피소드 목록 보여줘",
    "어제 밤 11시쯤 cam-b1-parking에서 무슨 일이 있었어?",
    "오늘 새벽에 경보가 울린 곳이 있나요?",
    "이상으로 판정된 에피소드가 언제 있었나요?",
    "지난 주말에 침입이 감지된 적 있어?",
    "방금 알림 뜬 거 뭐야?",
    "주차장에서 누가 넘어졌나요?",
    "cam-lobby-1 최근 상황 알려줘",
    "어느 카메라에서 알람이 울렸어?",
    "어제 오후에 로비 카메라에 찍힌 거 있어?",
    "밤사이 이상 없었어?",
    "2시간 전에 발생한 이벤트 보여줘",
]

EVENT_QUESTIONS_EN = [
    "What happened at camera cam-3 last night?",
    "Which episodes raised an alert today?",
    "Was any abnormal fall behaviour seen at night?",
    "Did anything unusual happen at the lobby camera yesterday?",
    "Show me the latest episodes from cam-b1-parking",
    "How many alerts fired in the last 24 hours?",
    "Which cameras detected abnormal behaviour overnight?",
    "Was anyone running in the parking garage last night?",
    "When did the last alert go off?",
    "What did cam-lobby-1 see this morning?",
    "List the incidents from yesterday",
    "Were there any detections at camera 3 today?",
]

DOCUMENT_QUESTIONS_KO = [
    "야간 당직은 몇 시에 시작하나요?",
    "낙상 알림이 오면 어떻게 해야 하나요?",
    "알림 채널은 어떻게 설정하나요?",
    "오늘 점심 메뉴는 뭐야?",
    "이벤트 타입에는 어떤 종류가 있나요?",
    "카카오 알림 버튼에 표시할 텍스트는 어떻게 설정하나요?",
    "월 비용 임계치 경보는 어느 스프린트에서 설정하나요?",
    "행동 분석 API 응답에는 어떤 점수가 포함되나요?",
    "LLM 호출이 실패하면 지수 백오프로 몇 번까지 재시도하나요?",
    "이상 행동이 감지되면 누구에게 연락하나요?",
    "경보가 울리면 몇 분 안에 대응해야 하나요?",
    "카메라를 새로 추가하려면 어떻게 하나요?",
    "에피소드란 무엇인가요?",
    "알림 재전송 정책은 어떻게 되나요?",
    "제미나이 할당량이 초과되면 몇 초 동안 쉬나요?",
    "분산 락은 무엇을 기반으로 구현되어 있나요?",
    "최근 이벤트 API는 어떤 엔드포인트인가요?",
    "회의실 예약은 어디서 하나요?",
    "주말 근무 수당은 얼마인가요?",
    "감지 임계값 기준은 몇인가요?",
    "서버를 재시작하는 명령은 뭔가요?",
    "카메라 해상도 설정 방법 알려줘",
]

DOCUMENT_QUESTIONS_EN = [
    "What does a fall alert require us to do?",
    "How do I configure the alert channels?",
    "Which event types does the event payload accept?",
    "When does the night shift start?",
    "What should the operator do when an alert fires?",
    "How are alerts escalated if nobody acknowledges them?",
    "What is an episode?",
    "How do I add a new camera?",
    "Which token authenticates calls to the worker VM?",
    "What's on the lunch menu today?",
    "What does the anomaly threshold mean?",
    "If a camera goes offline, who gets notified?",
]


@pytest.mark.parametrize("question", EVENT_QUESTIONS_KO + EVENT_QUESTIONS_EN)
def test_questions_about_what_happened_ask_for_events(question):
    intent = event_intent(question)
    assert intent.asked, intent.cues


@pytest.mark.parametrize("question", DOCUMENT_QUESTIONS_KO + DOCUMENT_QUESTIONS_EN)
def test_how_to_and_unrelated_questions_do_not_ask_for_events(question):
    intent = event_intent(question)
    assert not intent.asked, intent.cues


def test_the_tables_are_large_enough_both_ways():
    assert len(EVENT_QUESTIONS_KO) >= 20 and len(DOCUMENT_QUESTIONS_KO) >= 20
    assert len(EVENT_QUESTIONS_EN) >= 10 and len(DOCUMENT_QUESTIONS_EN) >= 10


def test_intent_names_the_words_that_decided_it():
    assert "happened:무슨 일" in event_intent("cam-3에서 무슨 일이 있었어?").cues
    assert event_intent("").asked is False


# -- merging --------------------------------------------------------------------------------


def hit(doc_id: str, score: float) -> ChunkHit:
    return ChunkHit(doc_id=doc_id, title=doc_id, chunk="", score=score, metadata={})


def test_without_episodes_the_answer_is_documents_only():
    documents = [hit("doc:a", 0.2), hit("doc:b", 0.1)]
    assert merge_hits(documents, [], 5) == documents
    assert merge_hits(documents * 4, [], 5) == (documents * 4)[:5]


def test_with_episodes_they_come_first_even_when_documents_score_higher():
    documents = [hit("doc:a", 0.9), hit("doc:b", 0.8)]
    episodes = [hit("episode:1", 0.3), hit("episode:2", 0.2)]
    merged = merge_hits(documents, episodes, 3)
    assert [h.doc_id for h in merged] == ["episode:1", "episode:2", "doc:a"]


def test_many_episodes_still_leave_the_best_document_a_place():
    episodes = [hit(f"episode:{i}", 0.5) for i in range(6)]
    merged = merge_hits([hit("doc:a", 0.9)], episodes, 5)
    assert [h.doc_id for h in merged][-1] == "doc:a" and len(merged) == 5
    assert merge_hits([], episodes, 5) == episodes[:5]
    assert [h.doc_id for h in merge_hits([hit("doc:a", 0.9)], episodes, 1)] == ["episode:0"]


# -- times and summaries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "ko", "en"),
    [
        (0, "새벽", "in the early hours"),
        (4, "새벽", "in the early hours"),
        (5, "오전", "in the morning"),
        (11, "오전", "in the morning"),
        (12, "오후", "in the afternoon"),
        (16, "오후", "in the afternoon"),
        (17, "저녁", "in the evening"),
        (20, "저녁", "in the evening"),
        (21, "밤", "at night"),
        (23, "밤", "at night"),
    ],
)
def test_day_parts_follow_the_local_hour(hour, ko, en):
    at = datetime(2026, 11, 24, hour, 5, tzinfo=SEOUL)
    assert day_part(at, "ko") == ko and day_part(at, "en") == en


def test_times_are_rendered_in_the_configured_zone():
    at = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)  # 14:30 in Seoul
    assert local_time(at, SEOUL, "ko") == "2026년 11월 24일 (화) 오후 2:30 KST"
    assert local_time(at, SEOUL, "en") == "Tue 24 Nov 2026, 2:30 PM KST (in the afternoon)"
    assert local_time(at, SEOUL, "ko", date=False) == "오후 2:30 KST"
    late = datetime(2026, 11, 24, 14, 10, tzinfo=UTC)  # 23:10 in Seoul
    assert local_time(late, SEOUL, "ko") == "2026년 11월 24일 (화) 밤 11:10 KST"
    early = datetime(2026, 11, 24, 15, 10, tzinfo=UTC)  # 00:10 the next day in Seoul
    assert local_time(early, SEOUL, "ko") == "2026년 11월 25일 (수) 새벽 12:10 KST"


def closed_episode(**overrides) -> Episode:
    values = dict(
        id=uuid.uuid4(),
        source_id="cam-lobby-1",
        status="closed",
        started_at=datetime(2026, 11, 24, 5, 30, tzinfo=UTC),
        ended_at=datetime(2026, 11, 24, 5, 31, tzinfo=UTC),
        close_reason="end",
        event_count=3,
        decision="abnormal",
        decided_by="probs",
        anomaly_score=0.85,
        threshold=0.5,
        top_label="running",
        scores={"running": 0.85, "walking": 0.15},
    )
    values.update(overrides)
    return Episode(**values)


def test_a_summary_reads_in_the_question_language_with_local_times():
    episode = closed_episode()
    alert = Alert(source_id="cam-lobby-1", status="sent", text="")
    doc_id, text, meta = summary_item(episode, alert, SEOUL)
    stored = ChunkHit(doc_id=doc_id, title=meta["title"], chunk=text, score=0.4, metadata=meta)

    korean = localize(stored, SEOUL, "ko")
    english = localize(stored, SEOUL, "en")

    assert korean.title == "cam-lobby-1 에피소드 · 2026년 11월 24일 (화) 오후 2:30 KST"
    assert korean.chunk.startswith(
        "cam-lobby-1 카메라의 에피소드: 2026년 11월 24일 (화) 오후 2:30 KST부터 오후 2:31 KST까지."
    )
    assert (
        "'이상'으로 판정" in korean.chunk and "가장 높은 라벨: running, 점수 0.85" in korean.chunk
    )
    assert (
        "알림 상태는 '발송 완료'" in korean.chunk
        and "이벤트 3건이 기록되었고, END 이벤트를 받아 종료되었습니다." in korean.chunk
    )
    assert "UTC" not in korean.chunk and "abnormal" not in korean.chunk
    assert english.title == "Episode at cam-lobby-1, 2026-11-24 14:30 KST"
    assert "from Tue 24 Nov 2026, 2:30 PM KST (in the afternoon) to 2:31 PM KST" in english.chunk
    assert "judged abnormal: top label running (score 0.85)" in english.chunk
    assert english.chunk == text  # the stored (embedded) text is the English rendering
    assert (korean.score, korean.doc_id) == (0.4, doc_id)


def test_a_normal_episode_without_alert_in_korean():
    facts = EpisodeFacts.of(closed_episode(decision="normal", top_label="walking"), None)
    text = facts.summary(SEOUL, "ko")
    assert "'정상'으로 판정" in text and "알림은 발생하지 않았습니다." in text


def test_an_episode_over_midnight_names_both_dates():
    facts = EpisodeFacts.of(
        closed_episode(
            started_at=datetime(2026, 11, 24, 14, 58, tzinfo=UTC),
            ended_at=datetime(2026, 11, 24, 15, 2, tzinfo=UTC),
        ),
        None,
    )
    assert "밤 11:58 KST부터 2026년 11월 25일 (수) 새벽 12:02 KST까지" in facts.summary(SEOUL, "ko")


def test_a_summary_stored_before_the_facts_is_returned_as_written():
    old = ChunkHit(doc_id="episode:x", title="old", chunk="old text", score=0.1, metadata={})
    assert localize(old, SEOUL, "ko") is old


def test_a_source_id_followed_by_a_korean_particle_is_still_a_candidate():
    assert source_candidates("cam-lobby-1에서 어제 무슨 일이 있었나요?")[:2] == [
        "cam-lobby-1에서",
        "cam-lobby-1",
    ]
    assert "cam-3" in source_candidates("cam-3의 최근 경보")
