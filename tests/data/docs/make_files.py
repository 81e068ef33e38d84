"""Make the Korean test documents in this folder (kept in git; run again only to change them).

Each file has a heading, Korean text and a table, on a topic of its own so a question finds it:

- `parking.hwp`  HWP 5 (an OLE compound file of zlib record streams), written by
  `hwp-converter-ai` (MIT), which fills Hancom's own template with our paragraphs and table.
- `outage.hwpx`  HWPX (a zip of OWPML XML: Contents/section0.xml of hp:p/hp:run/hp:t, hp:tbl),
  written by the same package from Hancom's HWPX template; its two headings then get the
  outline paragraph shape of style 개요 1, as Hancom gives them.
- `fall.docx`    DOCX written by python-docx (Heading 1/2 styles and a real table).
- `fire.pdf`     two-page PDF written by fpdf2 with Noto Sans CJK KR (subset, embedded) and an
  outline entry per heading; pypdf reads the Korean back.
- `damaged.*`    unreadable files: a PDF cut short, an HWP that is only an OLE signature and a
  DOCX that is not a zip.

None of these packages is a dependency of Sentinel; run this with them alongside:

    uv run --no-project --with python-docx --with fpdf2 --with hwp-converter-ai \
        python tests/data/docs/make_files.py
"""

from __future__ import annotations

import io
from pathlib import Path

HERE = Path(__file__).resolve().parent
CJK_TTC = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # fonts-noto-cjk

PARKING = """# 주차장 관리 규정

## 제1조 목적

이 규정은 아파트 지하주차장의 야간 순찰과 방문 차량 등록 절차를 정한다.

## 제2조 등록 차량 요금

| 구분 | 월 요금 | 비고 |
| --- | --- | --- |
| 첫째 차량 | 무료 | 세대당 1대 |
| 둘째 차량 | 삼만원 | 관리사무소 등록 |

방문 차량은 경비실에서 하루 여섯 시간까지 무료로 등록한다.
"""

OUTAGE = """# 정전 대응 절차

## 비상 발전기 가동

정전이 일어나면 당직 기사는 오 분 안에 비상 발전기를 가동하고 승강기 갇힘 여부를 확인한다.

## 연락 순서

| 순서 | 연락처 | 내용 |
| --- | --- | --- |
| 1 | 한국전력 고객센터 | 정전 범위 확인 |
| 2 | 승강기 유지보수 업체 | 갇힘 구조 요청 |
"""


def make_hwp() -> None:
    from hwp_converter_ai import HwpWriter, HwpxGenerator

    HwpWriter().from_markdown(PARKING, HERE / "parking.hwp")
    HwpxGenerator().from_markdown(OUTAGE, output_path=HERE / "outage.hwpx")
    _outline_headings(HERE / "outage.hwpx")


def _outline_headings(path: Path) -> None:
    """The generator gives `## ` paragraphs the style 개요 1 but keeps the body paragraph shape;
    Hancom, applying 개요 1, also gives them the style's shape (paraPr 2: outline level 1).
    Do as Hancom does, so the headings are outline headings."""
    import zipfile

    with zipfile.ZipFile(path) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, data in entries:
            if info.filename == "Contents/section0.xml":
                data = data.replace(
                    b'paraPrIDRef="1" styleIDRef="2"', b'paraPrIDRef="2" styleIDRef="2"'
                )
            target.writestr(info, data)


def make_docx() -> None:
    from docx import Document

    doc = Document()
    doc.add_heading("낙상 감지 경보 대응", level=1)
    doc.add_paragraph("낙상 경보가 울리면 담당 요양보호사는 이 분 안에 어르신 방을 방문한다.")
    doc.add_heading("야간 근무 인원", level=2)
    doc.add_paragraph("야간에는 층마다 요양보호사 두 명이 근무한다.")
    table = doc.add_table(rows=3, cols=3)
    for r, row in enumerate(
        [
            ("시간대", "담당", "확인 방법"),
            ("주간", "간호사", "방문 확인"),
            ("야간", "요양보호사", "영상 확인"),
        ]
    ):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    doc.save(HERE / "fall.docx")


def _cjk_font() -> Path:
    """The Korean face of the Noto CJK collection as one OpenType file (fpdf2 reads no .ttc)."""
    from fontTools.ttLib import TTCollection

    out = Path("/tmp/NotoSansCJKkr-Regular.otf")
    if not out.exists():
        collection = TTCollection(str(CJK_TTC))
        face = next(f for f in collection.fonts if "KR" in f["name"].getDebugName(1))
        face.save(str(out))
    return out


def make_pdf() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("noto", fname=str(_cjk_font()))
    pdf.set_font("noto", size=12)
    pdf.add_page()
    pdf.start_section("화재 대피 안내", level=0)
    pdf.set_font_size(18)
    pdf.cell(text="화재 대피 안내", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(12)
    pdf.multi_cell(0, 8, text="화재 경보가 울리면 계단으로 대피하고 승강기는 타지 않는다.")
    pdf.add_page()
    pdf.start_section("소화기 점검 주기", level=1)
    pdf.set_font_size(16)
    pdf.cell(text="소화기 점검 주기", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(12)
    pdf.multi_cell(0, 8, text="소화기 압력 게이지는 매월 첫째 주 금요일에 시설 담당자가 점검한다.")
    with pdf.table(first_row_as_headings=False) as table:
        for row in [("장소", "수량", "점검자"), ("지하 주차장", "12", "시설 담당자")]:
            cells = table.row()
            for text in row:
                cells.cell(text)
    pdf.output(str(HERE / "fire.pdf"))
    _identity_encoding(HERE / "fire.pdf")


def _identity_encoding(path: Path) -> None:
    """fpdf2 writes the CID font's identity CMap as an embedded stream; pypdf then reads two-byte
    codes as one byte each ("\\x00화"). Name the predefined `/Identity-H` instead, as most PDF
    writers do: the mapping is the same."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    writer = PdfWriter(clone_from=PdfReader(path))
    for page in writer.pages:
        for font in page["/Resources"]["/Font"].values():
            font.get_object()[NameObject("/Encoding")] = NameObject("/Identity-H")
    writer.compress_identical_objects()
    writer.write(path)


def make_damaged() -> None:
    pdf = (HERE / "fire.pdf").read_bytes()
    (HERE / "damaged.pdf").write_bytes(pdf[: len(pdf) // 3])
    (HERE / "damaged.hwp").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    (HERE / "damaged.docx").write_bytes(b"this is not a zip archive")


def check() -> None:
    from pypdf import PdfReader

    pages = [
        p.extract_text() for p in PdfReader(io.BytesIO((HERE / "fire.pdf").read_bytes())).pages
    ]
    assert len(pages) == 2 and "소화기 압력 게이지" in pages[1], pages


if __name__ == "__main__":
    make_hwp()
    make_docx()
    make_pdf()
    make_damaged()
    check()
    for path in sorted(HERE.iterdir()):
        print(f"{path.name:16} {path.stat().st_size:>7} bytes")
