"""A version store filled by running the real pipeline against a local site, for the web tests.

Not a test module itself (no tests here): tests/test_web.py and tests/test_browser.py build their
store with `build_world`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from policywatch.config import parse_config
from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.pipeline import run_cycle
from storage.db import make_engine, session_factory
from storage.models import ChangeEvent
from storage.store import document_for_url
from tests.support.site import LocalSite

PLAN_TITLE = "江西省人民政府关于印发江西省“十四五”数字经济发展规划的通知"
PLAN_NUMBER = "赣府发〔2022〕11号"
SCRIPT_TITLE = '<script>alert("pw")</script>关于推进数据要素市场化配置的通知'
REPOST_TITLE = "国务院关于印发“十四五”数字经济发展规划的通知"
FILLER_COUNT = 6  # new documents of the second cycle besides the script one: enough to page through

PARAS = corpus_paragraphs("004")[1:41]
OTHER_PARAS = corpus_paragraphs("004")[41:70]
# Texts unrelated to each other, so that no new document looks like a repost of another.
NEWS_PARAS = corpus_paragraphs("003")


def filler_paragraphs(n: int) -> list[str]:
    return corpus_paragraphs("000")[n * 6 : n * 6 + 6]


@dataclass
class WebWorld:
    url: str
    site: LocalSite
    ids: dict[str, int] = field(default_factory=dict)


def _config(site: LocalSite) -> str:
    return f"""
sources:
  - id: gov
    name: 演示政府网
    listing_urls: ["{site.url("/gov/list/")}"]
    link_pattern: "/gov/content/"
    min_delay_s: 0
  - id: news
    name: 演示新闻网
    listing_urls: ["{site.url("/news/list/")}"]
    link_pattern: "/news/content/"
    min_delay_s: 0
settings:
  backoff_base_s: 0.01
  max_attempts: 1
  read_timeout_s: 5
"""


def _listing(site: LocalSite, prefix: str, paths: list[str]) -> None:
    links = "".join(f'<li><a href="{p}">文件{i}</a></li>' for i, p in enumerate(paths))
    site.put(f"/{prefix}/list/", f"<html><body><ul>{links}</ul></body></html>")


def _plan(paragraphs: list[str]) -> str:
    return gov_cn_page(
        PLAN_TITLE, paragraphs, doc_number=PLAN_NUMBER, issuer="江西省人民政府", pub_date="2022-05-25"
    )


def changed_plan(figure: str) -> list[str]:
    """The plan with its digital-economy value figure changed and one paragraph moved."""
    paras = [p.replace("8354", figure) for p in PARAS]
    moved = paras.pop(3)
    paras.insert(12, moved)
    return paras


def build_world(site: LocalSite, url: str) -> WebWorld:
    """Three pipeline cycles over two sources: a baseline, then new (one titled with a <script>),
    changed (a figure and a moved paragraph), republished, removed, fetch errors; then one more change."""
    config = parse_config(_config(site))
    engine = make_engine(url)
    gov = ["/gov/content/plan.html", "/gov/content/other.html", "/gov/content/gone.html"]
    _listing(site, "gov", gov)
    site.put(gov[0], _plan(PARAS))
    site.put(gov[1], gov_cn_page(REPOST_TITLE, OTHER_PARAS, issuer="国务院", pub_date="2022-01-12"))
    site.put(gov[2], gov_cn_page("即将撤下的通知", NEWS_PARAS[0:10], issuer="某局", pub_date="2021-03-01"))
    _listing(site, "news", ["/news/content/first.html"])
    site.put("/news/content/first.html", gov_cn_page("新闻网首页文章", NEWS_PARAS[10:20]))
    first = run_cycle(config, engine)
    assert first.baseline == 4 and first.errors == 0, first.failures

    site.put(gov[0], _plan(changed_plan("9000")))
    site.put(gov[2], "<html><body>not here</body></html>", status=404)
    site.put("/gov/content/script.html", gov_cn_page(SCRIPT_TITLE, NEWS_PARAS[20:32], issuer="某局"))
    site.put("/gov/content/broken.html", "<h1>Service Unavailable</h1>", status=503)
    fillers = [f"/gov/content/filler-{n}.html" for n in range(FILLER_COUNT)]
    for n, path in enumerate(fillers):
        site.put(path, gov_cn_page(f"数字经济补充文件第{n}号", filler_paragraphs(n), issuer="某局"))
    _listing(site, "gov", [*gov, "/gov/content/script.html", "/gov/content/broken.html", *fillers])
    # The news site reposts the State Council plan word for word.
    site.put(
        "/news/content/repost.html",
        gov_cn_page(REPOST_TITLE, OTHER_PARAS, issuer="国务院", pub_date="2022-01-12"),
    )
    _listing(site, "news", ["/news/content/first.html", "/news/content/repost.html"])
    second = run_cycle(config, engine)
    assert second.changed == 1 and second.removed == 1 and second.republished == 1, second
    assert second.errors >= 1

    site.put(gov[0], _plan(changed_plan("9500")))
    # The State Council plan moves: its old URL redirects to the new one (same document, same id).
    site.put(gov[1], "", status=301, headers={"Location": "/gov/content/other-moved.html"})
    site.put(
        "/gov/content/other-moved.html",
        gov_cn_page(REPOST_TITLE, OTHER_PARAS, issuer="国务院", pub_date="2022-01-12"),
    )
    third = run_cycle(config, engine)
    assert third.changed == 1, third

    world = WebWorld(url=url, site=site)
    with session_factory(engine)() as session:
        for key, path in (
            ("plan", gov[0]),
            ("other", gov[1]),
            ("gone", gov[2]),
            ("script", "/gov/content/script.html"),
            ("repost", "/news/content/repost.html"),
        ):
            doc = document_for_url(session, site.url(path))
            assert doc is not None, path
            world.ids[key] = doc.id
        changed = session.scalars(
            select(ChangeEvent).where(ChangeEvent.kind == "changed").order_by(ChangeEvent.id)
        ).all()
        world.ids["first_change_old"] = changed[0].old_version_id  # type: ignore[assignment]
        world.ids["first_change_new"] = changed[0].new_version_id  # type: ignore[assignment]
    engine.dispose()
    return world
