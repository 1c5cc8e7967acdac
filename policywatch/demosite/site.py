"""The demo sources and the changes `policywatch demo step` makes happen, one step at a time.

Three sources imitate three real styles (see README, "Sources and the demo"):

    demo-gov       a www.gov.cn-style site: a JSON listing (ZUIXINZHENGCE.json), UTF-8 pages with the
                   发文字号 metadata table and #UCAP-CONTENT body
    demo-province  a provincial TRS site in GBK: a paginated HTML listing (index.html, index_1.html),
                   div.TRS_Editor bodies, no charset in the HTTP header
    demo-news      a finance-news site: an RSS feed, reposts with stock-keyword links injected

The site's state is one number, the step, kept in a small JSON file (default var/demo-site.json)
so that `policywatch demo step` in one process changes what `policywatch demo serve` in another
serves. Step 0 is the baseline; each step makes one change:

    1  demo-gov       a new relevant notice is published              -> new
    2  demo-province  a figure of the provincial plan is edited        -> changed (8354亿元 -> 8500亿元)
    3  demo-news      the notice of step 1 is reposted                 -> republished (not alerted as new)
    4  demo-gov       the notice of step 1 is withdrawn                -> removed
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from policywatch.demosite.pages import (
    corpus_document,
    demo_text,
    gov_cn_page,
    json_listing,
    listing_page,
    news_repost_page,
    not_found_page,
    provincial_page,
    rss_feed,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 8765
DEFAULT_STATE_PATH = PROJECT_ROOT / "var" / "demo-site.json"


@dataclass(frozen=True)
class Step:
    number: int
    source: str
    change: str  # what happens, for the operator
    expect: str  # the event kind the next cycle records


STEPS: tuple[Step, ...] = (
    Step(1, "demo-gov", "国家数据局 publishes a new notice on public data", "new"),
    Step(
        2,
        "demo-province",
        "江西省 edits a figure of its digital-economy plan: 8354亿元 -> 8500亿元",
        "changed",
    ),
    Step(3, "demo-news", "a finance site reposts the notice, with stock-keyword links", "republished"),
    Step(4, "demo-gov", "the notice is withdrawn (the page says 该信息已撤销)", "removed"),
)


# --- the state file ---------------------------------------------------------------------------------


def state_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The state file: `path`, else $POLICYWATCH_DEMO_STATE, else var/demo-site.json."""
    return Path(path or os.environ.get("POLICYWATCH_DEMO_STATE") or DEFAULT_STATE_PATH)


def read_step(path: str | os.PathLike[str] | None = None) -> int:
    """The current step (0 when the file is missing or unreadable)."""
    try:
        data = json.loads(state_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    step = data.get("step") if isinstance(data, dict) else None
    return step if isinstance(step, int) and 0 <= step <= len(STEPS) else 0


def write_step(step: int, path: str | os.PathLike[str] | None = None) -> None:
    """Write the step atomically (a server reading it never sees half a file)."""
    target = state_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".demo-site.", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"step": step}, handle)
    os.replace(tmp, target)


def advance(path: str | os.PathLike[str] | None = None) -> Step | None:
    """Make the next change happen; None when every step has happened."""
    current = read_step(path)
    if current >= len(STEPS):
        return None
    write_step(current + 1, path)
    return STEPS[current]


# --- the pages ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    body: bytes
    content_type: str
    status: int = 200

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


GOV_LISTING = "/gov/zhengce/zuixin/ZUIXINZHENGCE.json"
GOV_PLAN = "/gov/zhengce/content/202201/content_5667817.htm"
GOV_GRAIN = "/gov/zhengce/content/202409/content_6975801.htm"
GOV_NOTICE = "/gov/zhengce/content/202409/content_6976233.htm"
PROVINCE_LISTING = "/province/zfwj/index.html"
PROVINCE_PAGE_TEMPLATE = "/province/zfwj/index_{n}.html"
PROVINCE_PLAN = "/province/zfwj/202205/t20220526_5966370.html"
PROVINCE_FIRE = "/province/zfwj/202411/t20241115_6127344.html"
NEWS_FEED = "/news/rss.xml"
NEWS_ARTICLE = "/news/a/202111091198765432.html"
NEWS_REPOST = "/news/a/202409203176543210.html"

