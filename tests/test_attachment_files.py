"""Attachment files as text (extraction.files): PDF, DOCX, XLSX, OFD, DOC/WPS/ET/XLS, hostile files.

Every fixture is generated here: PDFs with reportlab's built-in CID font STSong-Light
(UniGB-UCS2-H), DOCX with python-docx, XLSX with openpyxl, OFD by hand as a zip of XML, DOC/XLS
with LibreOffice from those, and the hostile files byte by byte.
"""

from __future__ import annotations

import io
import resource
import subprocess
import sys
import time
import zipfile
import zlib
from dataclasses import replace

import pytest

from policywatch.extraction import ExtractedDocument, ExtractionError
from policywatch.extraction.files import FileExtractionError, FileLimits, extract_file, sniff_file_kind
from policywatch.extraction.files.legacy import converter
from policywatch.policydiff import diff_texts

TITLE = "关于印发数字经济发展规划的通知"
NUMBER = "国数发〔2024〕12号"
HEADER = "数字经济发展规划（2024—2027年）"
PARAGRAPHS = [
    "各省、自治区、直辖市人民政府，国务院各部委、各直属机构：现将《数字经济发展规划》印发给你们，请认真贯彻执行。",
    "一、总体要求。以数据为关键要素，以数字技术与实体经济深度融合为主线，加强数字基础设施建设，完善数字经济治理体系，"
    "协同推进数字产业化和产业数字化，赋能传统产业转型升级，培育新产业新业态新模式。",
    "二、主要目标。到2027年，数字经济核心产业增加值占地区生产总值比重达到12%，建成35个数字经济示范区，"
    "培育100家以上骨干企业，数据要素市场体系初步建立。5G网络覆盖所有县城和乡镇，千兆光网覆盖率达到90%。",
    "三、重点任务。加快建设信息网络基础设施，推进云网协同和算网融合发展，有序推进基础设施智能升级。"
    "推动数据资源开发利用，建立健全数据要素市场规则，加强数据资源整合和安全保护。",
    "四、保障措施。各地区要加强组织领导，健全工作推进协调机制，强化财政、金融、人才等要素保障，"
    "加强监测评估，确保各项任务落到实处。对工作成效明显的地区，在项目安排、资金分配等方面予以倾斜支持。",
    "五、本规划自印发之日起施行。各地区各部门在执行中遇到的问题，请及时报告。",
]
ISSUER = "国家数据局"
DATE = "2024年3月15日"
URL = "https://www.example.gov.cn/files/附件1-规划.pdf"


# ---------------------------------------------------------------------------------------------
# fixture generators


