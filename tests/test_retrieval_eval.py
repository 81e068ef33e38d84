"""The eval data: three kinds of rows, the shipped question files, and the synthetic episodes
`sentinel eval-retrieval --episodes N` posts (units)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.tokenizer import has_hangul
from app.services.event_knowledge import event_intent
from app.services.retrieval_eval import (
    ABNORMAL_LABELS,
    SOURCES,
    load_cases,
    synthetic_episodes,
)

DATA = Path(__file__).parent / "data" / "rag"


def test_rows_are_document_event_or_out_of_domain_questions(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(
        '{"question": "가상환경은?", "doc": "Backend Development Guide"}\n\n'
        '{"question": "cam-3에서 무슨 일이?", "event": "cam-3"}\n'
        '{"question": "점심 메뉴는?", "doc": null}\n',
        encoding="utf-8",
    )
    cases = load_cases(path)
    assert [(c.kind, c.doc, c.event) for c in cases] == [
        ("document", "Backend Development Guide", None),
        ("event", None, "cam-3"),
        ("ood", None, None),
    ]
    path.write_text('{"query": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"cases.jsonl:1: expected"):
        load_cases(path)


def test_the_shipped_event_and_out_of_domain_sets():
    ko, en = load_cases(DATA / "events_ko.jsonl"), load_cases(DATA / "events_en.jsonl")
    ood = load_cases(DATA / "ood.jsonl")
    assert len(ko) >= 15 and len(en) >= 15
    assert all(c.kind == "event" and c.event in (*SOURCES, "*") for c in ko + en)
    assert sum(has_hangul(c.question) for c in ood) >= 20
    assert sum(not has_hangul(c.question) for c in ood) >= 10
    assert all(c.kind == "ood" for c in ood)
    # No out-of-domain question is taken for a question about events.
    assert [c.question for c in ood if event_intent(c.question).asked] == []


def test_synthetic_episodes_cover_every_source_and_label_over_the_last_days():
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    episodes = synthetic_episodes(30, now)
    assert len(episodes) == 30
    assert all([e.event_type for e in events] == ["START", "PROBS", "END"] for events in episodes)
    pairs = Counter(
        (events[0].source_id, max(events[1].probs or {}, key=(events[1].probs or {}).get))
        for events in episodes
    )
    assert {source for source, _ in pairs} == set(SOURCES)
    assert all(len({label for s, label in pairs if s == source}) == 4 for source in SOURCES)
    abnormal = sum(label in ABNORMAL_LABELS for (_, label), n in pairs.items() for _ in range(n))
    assert 10 <= abnormal <= 20
    starts = [events[0].timestamp for events in episodes]
    assert all(now - timedelta(days=3) < at < now for at in starts)
