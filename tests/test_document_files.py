"""Document files (HWP, HWPX, DOCX, PDF) into the knowledge base, and pasted text with page
breaks: through `POST /api/v1/knowledge/docs` (upload), the bulk import job and
`POST /api/v1/rag/ask`, whose sources cite the heading path and, for a PDF, the page.

The files in tests/data/docs/ were made for these tests by tests/data/docs/make_files.py (how
each was written is in its docstring); each has Korean text, a heading and a table.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest

from app.schemas.safety import check_document
from app.services.document_files import (
    DocumentUnreadable,
    ExtractedDocument,
    extract,
    page_at,
    split_pages,
)
from tests.conftest import wait_for_job
from tests.fakes.fixtures import reset_rag_state

DOCS = Path(__file__).parent / "data" / "docs"
KO = {"Accept-Language": "ko-KR,ko;q=0.9"}

# file -> (Korean question, what its first source's section contains, its page or None)
CASES = {
    "parking.hwp": ("둘째 차량의 월 요금은?", "제2조 등록 차량 요금", None),
    "outage.hwpx": (
        "정전이 일어나면 비상 발전기는 몇 분 안에 가동하나요?",
        "비상 발전기 가동",
        None,
    ),
    "fall.docx": (
        "낙상 경보가 울리면 요양보호사는 몇 분 안에 방문하나요?",
        "낙상 감지 경보 대응",
        None,
    ),
    "fire.pdf": (
        "소화기 압력 게이지는 언제 누가 점검하나요?",
        "화재 대피 안내 › 소화기 점검 주기",
        2,
    ),
}
# A line of each file's table, as the stored text keeps it (a PDF's table is its text rows).
TABLE_ROWS = {
    "parking.hwp": "| 둘째 차량 | 삼만원 | 관리사무소 등록 |",
    "outage.hwpx": "| 1 | 한국전력 고객센터 | 정전 범위 확인 |",
    "fall.docx": "| 야간 | 요양보호사 | 영상 확인 |",
    "fire.pdf": "지하 주차장 12 시설 담당자",
}


@pytest.fixture(autouse=True)
async def empty_index(app):
    await reset_rag_state(app)
    yield


async def _upload(client: httpx.AsyncClient, name: str, **fields: str) -> httpx.Response:
    return await client.post(
        "/api/v1/knowledge/docs",
        files={"file": (name, (DOCS / name).read_bytes(), "application/octet-stream")},
        data=fields,
    )


async def _ask(client: httpx.AsyncClient, question: str) -> dict:
    r = await client.post("/api/v1/rag/ask", json={"question": question, "top_k": 5})
    assert r.status_code == 200, r.text
    return r.json()


# -- the readers ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_format_gives_headings_as_sections_and_tables_as_rows(name):
    doc = extract(name, (DOCS / name).read_bytes())
    assert TABLE_ROWS[name] in doc.text.splitlines()
    section = CASES[name][1].split(" › ")[-1]
    assert any(line.startswith("#") and section in line for line in doc.text.splitlines())
    assert "---" not in doc.text  # no Markdown table rules: one line per row


def test_pdf_pages_are_recorded_and_give_each_offset_its_page():
    doc = extract("fire.pdf", (DOCS / "fire.pdf").read_bytes())
    assert doc.title == "화재 대피 안내" and len(doc.page_starts) == 2
    meta = doc.meta()
    second = doc.text.index("소화기 압력 게이지")
    assert page_at(meta, 0) == 1 and page_at(meta, second) == 2
    assert page_at({}, 5) is None and page_at({"page_starts": "junk"}, 5) is None


def test_a_long_paged_text_split_in_parts_keeps_each_parts_pages():
    doc = ExtractedDocument("a" * 25, None, [0, 10, 20])
    parts = split_pages(doc, 12)
    assert [len(p) for p, _ in parts] == [12, 12, 1]
    # Part 2 holds characters 12..23: it starts on page 2 and page 3 starts 8 characters in.
    assert parts[1][1] == {"page_starts": [0, 8], "first_page": 2}
    assert page_at(parts[1][1], 9) == 3 and page_at(parts[2][1], 0) == 3


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("damaged.pdf", "it is damaged or not a PDF file"),
        ("damaged.hwp", "it is damaged"),
        ("damaged.docx", "it is damaged or not a DOCX file"),
    ],
)
def test_a_damaged_file_is_unreadable_with_a_reason(name, reason):
    with pytest.raises(DocumentUnreadable) as caught:
        extract(name, (DOCS / name).read_bytes())
    assert caught.value.name == name and caught.value.reason.startswith(reason)


def test_a_password_protected_pdf_is_unreadable_because_encrypted():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(DOCS / "fire.pdf"))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(DocumentUnreadable, match="encrypted"):
        extract("locked.pdf", buffer.getvalue())


def test_a_file_type_it_does_not_read_is_named_with_what_it_reads():
    with pytest.raises(DocumentUnreadable) as caught:
        extract("slides.pptx", b"PK")
    assert caught.value.reason.startswith(".pptx files are not read; send .md")


def test_document_text_normalises_page_breaks_and_odd_spaces():
    text = "\ufeff제1조\f제2조\u00a0본문\r\n끝\u2028줄\u3000칸\x85다음\u2029문단\v탭\t"
    assert check_document(text) == "제1조\n\n제2조 본문\n끝\n줄 칸\n다음\n\n문단\n탭\t"


@pytest.mark.parametrize(
    ("char", "words"),
    [
        ("\x00", "control character (NUL)"),
        ("\x1b", "control character (U+001B)"),
        ("\u202e", "bidirectional control character (U+202E)"),
        ("\u2067", "bidirectional control character (U+2067)"),
        ("\u200b", "zero-width character (U+200B)"),
        ("\ufeff", "zero-width character (U+FEFF)"),
    ],
)
def test_document_text_refuses_hidden_and_control_characters(char, words):
    with pytest.raises(ValueError, match=re.escape(f"{words} at position 2")):
        check_document(f"본문{char}끝")


# -- through the API ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
async def test_uploaded_file_is_stored_and_cited_with_its_section_and_page(client, name):
    r = await _upload(client, name)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["source"] == name and doc["indexed"] and doc["chunk_count"] >= 2
    assert TABLE_ROWS[name] in doc["content"]
    question, section, page = CASES[name]
    first = (await _ask(client, question))["sources"][0]
    assert first["doc_id"] == doc["id"], first
    assert section in first["section"], first
    assert first["page"] == page, first
    assert doc["content"][first["start"] : first["end"]] == first["chunk"]


async def test_upload_title_defaults_to_the_first_heading_else_the_file_name(client):
    docx = (await _upload(client, "fall.docx")).json()
    hwp = (await _upload(client, "parking.hwp")).json()
    named = (await _upload(client, "fire.pdf", title="소방 점검", source="시설팀")).json()
    assert docx["title"] == "낙상 감지 경보 대응" and hwp["title"] == "parking"
    assert named["title"] == "소방 점검" and named["source"] == "시설팀"
    assert named["metadata"]["page_starts"][0] == 0


async def test_new_metadata_keeps_the_pages_and_a_blank_form_field_is_the_default(client):
    doc = (await _upload(client, "fire.pdf", title="  ", source="")).json()
    assert doc["title"] == "화재 대피 안내" and doc["source"] == "fire.pdf"  # blank = default
    r = await client.patch(
        f"/api/v1/knowledge/docs/{doc['id']}", json={"metadata": {"reviewed": True}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["reviewed"] is True and r.json()["metadata"]["page_starts"]
    question, _, page = CASES["fire.pdf"]
    assert (await _ask(client, question))["sources"][0]["page"] == page


async def test_the_four_formats_answer_each_others_questions_apart(client):
    ids = {}
    for name in CASES:
        r = await _upload(client, name)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    for name, (question, section, page) in CASES.items():
        first = (await _ask(client, question))["sources"][0]
        assert first["doc_id"] == ids[name], (name, first)
        assert section in first["section"] and first["page"] == page, (name, first)


async def test_damaged_upload_is_a_422_naming_the_file_and_why(client):
    r = await _upload(client, "damaged.docx")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "document_unreadable"
    assert "damaged.docx" in body["detail"] and "not a DOCX file" in body["detail"]
    r = await client.post(
        "/api/v1/knowledge/docs",
        files={"file": ("damaged.pdf", (DOCS / "damaged.pdf").read_bytes())},
        headers=KO,
    )
    assert r.status_code == 422 and "damaged.pdf" in r.json()["detail"]
    assert "읽을 수 없습니다" in r.json()["detail"] and "손상" in r.json()["detail"]
    assert (await client.get("/api/v1/knowledge/docs")).json()["total"] == 0


async def test_upload_without_a_file_field_names_the_field(client):
    r = await client.post("/api/v1/knowledge/docs", data={"title": "제목"}, files={"x": b"1"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"


async def test_import_stores_the_good_files_and_reports_the_damaged_one(client):
    files = [
        ("files", (name, (DOCS / name).read_bytes(), "application/octet-stream"))
        for name in ("fall.docx", "damaged.hwp", "fire.pdf")
    ]
    r = await client.post("/api/v1/knowledge/import", files=files)
    assert r.status_code == 202, r.text
    job = await wait_for_job(client, r.json()["id"])
    assert job["state"] == "succeeded", job
    result = job["result"]
    assert result["files"] == 3 and result["documents"] == 2
    assert [s["name"] for s in result["skipped"]] == ["damaged.hwp"]
    assert result["skipped"][0]["reason"].startswith("it is damaged")
    docs = {d["title"]: d for d in (await client.get("/api/v1/knowledge/docs")).json()["items"]}
    assert set(docs) == {"fall", "fire"}
    assert docs["fire"]["metadata"]["page_starts"] == [0, docs["fire"]["content"].index("## ")]
    first = (await _ask(client, CASES["fire.pdf"][0]))["sources"][0]
    assert first["doc_id"] == docs["fire"]["id"] and first["page"] == 2


async def test_import_reads_hwp_and_hwpx_and_cites_their_sections(client):
    files = [
        ("files", (name, (DOCS / name).read_bytes(), "application/octet-stream"))
        for name in ("parking.hwp", "outage.hwpx")
    ]
    job = await wait_for_job(
        client, (await client.post("/api/v1/knowledge/import", files=files)).json()["id"]
    )
    assert job["result"]["documents"] == 2 and job["result"]["skipped"] == [], job
    for name in ("parking.hwp", "outage.hwpx"):
        question, section, _ = CASES[name]
        first = (await _ask(client, question))["sources"][0]
        assert first["title"] == Path(name).stem and section in first["section"], first
        assert first["page"] is None


async def test_pasted_bill_with_form_feeds_and_nbsp_is_stored_normalised(client):
    bill = "의안번호 2100001\f제1조(목적)\u00a0이 법은 주차장 관리를 정한다.\r\n\f제2조(정의)"
    r = await client.post(
        "/api/v1/knowledge/docs", json={"title": "주차장법 일부개정법률안", "content": bill}
    )
    assert r.status_code == 201, r.text
    assert r.json()["content"] == (
        "의안번호 2100001\n\n제1조(목적) 이 법은 주차장 관리를 정한다.\n\n\n제2조(정의)"
    )
    doc_id = r.json()["id"]
    r = await client.patch(f"/api/v1/knowledge/docs/{doc_id}", json={"content": "가\f나"})
    assert r.status_code == 200 and r.json()["content"] == "가\n\n나"


@pytest.mark.parametrize(
    ("char", "code_point"), [("\x00", "NUL"), ("\u202e", "U+202E"), ("\u200b", "U+200B")]
)
async def test_pasted_text_with_nul_bidi_or_zero_width_is_refused(client, char, code_point):
    r = await client.post(
        "/api/v1/knowledge/docs", json={"title": "법안", "content": f"제1조{char}목적"}, headers=KO
    )
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert error["field"] == "content" and code_point in error["msg"]
    assert "3번 위치" in error["msg"]
    assert (await client.get("/api/v1/knowledge/docs")).json()["total"] == 0