def make_pdf(
    paragraphs: list[str] = PARAGRAPHS,
    *,
    page_height: float = 842.0,
    top_margin: float = 100.0,
    producer: str = "PolicyWatch tests",
    creator: str = "WPS 文字",
    invariant: bool = True,
    meta_title: str = "Microsoft Word - 附件1.docx",
    pages_at_least: int = 0,
    header: str | None = HEADER,
    page_numbers: bool = True,
    font_size: float = 16.0,
    width: float = 595.0,
) -> bytes:
    """A GB/T 9704-like PDF: centred title and 发文字号, first-line indented paragraphs wrapped by
    width (a number can break across lines), a running header, "— N —" page numbers, issuer and
    date right-aligned at the end. `page_height`/`top_margin` move the page breaks."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    font = "STSong-Light"
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(width, page_height), invariant=invariant)
    c.setProducer(producer)
    c.setCreator(creator)
    c.setTitle(meta_title)
    left, right, bottom = 80.0, width - 80.0, 90.0
    lead = font_size * 1.75
    y = page_height - top_margin
    page = 1

    def chrome() -> None:
        c.setFont(font, 9)
        if header:
            c.drawCentredString(width / 2, page_height - 50, header)
        if page_numbers:
            c.drawCentredString(width / 2, 45, f"— {page} —")

    def need(height: float) -> None:
        nonlocal y, page
        if y - height < bottom:
            c.showPage()
            page += 1
            y = page_height - top_margin
            chrome()

    chrome()
    c.setFont(font, 22)
    need(30)
    c.drawCentredString(width / 2, y, TITLE)
    y -= 36
    c.setFont(font, font_size)
    need(lead)
    c.drawCentredString(width / 2, y, NUMBER)
    y -= lead * 1.5
    for para in paragraphs:
        x, rest = left + 2 * font_size, para  # first-line indent of two characters
        while rest:
            n = 1
            while n < len(rest) and pdfmetrics.stringWidth(rest[: n + 1], font, font_size) <= right - x:
                n += 1
            need(lead)
            c.setFont(font, font_size)
            c.drawString(x, y, rest[:n])
            y -= lead
            rest, x = rest[n:], left
    for line in (ISSUER, DATE):
        need(lead)
        c.setFont(font, font_size)
        c.drawRightString(right - 2 * font_size, y, line)
        y -= lead
    while page < pages_at_least:
        need(10**6)  # a new page with only its header and number
    c.showPage()
    c.save()
    return buf.getvalue()


def make_docx(
    paragraphs: list[str] = PARAGRAPHS, *, author: str = "张三", revision: int = 1, rows: int = 3
) -> bytes:
    import datetime as dt

    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    document = docx.Document()
    heading = document.add_paragraph(TITLE)
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.add_paragraph(NUMBER).alignment = WD_ALIGN_PARAGRAPH.CENTER
    for para in paragraphs[:3]:
        document.add_paragraph(para)
    table = document.add_table(rows=rows + 1, cols=3)
    for i, cell in enumerate(table.rows[0].cells):
        cell.text = ("序号", "示范区", "目标（个）")[i]
    for r in range(1, rows + 1):
        for i, text in enumerate((str(r), f"第{r}批示范区", str(10 * r))):
            table.rows[r].cells[i].text = text
    for para in paragraphs[3:]:
        document.add_paragraph(para)
    document.add_paragraph(ISSUER).alignment = WD_ALIGN_PARAGRAPH.RIGHT
    document.add_paragraph(DATE).alignment = WD_ALIGN_PARAGRAPH.RIGHT
    section = document.sections[0]
    section.footer.paragraphs[0].text = "— 1 —"  # a footer is not body text
    props = document.core_properties
    props.author = author
    props.revision = revision
    props.title = "附件1"
    props.created = dt.datetime(2024, 3, revision, 8, 0, 0)
    props.modified = dt.datetime(2024, 3, revision, 9, 0, 0)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def make_xlsx(*, quota: int = 35, sheets: int = 2, creator: str = "张三") -> bytes:
    import datetime as dt

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "示范区名单"
    sheet.append(["2024年数字经济示范区名单"])
    sheet.merge_cells("A1:D1")
    sheet.append(["序号", "地区", "示范区数量", "批准日期"])
    sheet.append([1, "北京市", quota, dt.date(2024, 3, 15)])
    sheet.append([2, "上海市", 12.0, dt.date(2024, 3, 16)])
    sheet.append([None, None, None, None])
    sheet.append([3, "江西省", 7.5, None])
    for n in range(1, sheets):
        extra = workbook.create_sheet(f"附表{n}")
        extra.append(["指标", "目标值"])
        extra.append(["千兆光网覆盖率", "90%"])
    workbook.properties.creator = creator
    workbook.properties.title = "名单"
    buf = io.BytesIO()
    workbook.save(buf)
    return buf.getvalue()


OFD_NS = "http://www.ofdspec.org/2016"


def _ofd_page(objects: list[tuple[float, float, float, str]]) -> str:
    """Content.xml of a page: TextObjects (x, y, size, text), one per line, mm from the top left."""
    body = []
    for i, (x, y, size, text) in enumerate(objects):
        width = size * len(text)
        delta = f' DeltaX="g {len(text) - 1} {size}"' if len(text) > 1 else ""
        body.append(
            f'<ofd:TextObject ID="{i + 10}" Boundary="{x} {y} {width} {size * 1.4}" Font="3" Size="{size}">'
            f'<ofd:TextCode X="0" Y="{size}"{delta}>{text}</ofd:TextCode></ofd:TextObject>'
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content>'
        f'<ofd:Layer ID="2">{"".join(body)}</ofd:Layer></ofd:Content></ofd:Page>'
    )


def make_ofd(
    paragraphs: list[str] = PARAGRAPHS,
    *,
    lines_per_page: int = 14,
    doc_id: str = "a1b2",
    created: str = "2024-03-15",
) -> bytes:
    """An OFD as suwell/foxit write it: OFD.xml → Doc_0/Document.xml → Pages/Page_N/Content.xml,
    one TextObject per line (the text wrapped at 40 characters), page numbers at the foot."""
    size, left, chars = 4.0, 25.0, 40
    lines: list[tuple[float, float, str]] = [(size * 1.5, 105 - size * 1.5 * len(TITLE) / 2, TITLE)]
    lines.append((size, 105 - size * len(NUMBER) / 2, NUMBER))
    for para in paragraphs:
        first, rest = True, para
        while rest:
            n = chars - 2 if first else chars
            lines.append((size, left + (2 * size if first else 0), rest[:n]))
            rest, first = rest[n:], False
    lines.append((size, 185 - size * len(ISSUER) - 2 * size, ISSUER))
    lines.append((size, 185 - size * len(DATE) / 1.5 - 2 * size, DATE))
    pages = [lines[i : i + lines_per_page] for i in range(0, len(lines), lines_per_page)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "OFD.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.1" DocType="OFD">'
            f"<ofd:DocBody><ofd:DocInfo><ofd:DocID>{doc_id}</ofd:DocID><ofd:Title>附件</ofd:Title>"
            f"<ofd:CreationDate>{created}</ofd:CreationDate></ofd:DocInfo>"
            "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        )
        refs = "".join(
            f'<ofd:Page ID="{i + 1}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages))
        )
        z.writestr(
            "Doc_0/Document.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{OFD_NS}"><ofd:CommonData>'
            "<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea></ofd:CommonData>"
            f"<ofd:Pages>{refs}</ofd:Pages></ofd:Document>",
        )
        for i, page in enumerate(pages):
            objects = []
            y = 37.0
            for line_size, x, text in page:
                objects.append((x, y, line_size, text))
                y += line_size * 2
            objects.append((100.0, 280.0, 3.5, f"- {i + 1} -"))
            z.writestr(f"Doc_0/Pages/Page_{i}/Content.xml", _ofd_page(objects))
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# helpers


def texts(doc: ExtractedDocument) -> list[str]:
    return doc.normalised_paragraphs


def assert_policy_text(doc: ExtractedDocument, paragraphs: list[str] = PARAGRAPHS) -> None:
    from policywatch.extraction import normalise_text

    assert doc.title == TITLE
    body = texts(doc)
    for para in paragraphs:
        assert normalise_text(para) in body, (para, body)
    assert doc.doc_number == NUMBER
    assert doc.published_at == "2024-03-15"


def changed_sentences(old: ExtractedDocument, new: ExtractedDocument) -> list[tuple[str | None, str | None]]:
    diff = diff_texts(texts(old), texts(new))
    return [(b.old, b.new) for b in diff.blocks if b.op != "equal"]


def edited(number_from: str, number_to: str) -> list[str]:
    return [p.replace(number_from, number_to) for p in PARAGRAPHS]


# ---------------------------------------------------------------------------------------------
# sniffing


def test_sniff_by_magic_then_content_type_then_extension() -> None:
    pdf = make_pdf()
    assert sniff_file_kind(pdf, "application/octet-stream", "https://x.cn/download?id=3") == "pdf"
    assert sniff_file_kind(pdf, "text/html", "https://x.cn/a.doc") == "pdf"  # the bytes win
    assert sniff_file_kind(make_docx(), None, "https://x.cn/f.zip") == "docx"
    assert sniff_file_kind(make_xlsx(), "application/octet-stream", "https://x.cn/f") == "xlsx"
    assert sniff_file_kind(make_ofd(), None, "https://x.cn/f.bin") == "ofd"
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    assert sniff_file_kind(ole, None, "https://x.cn/a.WPS") == "wps"
    assert sniff_file_kind(ole, "application/vnd.ms-excel", "https://x.cn/a") == "xls"
    assert sniff_file_kind(ole + "WordDocument".encode("utf-16-le"), None, "https://x.cn/a") == "doc"
    assert sniff_file_kind(b"<html><body>404</body></html>", "application/pdf", "https://x.cn/a.pdf") is None
    assert sniff_file_kind(b"PK\x03\x04other", None, "https://x.cn/a") == "zip"
    assert sniff_file_kind(b"\x00\x01binary", "application/msword", "https://x.cn/a") == "doc"
    assert sniff_file_kind(b"\x00\x01binary", None, "https://x.cn/a.et") == "et"
    assert sniff_file_kind(b"\x00\x01binary", None, "https://x.cn/a.txt") is None


# ---------------------------------------------------------------------------------------------
# PDF


def test_pdf_cid_font_text_in_reading_order_without_headers_footers_and_page_numbers() -> None:
    pdf = make_pdf()
    assert b"STSong-Light" in pdf and b"UniGB-UCS2-H" in pdf  # the CID font, not embedded
    doc = extract_file(pdf, "pdf", URL)
    assert isinstance(doc, ExtractedDocument) and doc.method == "pdf"
    assert_policy_text(doc)
    assert doc.issuer == ISSUER
    body = "\n".join(doc.paragraphs)
    assert HEADER not in body and "—" not in body.replace("2024—2027", "")  # header and "— 2 —" gone
    # Reading order: the paragraphs in the order printed, each one whole (lines and pages joined).
    order = [
        texts(doc).index(p)
        for p in map(__import__("policywatch.extraction", fromlist=["extraction"]).normalise_text, PARAGRAPHS)
    ]
    assert order == sorted(order)
    assert "Microsoft Word" not in doc.title


def test_pdf_spans_pages_and_a_repaginated_file_gives_the_same_paragraphs() -> None:
    base = extract_file(make_pdf(), "pdf", URL)
    assert "pdf text layer, 2 pages, 4 header/footer/page-number lines removed" in base.reasons[1]
    for variant, pages in (
        (make_pdf(page_height=500), 3),  # shorter pages: other page breaks, a paragraph split twice
        (make_pdf(page_height=1100, top_margin=160), 1),  # one page: its header cannot recur
        (make_pdf(width=700), 1),  # wider lines: every paragraph wrapped elsewhere
        (make_pdf(page_numbers=False, header=None), 2),
    ):
        other = extract_file(variant, "pdf", URL)
        assert f"pdf text layer, {pages} pages" in other.reasons[1]
        assert other.paragraphs == base.paragraphs
        assert other.content_hash == base.content_hash


def test_pdf_regenerated_with_other_metadata_is_the_same_text() -> None:
    a = make_pdf()
    b = make_pdf(
        producer="Other Producer 9.1", creator="Microsoft Word", invariant=False, meta_title="x.docx"
    )
    assert a != b
    assert extract_file(a, "pdf", URL) == extract_file(b, "pdf", URL)


def test_pdf_an_edited_number_is_exactly_that_sentence() -> None:
    old = extract_file(make_pdf(), "pdf", URL)
    new = extract_file(make_pdf(edited("建成35个", "建成50个")), "pdf", URL)
    changes = changed_sentences(old, new)
    assert len(changes) == 1, changes
    (before, after) = changes[0]
    assert before is not None and after is not None
    assert "35个数字经济示范区" in before and "50个数字经济示范区" in after
    assert before.replace("35", "50") == after


def test_pdf_without_text_layer_is_scanned_never_empty_text() -> None:
    from PIL import Image
    from reportlab.pdfgen import canvas

    image = io.BytesIO()
    Image.new("L", (200, 280), 255).save(image, "PNG")
    buf = io.BytesIO()
    c = canvas.Canvas(buf, invariant=True)
    for _ in range(2):
        from reportlab.lib.utils import ImageReader

        c.drawImage(ImageReader(io.BytesIO(image.getvalue())), 50, 50, 500, 700)
        c.showPage()
    c.save()
    with pytest.raises(FileExtractionError) as err:
        extract_file(buf.getvalue(), "pdf", "https://x.cn/files/扫描件.pdf")
    assert err.value.reason == "pdf: no text layer (scanned)"
    assert str(err.value).startswith("扫描件.pdf: ")
    assert isinstance(err.value, ExtractionError)


# ---------------------------------------------------------------------------------------------
# DOCX, XLSX, OFD


def test_docx_paragraphs_and_table_rows_in_document_order() -> None:
    doc = extract_file(make_docx(), "docx", "https://x.cn/f/方案.docx")
    assert doc.method == "docx"
    assert_policy_text(doc)
    body = list(doc.paragraphs)
    assert "序号 示范区 目标（个）" in body and "2 第2批示范区 20" in body
    assert body.index("序号 示范区 目标（个）") == body.index(PARAGRAPHS[2]) + 1  # the table where it stands
    assert "— 1 —" not in body  # the footer
    assert doc.issuer == ISSUER


def test_docx_resaved_with_other_metadata_is_the_same_and_an_edit_is_one_sentence() -> None:
    a = extract_file(make_docx(), "docx", URL)
    b = extract_file(make_docx(author="李四", revision=7), "docx", URL)
    assert a == b and a.content_hash == b.content_hash
    c = extract_file(make_docx(edited("12%", "15%")), "docx", URL)
    changes = changed_sentences(a, c)
    assert len(changes) == 1 and "12%" in (changes[0][0] or "") and "15%" in (changes[0][1] or "")


def test_xlsx_sheets_as_rows() -> None:
    doc = extract_file(make_xlsx(), "xlsx", "https://x.cn/f/名单.xlsx")
    assert doc.method == "xlsx" and doc.title == "2024年数字经济示范区名单"
    assert list(doc.paragraphs) == [
        "示范区名单",
        "2024年数字经济示范区名单",
        "序号 地区 示范区数量 批准日期",
        "1 北京市 35 2024-03-15",
        "2 上海市 12 2024-03-16",
        "3 江西省 7.5",
        "附表1",
        "指标 目标值",
        "千兆光网覆盖率 90%",
    ]
    resaved = make_xlsx(creator="李四")
    assert resaved != make_xlsx()
    assert extract_file(resaved, "xlsx", "https://x.cn/f/名单.xlsx") == doc
    changed = extract_file(make_xlsx(quota=50), "xlsx", "https://x.cn/f/名单.xlsx")
    assert changed_sentences(doc, changed) == [("1北京市35 2024-03-15", "1北京市50 2024-03-15")]


def test_ofd_text_objects_in_page_order() -> None:
    ofd = make_ofd()
    doc = extract_file(ofd, "ofd", "https://x.cn/f/通知.ofd")
    assert doc.method == "ofd"
    assert_policy_text(doc)
    assert not any(p.startswith("- ") for p in doc.paragraphs)  # page numbers
    # Re-paginated and re-generated (new DocID and date): the same text.
    again = extract_file(make_ofd(lines_per_page=9, doc_id="zz99", created="2025-01-01"), "ofd", URL)
    assert again.paragraphs == doc.paragraphs
    new = extract_file(make_ofd(edited("100家", "120家")), "ofd", URL)
    assert len(changed_sentences(doc, new)) == 1


def test_ofd_missing_page_is_an_error_naming_it() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(make_ofd())) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("Page_1/Content.xml"):
                dst.writestr(info, src.read(info))
    with pytest.raises(FileExtractionError, match=r"Page_1/Content\.xml is missing"):
        extract_file(buf.getvalue(), "ofd", URL)


# ---------------------------------------------------------------------------------------------
# DOC / WPS / ET / XLS


def _soffice_convert(data: bytes, source_ext: str, target: str, tmp_path) -> bytes:
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / f"in.{source_ext}"
    src.write_bytes(data)
    subprocess.run(
        [converter(), f"-env:UserInstallation=file://{tmp_path}/p", "--headless", "--convert-to", target,
         "--outdir", str(tmp_path / "out"), str(src)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return (tmp_path / "out" / f"in.{target.split(':')[0]}").read_bytes()


def test_doc_wps_et_xls_are_converted_or_said_not_readable(tmp_path) -> None:
    if converter() is None:
        # No LibreOffice: the honest answer, naming the format and the file.
        with pytest.raises(FileExtractionError, match=r"^方案\.doc: format not readable: doc"):
            extract_file(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 2000, "doc", "https://x.cn/方案.doc")
        return
    doc_bytes = _soffice_convert(make_docx(), "docx", "doc:MS Word 97", tmp_path)
    assert doc_bytes.startswith(b"\xd0\xcf\x11\xe0")
    for kind in ("doc", "wps"):  # a .wps of WPS Office 2005+ is a Word 97 file
        assert sniff_file_kind(doc_bytes, None, f"https://x.cn/方案.{kind}") == kind
        doc = extract_file(doc_bytes, kind, f"https://x.cn/方案.{kind}")
        assert doc.method == f"{kind} (LibreOffice → docx)"
        assert_policy_text(doc)
    xls = _soffice_convert(make_xlsx(), "xlsx", "xls:MS Excel 97", tmp_path / "x")
    for kind in ("xls", "et"):
        sheet = extract_file(xls, kind, f"https://x.cn/名单.{kind}")
        assert "1 北京市 35 2024-03-15" in sheet.paragraphs
    # Never LibreOffice's plain-text import of a file it does not recognise: binary garbage as text.
    with pytest.raises(FileExtractionError, match=r"^坏\.doc: doc: LibreOffice could not convert it"):
        extract_file(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x07" * 3000, "doc", "https://x.cn/坏.doc")
    with pytest.raises(FileExtractionError, match=r"^坏\.wps: wps: not a wps file"):
        extract_file(b"plain text, no header", "wps", "https://x.cn/坏.wps")
    rtf = b"{\\rtf1\\ansi\\uc1 \\u25968?\\u23383?\\u32463?\\u27982? 35\\par}"  # an old site's .doc
    assert sniff_file_kind(rtf, None, "https://x.cn/r.doc") == "doc"
    assert extract_file(rtf, "doc", "https://x.cn/r.doc").paragraphs == ("数字经济 35",)


def test_zip_archives_and_unknown_kinds_are_not_readable() -> None:
    with pytest.raises(FileExtractionError, match=r"^a\.zip: format not readable: zip"):
        extract_file(b"PK\x05\x06" + b"\0" * 18, "zip", "https://x.cn/a.zip")
    with pytest.raises(FileExtractionError, match="format not readable"):
        extract_file(b"data", "pptx", "https://x.cn/a.pptx")


# ---------------------------------------------------------------------------------------------
# hostile and broken files: an error naming the file, in bounded time and memory


def _zip(members: dict[str, bytes], level: int = 9) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["docx", "xlsx", "ofd"])
def test_zip_bomb_is_refused_before_decompressing(kind: str) -> None:
    bomb = _zip({"word/document.xml": b"\0" * (200 * 2**20), "xl/workbook.xml": b"", "OFD.xml": b""})
    assert len(bomb) < 300_000
    start = time.monotonic()
    with pytest.raises(FileExtractionError, match=r"zip bomb|decompresses to"):
        extract_file(bomb, kind, f"https://x.cn/bomb.{kind}")
    assert time.monotonic() - start < 10


_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lolololololololololol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>"
)


def test_xml_entity_bombs_are_not_expanded() -> None:
    ofd = _zip({"OFD.xml": _LAUGHS + b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016">&lol9;</ofd:OFD>'})
    with pytest.raises(
        FileExtractionError, match=r"^x\.ofd: ofd: OFD\.xml is not well-formed XML \(EntitiesForbidden\)"
    ):
        extract_file(ofd, "ofd", "https://x.cn/x.ofd")
    # DOCX: python-docx's parser does not resolve entities: a document of nothing, not 10^9 "lol"s.
    real = zipfile.ZipFile(io.BytesIO(make_docx()))
    members = {n: real.read(n) for n in real.namelist()}
    xml = members["word/document.xml"]
    body_at = xml.index(b"<w:document")
    members["word/document.xml"] = _LAUGHS.replace(b"lolz", b"w:document") + xml[body_at:].replace(
        b"<w:t>", b"<w:t>&lol9;", 1
    )
    start = time.monotonic()
    try:
        doc = extract_file(_zip(members), "docx", "https://x.cn/x.docx")
    except FileExtractionError as exc:
        assert str(exc).startswith("x.docx: docx: ")
    else:
        assert "lollol" not in doc.text
    assert time.monotonic() - start < 10


def test_zip_limits_members_and_total_size() -> None:
    many = _zip({f"m{i}.xml": b"x" for i in range(60)})
    limits = FileLimits(max_zip_members=50)
    with pytest.raises(FileExtractionError, match="60 zip members"):
        extract_file(many, "docx", "https://x.cn/many.docx", limits)
    total = _zip({f"m{i}.xml": bytes(range(256)) * 4096 for i in range(4)})  # 4 MiB, incompressible-ish
    with pytest.raises(FileExtractionError, match="zip decompresses to"):
        extract_file(
            total, "ofd", "https://x.cn/t.ofd", FileLimits(max_total_bytes=3 * 2**20, max_ratio=10**6)
        )


def test_a_zip_member_that_lies_about_its_size_is_caught_by_zipfile() -> None:
    """The zip checks trust declared sizes because zipfile never returns more than a member
    declares and fails its CRC otherwise: a small declared size over a bomb is no way around them."""
    real = _zip({"OFD.xml": b"<a>" + b" " * (20 * 2**20) + b"</a>"})
    info_at = real.rfind(b"PK\x01\x02")  # central directory entry: uncompressed size at +24
    size_off = info_at + 24
    lying = bytearray(real)
    lying[size_off : size_off + 4] = (100).to_bytes(4, "little")
    local_size = 22  # the local header's own copy
    lying[local_size : local_size + 4] = (100).to_bytes(4, "little")
    with pytest.raises(
        FileExtractionError, match=r"^bomb\.ofd: ofd: zip member 'OFD\.xml' unreadable \(Bad CRC-32"
    ):
        extract_file(bytes(lying), "ofd", "https://x.cn/bomb.ofd")


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF with a correct xref table from raw objects (object i+1 = objects[i])."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def test_pdf_declaring_a_million_pages_is_refused() -> None:
    pdf = _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Count 1000000 /Kids [3 0 R] >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        ]
    )
    start = time.monotonic()
    with pytest.raises(FileExtractionError, match="1000000 pages declared"):
        extract_file(pdf, "pdf", "https://x.cn/million.pdf")
    assert time.monotonic() - start < 10


def test_pdf_with_more_real_pages_than_the_limit_is_refused() -> None:
    pdf = make_pdf(pages_at_least=6)
    with pytest.raises(FileExtractionError, match="pages"):
        extract_file(pdf, "pdf", URL, FileLimits(max_pages=4))


def test_pdf_with_recursive_and_deeply_nested_objects() -> None:
    recursive = _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Count 2 /Kids [2 0 R 3 0 R] >>",  # the tree contains itself
            b"<< /Type /Pages /Parent 2 0 R /Count 1 /Kids [2 0 R 3 0 R] >>",
        ]
    )
    nested = _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
            + b"[" * 200_000
            + b"]" * 200_000
            + b" >>",
        ]
    )
    for body, name in ((recursive, "loop.pdf"), (nested, "deep.pdf")):
        start = time.monotonic()
        with pytest.raises(FileExtractionError) as err:
            extract_file(body, "pdf", f"https://x.cn/{name}")
        assert str(err.value).startswith(f"{name}: pdf: ")
        assert time.monotonic() - start < 20


def test_a_flate_bomb_inside_a_pdf_stays_within_the_memory_limit() -> None:
    stream = zlib.compress(b"0 0 m " * (300 * 2**20 // 6), 9)  # 300 MiB of content stream
    pdf = _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        ]
    )
    start = time.monotonic()
    with pytest.raises(FileExtractionError, match=r"^bomb\.pdf: pdf: page 1 has 314572800 bytes of content"):
        extract_file(pdf, "pdf", "https://x.cn/bomb.pdf")
    assert time.monotonic() - start < 15
    # With no content cap, the memory limit (or else the time limit) stops it.
    limits = FileLimits(memory_bytes=400 * 2**20, time_s=20, max_page_content_bytes=2**40)
    start = time.monotonic()
    with pytest.raises(FileExtractionError, match=r"^bomb\.pdf: pdf: (memory|time) limit"):
        extract_file(pdf, "pdf", "https://x.cn/bomb.pdf", limits)
    assert time.monotonic() - start < 30
    # This process never held the decompressed stream.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1_000_000  # KiB


@pytest.mark.parametrize(
    ("kind", "make"),
    [("pdf", make_pdf), ("docx", make_docx), ("xlsx", make_xlsx), ("ofd", make_ofd)],
)
def test_truncated_files_are_errors_naming_the_file(kind: str, make) -> None:
    whole = make()
    for cut in (len(whole) // 2, len(whole) - 30):
        with pytest.raises(FileExtractionError) as err:
            extract_file(whole[:cut], kind, f"https://x.cn/dl/%E6%96%B9%E6%A1%88.{kind}?v=1")
        assert str(err.value).startswith(f"方案.{kind}: {kind}: "), str(err.value)


def test_garbage_empty_and_oversized_files() -> None:
    for kind in ("pdf", "docx", "xlsx", "ofd"):
        with pytest.raises(FileExtractionError):
            extract_file(b"%PDF-1.4 garbage %%EOF" if kind == "pdf" else b"PK\x03\x04garbage", kind, URL)
        with pytest.raises(FileExtractionError, match="empty file"):
            extract_file(b"", kind, URL)
    with pytest.raises(FileExtractionError, match="limit 1000"):
        extract_file(make_pdf(), "pdf", URL, FileLimits(max_bytes=1000))


def test_time_budget_stops_a_slow_extraction() -> None:
    pdf = make_pdf(PARAGRAPHS * 30)
    start = time.monotonic()
    with pytest.raises(FileExtractionError, match="time limit"):
        extract_file(pdf, "pdf", URL, FileLimits(time_s=0.01))
    assert time.monotonic() - start < 10


def test_a_hung_child_is_killed_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import policywatch.extraction.files as files

    monkeypatch.setattr(files, "_CHILD", "import time; time.sleep(60)")
    monkeypatch.setattr(files, "_SLACK_S", 0.5)
    start = time.monotonic()
    with pytest.raises(FileExtractionError, match="time limit of 1 s exceeded"):
        extract_file(make_pdf(), "pdf", URL, FileLimits(time_s=1))
    assert time.monotonic() - start < 5


def test_in_process_and_isolated_extraction_agree() -> None:
    pdf = make_pdf()
    assert extract_file(pdf, "pdf", URL, replace(FileLimits(), isolate=False)) == extract_file(
        pdf, "pdf", URL
    )
    assert sys.modules.get("policywatch.extraction.files") is not None