PLAN_TITLE = "国务院关于印发“十四五”数字经济发展规划的通知"
NEWS_REPOST_TITLE = "国家数据局、国家发展改革委部署公共数据资源开发利用试点"


def demo_config(base_url: str) -> str:
    """The configuration of the demo sources served at `base_url` (config/demo.yaml is this at 8765)."""
    return f"""# The local demo sources served by `policywatch demo serve` on {base_url} (README: "Sources and the demo").
# `policywatch demo step` makes the next change happen; each source imitates a real site's style.
sources:
  - id: demo-gov
    name: 演示 中国政府网风格（JSON 列表）
    listings:
      - url: {base_url}{GOV_LISTING}
        kind: json
        url_field: URL
        title_field: TITLE
        date_field: DOCRELPUBTIME
    link_pattern: "/gov/zhengce/content/"
    preset: gov-cn
    min_delay_s: 0
    schedule: "*/2 * * * *"
  - id: demo-province
    name: 演示 省政府网站风格（GBK，分页列表）
    listings:
      - url: {base_url}{PROVINCE_LISTING}
        pages:
          template: {base_url}{PROVINCE_PAGE_TEMPLATE}
          first: 1
          max: 3
    link_pattern: "/province/zfwj/\\\\d{{6}}/t\\\\d{{8}}_\\\\d+\\\\.html"
    preset: trs
    min_delay_s: 0
    schedule: "*/2 * * * *"
  - id: demo-news
    name: 演示 财经新闻转载（RSS）
    listings:
      - url: {base_url}{NEWS_FEED}
        kind: rss
    link_pattern: "/news/a/"
    preset: eastmoney
    min_delay_s: 0
    schedule: "*/2 * * * *"
subscribers:
  - email: analyst@example.org
    sources: ["*"]
    keywords: []
    events: [new, changed, removed, restored]
    digest: false
settings:
  first_run_alerts: false
  respect_robots: true
"""


