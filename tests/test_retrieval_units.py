"""Units of Korean retrieval: section-aware chunking, the Korean-aware tokenizer, the
incremental BM25 index and the extractive answer's quotable units."""

from __future__ import annotations

from app.core.tokenizer import Tokenizer
from app.services.chunking import SectionChunker
from app.services.rag_text import answer_units
from app.services.retrieval import LexicalIndex

DOC = """# 가이드

## 설치

### 의존성 설치
```bash
# 기본 의존성
pip install -r requirements.txt
```

- 첫째 항목
- 둘째 항목

```
```

## 설정
쿨다운은 600초입니다. 다른 값은 `RAG_QUOTA_COOLDOWN_SECS`로 바꿉니다.
"""


def test_chunks_follow_headings_and_keep_offsets_into_the_document():
    chunks = SectionChunker(800).split(DOC)
    assert [c.section for c in chunks] == ["가이드 › 설치 › 의존성 설치", "가이드 › 설정"]
    for c in chunks:
        assert DOC[c.start : c.end] == c.text
    # The code fence stays whole (its `# comment` is not a heading).
    assert "pip install -r requirements.txt\n```" in chunks[0].text
    assert "- 둘째 항목" in chunks[0].text


def test_a_block_longer_than_the_chunk_size_is_cut_at_sentences():
    text = " ".join(f"문장 {i} 입니다." for i in range(100))
    chunks = SectionChunker(120).split(text)
    assert len(chunks) >= len(text) // 120 and all(len(c.text) <= 120 for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_an_unclosed_fence_ends_at_the_next_subheading():
    text = "## 구조\n```bash\nbackend/\n\n\n## 실행\n서버를 실행한다.\n"
    chunks = SectionChunker(800).split(text)
    assert [c.section for c in chunks] == ["구조", "실행"]


def test_tokens_are_morphemes_and_identifiers_with_their_parts():
    tokens = Tokenizer().tokens("할당량이 초과되면 RAG_QUOTA_COOLDOWN_SECS 값을 바꾸나요? Alerts")
    assert "할당량" in tokens and "초과" in tokens and "이" not in tokens
    assert "rag_quota_cooldown_secs" in tokens and "cooldown" in tokens
    assert "alert" in tokens  # plural folded


def test_lexical_index_updates_per_document_without_a_rebuild():
    index = LexicalIndex()
    index.replace("a", [("a1", ["쿨다운", "600"]), ("a2", ["설치"])])
    index.replace("b", [("b1", ["쿨다운", "300"])])
    assert index.search(["600"], 5)[0][0] == "a1"
    index.replace("a", [("a3", ["설치", "pip"])])  # an update replaces the old chunks
    assert [c for c, _ in index.search(["600", "쿨다운"], 5)] == ["b1"]
    index.replace("b", [])  # a delete
    assert index.search(["쿨다운"], 5) == [] and len(index) == 1


def test_answer_units_skip_headings_fences_and_labels():
    units = [
        u
        for _, u in answer_units(
            "- 환경변수:\n- `RAG_PRIMARY_MODEL`: 첫 모델\n```\n# 주석\nrun\n```\n| a | b |\n|---|---|"
        )
    ]
    # A comment in code travels with the line it explains ("# 실패한 테스트만 재실행" / "pytest --lf").
    assert units == ["`RAG_PRIMARY_MODEL`: 첫 모델", "run  # 주석", "| a | b |"]
