"""Extraction on the page shapes real sites were seen to have (issue: right on the web as it is).

Each test is one shape reported from real news and government pages: titles next to lists of
other articles, breadcrumbs and column suffixes in <title>, a finance portal whose only CMS
container is its disclaimer, footers, pagers, share and follow buttons, and how dates and
发文字号 are printed. tests/test_realpages.py runs the saved real pages themselves.
"""

from __future__ import annotations

import pytest

from policywatch.extraction import extract_document

BODY = (
    "<p>为加快数字经济发展，推进数据要素市场化配置改革，现就有关事项通知如下。</p>"
    "<p>一、到2025年，数字经济核心产业增加值占GDP比重达到10%。</p>"
    "<p>二、各地区要结合实际抓好贯彻落实，重大问题及时报告。</p>"
)


def page(
    head: str = "", before: str = "", body: str = BODY, after: str = "", container: str = "TRS_Editor"
) -> str:
    return (
        f"<html><head><meta charset='utf-8'>{head}</head><body>{before}"
        f"<div class='{container}'>{body}</div>{after}</body></html>"
    )


RELATED = [
    "国家数据局发布数据要素白皮书",
    "工信部：加快推进工业互联网发展",
    "多地出台数字经济促进条例",
]


def related_list(order: list[str]) -> str:
    items = "".join(
        f"<li><h3 class='title'><a href='/n/{i}.html'>{t}</a></h3></li>" for i, t in enumerate(order)
    )
    return f"<div class='list-box'><h2>相关新闻</h2><ul>{items}</ul></div>"


def test_a_list_of_other_articles_never_gives_the_title() -> None:
    head = "<title>关于加快数字经济发展的通知_新闻中心</title>"
    before = "<h1 class='article-title'>关于加快数字经济发展的通知</h1>"
    first = extract_document(page(head, before + related_list(RELATED)), "https://news.example.com/a.html")
    again = extract_document(
        page(head, before + related_list(RELATED[::-1])), "https://news.example.com/a.html"
    )
    assert first.title == again.title == "关于加快数字经济发展的通知"
    assert first.content_hash == again.content_hash


def test_without_a_heading_the_title_comes_from_title_not_from_a_list() -> None:
    head = "<title>关于加快数字经济发展的通知 - 中国经济网</title>"
    for order in (RELATED, RELATED[::-1]):
        doc = extract_document(page(head, related_list(order)), "https://news.example.com/a.html")
        assert doc.title == "关于加快数字经济发展的通知"
        assert doc.reasons[0].startswith("title: <title>")


@pytest.mark.parametrize(
    ("title", "crumb", "want"),
    [
        ("首页 > 政策 > 关于加快数字经济发展的通知", "", "关于加快数字经济发展的通知"),
        (
            "关于加快数字经济发展的通知-政策解读",
            "<div class='crumb'>首页 > 政策解读</div>",
            "关于加快数字经济发展的通知",
        ),
        ("【关于加快数字经济发展的通知】-国家发展和改革委员会", "", "关于加快数字经济发展的通知"),
        ("数字中国建设——2024年工作要点", "", "数字中国建设——2024年工作要点"),
        ("“十四五”数字经济发展规划(2021-2025年)", "", "“十四五”数字经济发展规划(2021-2025年)"),
    ],
)
def test_breadcrumbs_and_site_suffixes_leave_the_title(title: str, crumb: str, want: str) -> None:
    doc = extract_document(page(f"<title>{title}</title>", crumb), "https://www.example.gov.cn/a.html")
    assert doc.title == want


def test_a_disclaimer_container_never_wins_over_the_article() -> None:
    """A finance portal whose only CMS-looking container is the disclaimer under the article."""
    html = (
        "<html><head><title>国务院印发数字经济发展规划_财经频道</title></head><body>"
        "<div class='main'><h1>国务院印发数字经济发展规划</h1>"
        "<div class='newsbody'>" + BODY + "<p>三、本通知自印发之日起施行，请各地认真组织实施。</p></div>"
        "<div class='content'>【免责声明】本文仅代表作者本人观点，与本网站无关。本网站对文中陈述、观点判断保持中立，"
        "不对所包含内容的准确性、可靠性或完整性提供任何明示或暗示的保证。</div></div></body></html>"
    )
    doc = extract_document(html, "https://finance.example.com/a.html")
    assert "一、到2025年，数字经济核心产业增加值占GDP比重达到10%。" in doc.paragraphs
    assert not any("免责声明" in p for p in doc.paragraphs)


@pytest.mark.parametrize(
    "chrome",
    [
        "<p>主办单位：某某市人民政府办公室 地址：某某市人民路1号 网站标识码：3601000001 赣ICP备05004204号</p>",
        "<p>版权所有：某某市人民政府 技术支持：某某科技</p>",
        "<p>1 2 3 4 下一页 尾页</p>",
        "<p>上一页 1 2 3 下一页</p>",
        "<p>分享到： 微信 微博 QQ空间</p>",
        "<p>关注 举报</p>",
        "<p>【打印文档】 【关闭窗口】</p>",
        "<p>相关阅读</p><p>国家数据局发布数据要素白皮书</p><p>多地出台数字经济促进条例</p>",
    ],
)
def test_chrome_inside_the_body_container_is_dropped(chrome: str) -> None:
    doc = extract_document(
        page("<title>关于加快数字经济发展的通知</title>", body=BODY + chrome), "https://x.gov.cn/a"
    )
    assert doc.paragraphs == (
        "为加快数字经济发展，推进数据要素市场化配置改革，现就有关事项通知如下。",
        "一、到2025年，数字经济核心产业增加值占GDP比重达到10%。",
        "二、各地区要结合实际抓好贯彻落实，重大问题及时报告。",
    )


