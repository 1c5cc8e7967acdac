"""Every extraction preset on its hand-written page (tests/fixtures/sites: imitations, not saved copies)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from policywatch.config import load_config
from policywatch.demosite.pages import corpus_document, demo_text, provincial_page
from policywatch.extraction import extract_document
from policywatch.extraction.presets import PRESETS, preset_selector, priority_selector

SITES = Path(__file__).parent / "fixtures" / "sites"
NOTICE = demo_text("public_data_notice")


@dataclass(frozen=True)
class Expected:
    page: str
    url: str
    title: str
    doc_number: str | None
    issuer: str | None
    published_at: str | None
    first: str  # the first body paragraph starts with this
    last: str  # the last body paragraph starts with this
    chrome: tuple[str, ...]  # text of the page that must not be in the body


CASES = {
    "gov-cn": Expected(
        "gov_cn_content.html",
        "https://www.gov.cn/zhengce/content/2022-01/12/content_5667817.htm",
        "国务院关于印发“十四五”数字经济发展规划的通知",
        "国发〔2021〕29号",
        "国务院",
        "2022-01-12",
        "国发〔2021〕29号",
        "(二)面临形势。",
        ("索引号", "主题分类", "我要纠错", "分享到", "相关稿件", "字体", "版权所有"),
    ),
    "nda": Expected(
        "nda_article.html",
        "https://www.nda.gov.cn/sjj/zwgk/zcfb/0920/20240920171600123456789_pc.html",
        NOTICE.title,
        "国数发〔2024〕3号",
        "国家数据局",
        "2024-09-20",
        "国数发〔2024〕3号",
        "（此件公开发布）",
        ("来源：国家数据局", "发布时间", "附件", "分享到", "相关文章", "字号"),
    ),
    "ndrc": Expected(
        "ndrc_article.html",
        "https://www.ndrc.gov.cn/xxgk/zcfb/tz/202409/t20240920_1392011.html",
        "国家发展改革委 国家数据局关于印发《数字经济促进共同富裕实施方案》的通知",
        "发改数据〔2023〕1770号",
        "国家发展改革委",
        "2024-09-20",
        "发改数据〔2023〕1770号",
        "二、总体要求",
        ("打印", "附件", "发布时间", "版权所有"),
    ),
    "miit": Expected(
        "miit_article.html",
        "https://www.miit.gov.cn/zwgk/zcwj/wjfb/tz/art/2024/art_4ba01aa6d2f54ced8ba3490ea4fb52c4.html",
        "工业和信息化部关于印发《工业互联网创新发展行动计划》的通知",
        "工信部信管〔2024〕210号",
        "信息通信管理局",
        "2024-09-20",
        "工信部信管〔2024〕210号",
        "2024年9月18日",
        ("发文字号：", "发布机构", "打印", "附件", "ICP"),
    ),
    "guizhou": Expected(
        "guizhou_article.html",
        "https://www.guizhou.gov.cn/zwgk/zcfg/szfwj/qff/202409/t20240920_85712345.html",
        "贵州省人民政府关于推进数字经济高质量发展的实施意见",
        "黔府发〔2024〕12号",
        "贵州省人民政府",
        "2024-09-20",
        "黔府发〔2024〕12号",
        "2024年9月18日",
        ("索引号", "浏览次数", "分享到", "主办"),
    ),
    "eastmoney": Expected(
        "eastmoney_article.html",
        "https://finance.eastmoney.com/a/202409203176543210.html",
        "国家数据局、国家发展改革委部署公共数据资源开发利用试点",
        None,
        "财联社",
        "2024-09-20",
        NOTICE.paragraphs[0],
        NOTICE.paragraphs[-1],
        ("摘要", "返回", "热门文章", "评论", "ICP"),
    ),
}


def test_every_preset_has_a_page() -> None:
    assert set(CASES) | {"trs"} == set(PRESETS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_preset_on_its_page(name: str) -> None:
    case = CASES[name]
    html = (SITES / case.page).read_text(encoding="utf-8")
    doc = extract_document(html, case.url, preset_selector(name))
    assert doc.method == "selector"
    assert doc.title == case.title
    assert doc.doc_number == case.doc_number
    assert doc.issuer == case.issuer
    assert doc.published_at == case.published_at
    assert doc.paragraphs[0].startswith(case.first), doc.paragraphs[0]
    assert doc.paragraphs[-1].startswith(case.last), doc.paragraphs[-1]
    body = "\n".join(doc.paragraphs)
    for chrome in case.chrome:
        assert chrome not in body, chrome
    # The preset's body container really holds the text (not the whole page by luck).
    container = BeautifulSoup(html, "lxml").select_one(preset_selector(name))
    assert container is not None and case.last[:10] in container.get_text()


def test_eastmoney_preset_unwraps_keyword_links() -> None:
    doc = extract_document(
        (SITES / "eastmoney_article.html").read_text(encoding="utf-8"),
        CASES["eastmoney"].url,
        preset_selector("eastmoney"),
    )
    assert doc.paragraphs == tuple(NOTICE.paragraphs)  # the linked words are plain text again


def test_presets_beat_the_generic_rules_where_needed() -> None:
    """MIIT's #con_con is not a generic CMS container: without the preset the automatic extraction
    takes the metadata table into the body."""
    case = CASES["miit"]
    generic = extract_document((SITES / case.page).read_text(encoding="utf-8"), case.url)
    assert generic.method == "auto"
    assert not generic.paragraphs[0].startswith(case.first)


def test_trs_ueditor_bodies_need_no_preset() -> None:
    """Guizhou's #Zoom is a TRS UEditor body (div.TRS_UEDITOR, as on nfj.nea.gov.cn): the generic
    CMS rules find it, with the same text as the preset."""
    case = CASES["guizhou"]
    html = (SITES / case.page).read_text(encoding="utf-8")
    generic = extract_document(html, case.url)
    preset = extract_document(html, case.url, preset_selector("guizhou"))
    assert generic.method == "cms" and generic.paragraphs[0].startswith(case.first)
    assert generic.paragraphs == preset.paragraphs


def test_trs_preset_on_a_gbk_provincial_page() -> None:
    title, paragraphs = corpus_document("004")
    page = provincial_page(title, paragraphs[:20], doc_number="赣府发〔2022〕11号", pub_date="2022-05-26")
    raw = page.encode("gbk")
    doc = extract_document(raw.decode("gb18030"), "http://example.gov.cn/art/1.html", preset_selector("trs"))
    assert doc.title == title and doc.doc_number == "赣府发〔2022〕11号"
    assert list(doc.paragraphs) == paragraphs[:20]


def test_priority_selector_takes_the_first_present() -> None:
    selector = priority_selector(["div.TRS_Editor", "div.article"])
    inner = '<div class="article"><h1>t</h1><div class="TRS_Editor"><p>正文</p></div></div>'
    outer = '<div class="article"><h1>t</h1><p>正文</p></div>'
    assert BeautifulSoup(inner, "lxml").select(selector)[0]["class"] == ["TRS_Editor"]
    [only] = BeautifulSoup(outer, "lxml").select(selector)
    assert only["class"] == ["article"]
    with pytest.raises(ValueError):
        priority_selector(["div.article div.TRS_Editor"])


def test_real_sources_use_known_presets() -> None:
    config = load_config(Path(__file__).parent.parent / "config" / "sources.yaml")
    used = {source.preset for source in config.sources} - {None}
    assert used <= set(PRESETS)
    for source in config.sources:
        if source.preset:
            assert source.content_selector == preset_selector(source.preset)