class DemoSite:
    """Every page of the demo sources at one step, built on first use."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._pages: dict[int, dict[str, Response]] = {}

    def response(self, path: str, step: int) -> Response | None:
        pages = self._pages.get(step)
        if pages is None:
            pages = self._pages[step] = self._build(step)
        return pages.get(path.split("?", 1)[0])

    def _build(self, step: int) -> dict[str, Response]:
        pages: dict[str, Response] = {}
        # The provincial pages' visit counter moves at every step: chrome that changes, never a change
        # of the text. The other pages stay byte for byte the same, so they answer 304 Not Modified.
        counter, province_counter = 1000, 1000 + 37 * step
        notice = demo_text("public_data_notice")
        grain = demo_text("grain_storage")

        def html(path: str, text: str, encoding: str = "utf-8", content_type: str | None = None) -> None:
            kind = content_type or f"text/html; charset={encoding}"
            pages[path] = Response(text.encode(encoding), kind)

        # demo-gov: a JSON listing and gov.cn-style pages
        plan_paras = corpus_document("003")[1][2:]
        html(
            GOV_PLAN,
            gov_cn_page(
                PLAN_TITLE,
                plan_paras,
                doc_number="国发〔2021〕29号",
                issuer="国务院",
                pub_date="2022-01-12",
                written_date="2021-12-12",
                counter=counter,
            ),
        )
        html(
            GOV_GRAIN,
            gov_cn_page(
                grain.title,
                grain.paragraphs,
                doc_number=grain.doc_number,
                issuer=grain.issuer,
                pub_date=grain.date,
                counter=counter,
            ),
        )
        gov_items = [
            (grain.title, self.base_url + GOV_GRAIN, grain.date or ""),
            (PLAN_TITLE, self.base_url + GOV_PLAN, "2022-01-12"),
        ]
        if step >= 1:
            if step >= 4:
                html(GOV_NOTICE, not_found_page("该信息已撤销"))
            else:
                html(
                    GOV_NOTICE,
                    gov_cn_page(
                        notice.title,
                        notice.paragraphs,
                        doc_number=notice.doc_number,
                        issuer=notice.issuer,
                        pub_date=notice.date,
                        counter=counter,
                    ),
                )
                gov_items.insert(0, (notice.title, self.base_url + GOV_NOTICE, notice.date or ""))
        html(GOV_LISTING, json_listing(gov_items), content_type="application/json; charset=utf-8")

        # demo-province: GBK pages, a listing of two pages
        plan_title, plan_body = corpus_document("004")
        if step >= 2:
            plan_body = [p.replace("8354亿元", "8500亿元") for p in plan_body]
        fire = demo_text("forest_fire")
        gbk = "text/html"  # no charset in the header: the page's <meta> says gb2312
        html(
            PROVINCE_PLAN,
            provincial_page(
                plan_title,
                plan_body,
                doc_number="赣府发〔2022〕11号",
                pub_date="2022-05-26",
                counter=province_counter,
            ),
            "gbk",
            gbk,
        )
        html(
            PROVINCE_FIRE,
            provincial_page(
                fire.title,
                fire.paragraphs,
                doc_number=fire.doc_number,
                pub_date=fire.date,
                counter=province_counter,
            ),
            "gbk",
            gbk,
        )
        page_urls = [
            self.base_url + PROVINCE_LISTING,
            self.base_url + PROVINCE_PAGE_TEMPLATE.replace("{n}", "1"),
        ]
        html(
            PROVINCE_LISTING,
            listing_page(
                "省政府文件",
                [(fire.title, PROVINCE_FIRE, fire.date or "")],
                pages=page_urls,
                charset="gb2312",
            ),
            "gbk",
            gbk,
        )
        html(
            PROVINCE_PAGE_TEMPLATE.replace("{n}", "1"),
            listing_page(
                "省政府文件", [(plan_title, PROVINCE_PLAN, "2022-05-26")], pages=page_urls, charset="gb2312"
            ),
            "gbk",
            gbk,
        )

        # demo-news: an RSS feed and reposts with stock-keyword links
        article_title, article_body = corpus_document("001")
        html(
            NEWS_ARTICLE,
            news_repost_page(
                article_title, article_body, source="中国经济网", pub_date="2021-11-09", counter=counter
            ),
        )
        news_items = [(article_title, self.base_url + NEWS_ARTICLE, "2021-11-09")]
        if step >= 3:
            html(
                NEWS_REPOST,
                news_repost_page(
                    NEWS_REPOST_TITLE,
                    notice.paragraphs,
                    source="国家数据局网站",
                    pub_date="2024-09-20",
                    counter=counter,
                    keyword_links=("数据要素", "数字经济", "人工智能"),
                ),
            )
            news_items.insert(0, (NEWS_REPOST_TITLE, self.base_url + NEWS_REPOST, "2024-09-20"))
        html(
            NEWS_FEED,
            rss_feed("财经频道 政策", self.base_url + "/news/", news_items),
            content_type="application/rss+xml; charset=utf-8",
        )

        html("/", self._index(step))
        return pages

    def _index(self, step: int) -> str:
        done = "".join(f"<li>step {s.number}: {s.change} ({s.source})</li>" for s in STEPS[:step])
        todo = "".join(f"<li>step {s.number}: {s.change} ({s.source})</li>" for s in STEPS[step:])
        return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>PolicyWatch demo sources</title></head>
<body><h1>PolicyWatch demo sources (step {step} of {len(STEPS)})</h1>
<ul><li><a href="{GOV_LISTING}">demo-gov</a>: a www.gov.cn-style JSON listing</li>
<li><a href="{PROVINCE_LISTING}">demo-province</a>: a provincial GBK site with a paginated listing</li>
<li><a href="{NEWS_FEED}">demo-news</a>: a finance-news RSS feed of reposts</li></ul>
<h2>Changes made</h2><ul>{done or "<li>none yet (the first cycle is the baseline)</li>"}</ul>
<h2>Next (policywatch demo step)</h2><ul>{todo or "<li>none: every change has happened</li>"}</ul>
</body></html>
"""
