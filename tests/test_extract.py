"""policywatch.extraction.extract_document / is_not_found_page on realistic pages (tests/support/pages.py builders
and hand-written pages in tests/fixtures/pages)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from policywatch.demosite.pages import (
    corpus_document,
    corpus_paragraphs,
    gov_cn_page,
    keyword_link,
    news_repost_page,
    not_found_page,
    plain_page,
    provincial_page,
)
from policywatch.extraction import (
    ExtractedDocument,
    ExtractionError,
    content_hash,
    extract_document,
    is_not_found_page,
    normalise_paragraphs,
)

PAGES = Path(__file__).parent / "fixtures" / "pages"
URL = "http://www.example.gov.cn/zhengce/content/2022-01/12/content_5667817.htm"

TITLE_004, BODY_004 = corpus_document("004")  # 江西省人民政府关于印发江西省“十四五”数字经济发展规划的通知
TITLE_003, BODY_003 = corpus_document("003")  # news repost of the State Council's plan (full-width ，。)

CHROME_STRINGS = (
    "浏览次数",
    "阅读量",
    "访问量",
    "打印",
    "关闭窗口",
    "相关链接",
    "相关文章",
    "当前位置",
    "您现在的位置",
    "分享到",
    "字号",
    "字体",
    "版权所有",
    "ICP",
    "返回首页",
    "首页",
    "文章来源",
    "索引号",
    "主题分类",
)

Builder = Callable[..., str]
BUILDERS: dict[str, Builder] = {
    "gov_cn": gov_cn_page,
    "provincial": provincial_page,
    "news_repost": news_repost_page,
    "plain": plain_page,
}
EXPECTED_METHOD = {"gov_cn": "cms", "provincial": "cms", "news_repost": "auto", "plain": "auto"}


def extract(page: str, **kwargs: object) -> ExtractedDocument:
    return extract_document(page, URL, **kwargs)  # type: ignore[arg-type]


def assert_no_chrome(doc: ExtractedDocument) -> None:
    for chrome in CHROME_STRINGS:
        assert chrome not in doc.text, chrome


# ----------------------------------------------------------------------------- each page style


def test_gov_cn_page_fields_and_exact_body() -> None:
    page = gov_cn_page(
        TITLE_004,
        BODY_004,
        doc_number="赣府发〔2022〕10号",
        issuer="江西省人民政府",
        pub_date="2022-05-26",
        written_date="2022-05-25",
        counter=98765,
    )
    doc = extract(page)
    assert doc.method == "cms"
    assert doc.title == TITLE_004
    assert doc.doc_number == "赣府发〔2022〕10号"
    assert doc.issuer == "江西省人民政府"
    assert doc.published_at == "2022-05-26"
    assert doc.paragraphs == tuple(BODY_004)
    assert doc.text == "\n".join(BODY_004)
    assert_no_chrome(doc)
    assert "98765" not in doc.text


def test_gov_cn_page_without_table_reads_the_metas() -> None:
    doc = extract(gov_cn_page(TITLE_004, BODY_004[:5], pub_date="2022-05-26"))
    assert doc.title == TITLE_004
    assert doc.published_at == "2022-05-26"
    assert doc.doc_number is None
    assert doc.paragraphs == tuple(BODY_004[:5])


def test_metadata_table_inside_the_body_is_not_body_text() -> None:
    page = gov_cn_page(
        TITLE_004, BODY_004[:6], doc_number="赣府发〔2022〕10号", issuer="江西省人民政府", table_in_body=True
    )
    doc = extract(page)
    assert doc.paragraphs == tuple(BODY_004[:6])
    assert doc.doc_number == "赣府发〔2022〕10号"
    assert doc.issuer == "江西省人民政府"


def test_provincial_gbk_page() -> None:
    page = provincial_page(
        TITLE_004, BODY_004, doc_number="赣府发〔2022〕10号", pub_date="2022-05-26", counter=4321
    )
    raw = page.encode("gbk")  # what the server sends
    doc = extract(raw.decode("gbk"))  # what the fetcher hands over after decoding
    assert doc.method == "cms"
    assert doc.title == TITLE_004
    assert doc.doc_number == "赣府发〔2022〕10号"
    assert doc.issuer == "江西省人民政府办公厅"
    assert doc.published_at == "2022-05-26"
    assert doc.paragraphs == tuple(BODY_004)
    assert_no_chrome(doc)
    assert "4321" not in doc.text


def test_news_repost_page_with_keyword_links() -> None:
    page = news_repost_page(TITLE_003, BODY_003, keyword_links=("重组", "数字经济", "GDP"))
    assert page.count('class="infokey"') > 50
    doc = extract(page)
    assert doc.method == "auto"
    assert doc.title == TITLE_003
    assert doc.issuer == "财联社"
    assert doc.published_at == "2022-01-12"
    assert doc.paragraphs == tuple(BODY_003)
    assert_no_chrome(doc)


def test_plain_page_goes_through_trafilatura() -> None:
    doc = extract(plain_page(TITLE_004, BODY_004, counter=555))
    assert doc.method == "auto"
    assert doc.title == TITLE_004
    assert doc.paragraphs == tuple(BODY_004)
    assert_no_chrome(doc)


@pytest.mark.parametrize("name", ["000", "001", "003", "004"])
@pytest.mark.parametrize("style", list(BUILDERS))
def test_every_corpus_text_in_every_page_style(name: str, style: str) -> None:
    title, body = corpus_document(name)
    doc = extract(BUILDERS[style](title, body))
    assert doc.method == EXPECTED_METHOD[style]
    assert doc.title == title
    assert list(doc.paragraphs) == body


# ----------------------------------------------------------------------------- hash stability


def _hash(style: str, **kwargs: object) -> str:
    title = kwargs.pop("title", TITLE_004)
    body = kwargs.pop("body", BODY_004)
    return extract(BUILDERS[style](title, body, **kwargs)).content_hash


@pytest.mark.parametrize("style", list(BUILDERS))
def test_visit_counter_and_sidebar_do_not_change_the_hash(style: str) -> None:
    base = _hash(style, counter=1, sidebar=("数字政府建设方案", "数据要素行动计划", "算力基础设施意见"))
    assert _hash(style, counter=999_999, sidebar=("算力基础设施意见", "数字政府建设方案")) == base


@pytest.mark.parametrize("style", list(BUILDERS))
def test_injected_keyword_links_do_not_change_the_hash(style: str) -> None:
    plain = extract(BUILDERS[style](TITLE_004, BODY_004, keyword_links=()))
    linked_page = BUILDERS[style](TITLE_004, BODY_004, keyword_links=("数字经济", "重组", "5G", "江西"))
    assert keyword_link("数字经济", 3271) in linked_page
    linked = extract(linked_page)
    assert linked.paragraphs == plain.paragraphs == tuple(BODY_004)
    assert linked.content_hash == plain.content_hash


def test_full_width_and_half_width_punctuation_give_the_same_hash() -> None:
    # 004 uses half-width , : ( ); render it full-width the way other sites repost it.
    full_width = [p.translate(str.maketrans(",:;()!?", "，：；（）！？")) for p in BODY_004]
    assert full_width != BODY_004
    half = extract(gov_cn_page(TITLE_004, BODY_004))
    full = extract(provincial_page(TITLE_004, full_width))
    assert full.paragraphs == tuple(full_width)  # display keeps the original punctuation
    assert full.content_hash == half.content_hash


def test_line_wrapped_source_gives_the_same_hash() -> None:
    wrapped = extract(provincial_page(TITLE_004, BODY_004, wrap=37))
    assert wrapped.paragraphs != tuple(BODY_004)  # wraps became spaces in the display text
    assert wrapped.normalised_paragraphs == normalise_paragraphs(BODY_004)
    assert wrapped.content_hash == extract(gov_cn_page(TITLE_004, BODY_004)).content_hash


def test_duplicated_mobile_body_counts_once() -> None:
    single = extract(gov_cn_page(TITLE_004, BODY_004))
    doubled_page = gov_cn_page(TITLE_004, BODY_004, mobile_copy=True)
    assert doubled_page.count('id="UCAP-CONTENT"') == 2
    doubled = extract(doubled_page)
    assert doubled.paragraphs == tuple(BODY_004)
    assert doubled.content_hash == single.content_hash


def test_same_document_on_different_sites_gives_the_same_hash() -> None:
    hashes = {style: _hash(style) for style in BUILDERS}
    assert len(set(hashes.values())) == 1, hashes
    assert hashes["gov_cn"] == content_hash(TITLE_004, BODY_004)


def test_changed_character_changes_the_hash() -> None:
    title, body = corpus_document("000")
    i = next(i for i, p in enumerate(body) if "35个左右城市" in p)
    changed = [*body[:i], body[i].replace("35个左右城市", "36个左右城市"), *body[i + 1 :]]
    for style in BUILDERS:
        a = extract(BUILDERS[style](title, body))
        b = extract(BUILDERS[style](title, changed))
        assert a.content_hash != b.content_hash, style
        assert b.paragraphs[i] == changed[i]


def test_title_change_changes_the_hash() -> None:
    assert _hash("gov_cn") != _hash("gov_cn", title=TITLE_004.replace("通知", "通告"))
    assert _hash("plain") != _hash("plain", title=TITLE_004.replace("江西省人民政府", "江西省政府办公厅"))


def test_content_hash_property_matches_function() -> None:
    doc = extract(gov_cn_page(TITLE_004, BODY_004[:3]))
    assert doc.content_hash == content_hash(TITLE_004, BODY_004[:3])
    assert doc.normalised_paragraphs == normalise_paragraphs(BODY_004[:3])


# ----------------------------------------------------------------------------- content_selector


def test_content_selector_path() -> None:
    page = news_repost_page(TITLE_003, BODY_003[:10])
    doc = extract(page, content_selector="#ContentBody")
    assert doc.method == "selector"
    assert doc.paragraphs == tuple(BODY_003[:10])  # "（文章来源：财联社）" is dropped as page metadata
    assert doc.title == TITLE_003


def test_content_selector_overrides_cms_containers() -> None:
    page = gov_cn_page(TITLE_004, BODY_004[:4])
    doc = extract(page, content_selector="div.sidebar")
    assert doc.method == "selector"
    assert doc.paragraphs == ("相关链接", "相关链接A", "相关链接B")


def test_content_selector_matching_nothing_raises_naming_it() -> None:
    with pytest.raises(ExtractionError, match=r"div\.zwnr"):
        extract(gov_cn_page(TITLE_004, BODY_004[:4]), content_selector="div.zwnr")


# ----------------------------------------------------------------------------- errors, soft 404


@pytest.mark.parametrize(
    "page",
    [
        "",
        "<html><head><title>空</title></head><body></body></html>",
        "<html><body><script>var a = '正文';</script><div class='footer'>版权所有</div></body></html>",
    ],
)
def test_empty_page_raises(page: str) -> None:
    with pytest.raises(ExtractionError):
        extract(page)


def test_soft_404_pages() -> None:
    assert is_not_found_page(not_found_page())
    assert is_not_found_page(not_found_page("该页面已删除"))
    assert is_not_found_page(not_found_page("信息已撤销"))
    assert is_not_found_page(
        "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
    )
    assert is_not_found_page((PAGES / "soft_404.html").read_text(encoding="utf-8"))
    assert is_not_found_page("<html><body>提示</body></html>", title="页面不存在")


def test_policy_page_mentioning_404_is_not_a_soft_404() -> None:
    body = [
        *BODY_004[:20],
        "各地要定期检查政府网站,对出现“404 Not Found”、页面不存在、链接失效等问题的栏目及时整改。",
    ]
    page = gov_cn_page(TITLE_004, body)
    assert is_not_found_page(page) is False
    assert extract(page).paragraphs == tuple(body)
    assert is_not_found_page(gov_cn_page(TITLE_004, BODY_004)) is False


# ----------------------------------------------------------------------------- hand-written pages


def test_old_gov_cn_layout_fixture() -> None:
    doc = extract((PAGES / "gov_cn_old.html").read_text(encoding="utf-8"))
    assert doc.method == "cms"
    assert doc.title == "国务院办公厅关于促进平台经济规范健康发展的指导意见"  # from the 标题 cell
    assert doc.doc_number == "国办发〔2019〕38号"
    assert doc.issuer == "国务院办公厅"
    assert doc.published_at == "2019-08-08"
    assert doc.paragraphs == (
        "国务院办公厅关于促进平台经济",  # <br> splits
        "规范健康发展的指导意见",
        "国办发〔2019〕38号",
        "各省、自治区、直辖市人民政府，国务院各部委、各直属机构：",
        "互联网平台经济是生产力新的组织方式，是经济发展新动能，对优化资源配置、促进跨界融通发展和大众创业万众创新、"
        "推动产业升级、拓展消费市场尤其是增加就业，都有重要作用。经国务院同意，现提出以下意见。",
        "一、优化完善市场准入条件，降低企业合规成本",
        "（一）推进平台经济相关市场主体登记注册便利化。放宽住所（经营场所）登记条件，经营者通过电子商务类平台"
        "开展经营活动的，可以使用平台提供的网络经营场所申请个体工商户登记。",
        "各地区、各部门要按照职责分工，抓紧制定配套措施。 重点任务分工如下：",  # source newline → space
        "序号 重点任务 责任单位",  # table rows: cells joined by a space
        "1 推进登记注册便利化 市场监管总局、 发展改革委",
        "2 合理设置行业准入规定和许可 各有关部门",
        "国务院办公厅",
        "2019年8月1日",
        "（此件公开发布）",
    )
    assert_no_chrome(doc)
    assert "扫一扫" not in doc.text
    assert "隐藏" not in doc.text


def test_gbk_trs_fixture() -> None:
    raw = (PAGES / "jiangxi_trs_gbk.html").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    doc = extract(raw.decode("gbk"))
    assert doc.method == "cms"
    assert (
        doc.title == "江西省人民政府关于印发江西省“十四五”数字经济发展规划的通知"
    )  # <title> minus " - 江西省人民政府"
    assert doc.doc_number == "赣府发〔2022〕10号"  # printed on its own line at the top of the body
    assert doc.issuer == "江西省人民政府办公厅"
    assert doc.published_at == "2022-05-26"
    assert doc.paragraphs == (
        "赣府发〔2022〕10号",
        "各市、县（区）人民政府，省政府各部门：",
        "现将《江西省“十四五”数字经济发展规划》印发给你们，请认真贯彻执行。",
        "2022年5月25日",
        "（此件主动公开）",
        "江西省“十四五”数字经济发展规划",
        "“十三五”以来，我省抢抓数字经济发展机遇，2020年全省数字经济增加值8354亿元，占GDP（国内生产总值）比重达32.5%。",
    )
    assert_no_chrome(doc)
    assert "88" not in doc.text


# ----------------------------------------------------------------------------- support module


def test_corpus_paragraphs_of_the_jekyll_post_have_no_markup() -> None:
    paragraphs = corpus_paragraphs("003")
    assert paragraphs[0].startswith("国务院印发“十四五”数字经济发展规划")
    assert paragraphs[1] == "规划全文"
    assert not any("<" in p or "layout:" in p or p.startswith(">") for p in paragraphs)
    assert "成为重组全球要素资源" in paragraphs[3]  # keyword link unwrapped in place
    assert corpus_paragraphs("004")[0] == TITLE_004
    assert corpus_paragraphs("001")[0] == "所在位置: 党群工作 > 党的建设"


def test_generic_article_container_fixture() -> None:
    """`.article` wrapper holding the <h1>, an info line, tools and neighbour links; bootstrap classes."""
    doc = extract((PAGES / "county_article.html").read_text(encoding="utf-8"))
    assert doc.method == "cms"
    assert doc.title == "某某县关于加快推进数字乡村建设的实施意见"  # not the logo <h1>
    assert doc.doc_number == "某政发〔2024〕3号"
    assert doc.issuer == "某某县农业农村局"
    assert doc.published_at == "2024-03-01"
    assert doc.paragraphs == (
        "某政发〔2024〕3号",
        "各乡镇人民政府，县直各单位：",
        # the span.font-weight-bold is kept: a utility class says nothing about chrome
        "为加快推进数字乡村建设，到2025年，全县行政村5G网络通达率达到90%以上，现提出如下实施意见。",
        "一、夯实乡村数字基础设施",
        "时间：2024年4月1日至2024年6月30日",  # a period in the text, not page metadata
    )
    assert "1024" not in doc.text
    assert "上一篇" not in doc.text


@pytest.mark.parametrize(
    ("page_title", "expected"),
    [
        (
            "国务院关于印发“十四五”数字经济发展规划的通知_国务院文件_中国政府网",
            "国务院关于印发“十四五”数字经济发展规划的通知",
        ),
        (
            "推进上海经济数字化转型行动方案(2021-2023年) - 上海市人民政府",
            "推进上海经济数字化转型行动方案(2021-2023年)",
        ),
        ("江西省数字经济发展规划-江西省人民政府", "江西省数字经济发展规划"),
        ("数字经济发展规划 | 某某网", "数字经济发展规划"),
        ("推进方案(2021-2023年)", "推进方案(2021-2023年)"),
    ],
)
def test_title_from_html_title_without_site_suffix(page_title: str, expected: str) -> None:
    page = f"<html><head><title>{page_title}</title></head><body><div class='TRS_Editor'><p>正文第一段。</p></div></body></html>"
    assert extract(page).title == expected


def test_body_hidden_until_a_script_shows_it_is_still_extracted() -> None:
    page = plain_page(TITLE_004, BODY_004[:12]).replace(
        "<main>", '<main><div id="wrap" style="display: none">', 1
    )
    page = page.replace("</main>", "</div></main>", 1)
    assert extract(page).paragraphs == tuple(BODY_004[:12])