def test_a_conference_notice_keeps_its_organisers() -> None:
    """主办单位 in a notice's text is content; only a footer line of site facts is chrome."""
    body = BODY + "<p>主办单位：国家数据局</p><p>承办单位：某某省数据局</p>"
    doc = extract_document(page("<title>关于举办数据要素大会的通知</title>", body=body), "https://x.gov.cn/a")
    assert "主办单位：国家数据局" in doc.paragraphs and "承办单位：某某省数据局" in doc.paragraphs


@pytest.mark.parametrize(
    ("info", "date"),
    [
        ("<div class='info'>2024-03-05 10:30 来源：国家数据局</div>", "2024-03-05"),
        ("<div class='info'>发布时间：2024年03月05日</div>", "2024-03-05"),
        ("<div class='info'>时间:2024-03-05 来源:新华社</div>", "2024-03-05"),
    ],
)
def test_printed_publication_dates(info: str, date: str) -> None:
    head = "<title>关于加快数字经济发展的通知</title><meta name='PubDate' content='2026-01-09 08:00'>"
    before = "<h1>关于加快数字经济发展的通知</h1>" + info
    doc = extract_document(page(head, before), "https://x.gov.cn/a")
    assert doc.published_at == date  # the printed date, not the CMS's regeneration time


def test_the_date_written_is_not_the_publication_date() -> None:
    head = "<title>关于加快数字经济发展的通知</title><meta name='firstpublishedtime' content='2024-03-08-09:00:00'>"
    before = "<ul><li>成文日期：2024年03月01日</li></ul>"
    assert extract_document(page(head, before), "https://x.gov.cn/a").published_at == "2024-03-08"


@pytest.mark.parametrize(
    ("first_lines", "number"),
    [
        ("<p>国家税务总局公告2024年第3号</p>", "国家税务总局公告2024年第3号"),
        ("<p>中华人民共和国工业和信息化部令</p><p>第 68 号</p>", "中华人民共和国工业和信息化部令第68号"),
        ("<p>工信部联规〔2024〕12号</p>", "工信部联规〔2024〕12号"),
    ],
)
def test_document_numbers_printed_at_the_top(first_lines: str, number: str) -> None:
    doc = extract_document(page("<title>公告</title>", body=first_lines + BODY), "https://x.gov.cn/a")
    assert doc.doc_number == number


def test_a_number_the_text_only_cites_is_not_the_pages() -> None:
    body = (
        "<p>根据《国务院关于印发“十四五”数字经济发展规划的通知》（国发〔2021〕29号），现通知如下。</p>" + BODY
    )
    doc = extract_document(page("<title>关于加快数字经济发展的通知</title>", body=body), "https://x.gov.cn/a")
    assert doc.doc_number is None


def test_a_news_page_gives_the_number_of_the_document_it_is_about() -> None:
    body = (
        "<p>近日，国务院印发《“十四五”数字经济发展规划》（国发〔2021〕29号，以下简称《规划》）。</p>" + BODY
    )
    doc = extract_document(
        page("<title>国务院印发“十四五”数字经济发展规划</title>", body=body), "https://x.com/a"
    )
    assert doc.doc_number == "国发〔2021〕29号"


def test_an_interpretation_page_has_no_number_of_its_own() -> None:
    body = (
        "<p>日前，国务院印发《“十四五”数字经济发展规划》（国发〔2021〕29号）。记者就此采访了有关负责同志。</p>"
        + BODY
    )
    title = "<title>有关负责同志就《“十四五”数字经济发展规划》答记者问</title>"
    assert extract_document(page(title, body=body), "https://x.gov.cn/a").doc_number is None


@pytest.mark.parametrize(
    "chrome",
    [
        "<p>您所在的位置： 首页 > 快讯 > 公司</p>",
        "<p>2019-09-26 12:11来源：证券时报网作者：李在山</p>",
        "<p>声明：本网力求信息真实、准确，文章提及内容仅供参考，不构成实质性投资建议，据此操作风险自担。</p>",
        "<p>进入【财经股吧】讨论</p>",
        "<p>为你推荐</p><p>金融委最新定调！鼓励境外资金进入境内金融市场</p>"
        "<p>十一国庆假期前，金融委召开会议，部署了一系列金融领域下一步的重点工作。</p><p>2019-09-3007:42</p>",
    ],
)
def test_news_portal_chrome_inside_a_page_wide_container(chrome: str) -> None:
    """Seen on a securities daily whose `.content` holds the whole page column."""
    body = chrome + BODY if "位置" in chrome or "来源" in chrome else BODY + chrome
    doc = extract_document(page("<title>关于加快数字经济发展的通知</title>", body=body), "https://x.com/a")
    assert len(doc.paragraphs) == 3 and doc.paragraphs[0].startswith("为加快数字经济发展")


@pytest.mark.parametrize(
    ("info", "date"),
    [
        ("<ul><li>来源：新华社</li><li>作者：</li><li>2023-12-01 14:43</li></ul>", "2023-12-01"),
        ("<div>本文来源于 <a href='#'>国家统计局</a> <span>2024-05-11 09:36:26</span></div>", "2024-05-11"),
    ],
)
def test_dates_among_the_source_lines(info: str, date: str) -> None:
    before = "<h1>关于加快数字经济发展的通知</h1>" + info
    doc = extract_document(page("<title>关于加快数字经济发展的通知</title>", before), "https://x.com/a")
    assert doc.published_at == date
