"""Production's engine, for real: Airflow on the CeleryExecutor with two workers (docker-compose.yml's
services as local processes: PostgreSQL, Redis, api-server, scheduler, dag-processor, triggerer,
two Celery workers, and an SMTP server on loopback).

The demo's four changes go end to end on both workers, alerts are sent once; then a worker is
SIGKILLed in the middle of a fetch: its batch is retried on the other worker with no duplicate
version, event or mail, and another source on the same host is not held up meanwhile.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from policywatch.demosite.server import DemoServer
from policywatch.demosite.site import demo_config, write_step
from storage.db import make_engine
from storage.models import ChangeEvent, Document, DocumentVersion, OperatorNotice, OutboxMessage
from tests.support.cluster import CeleryCluster
from tests.support.site import LocalSite, Page
from tests.support.smtp import SmtpServer

DEMO_DAGS = ("policywatch_demo-gov", "policywatch_demo-province", "policywatch_demo-news")
SLOW_DAG = "policywatch_slow"
HEARTBEAT_TIMEOUT_S = 30
SLOW_PAGE_S = 3.0
TITLES = (
    "关于加快推进公共数据资源开发利用的实施意见",
    "关于促进数据标注产业高质量发展的通知",
    "关于深化智慧城市发展推进城市全域数字化转型的指导意见",
    "关于推动数字经济和实体经济深度融合的若干措施",
)


def slow_source(site: LocalSite) -> str:
    return f"""  - id: slow
    name: 慢速站点 数字经济政策
    listing_urls: ["{site.url("/slow/list/")}"]
    link_pattern: "/slow/content/"
    min_delay_s: 0.05
    schedule: "0 0 1 1 *"
"""


def cluster_config(demo: DemoServer, site: LocalSite) -> str:
    """The demo's configuration, run by hand (a yearly schedule: runs are triggered), polite (50 ms
    between requests to 127.0.0.1, which every source here shares), plus a slow source."""
    config = demo_config(demo.base_url)
    config = config.replace("min_delay_s: 0\n", "min_delay_s: 0.05\n").replace('"*/2 * * * *"', '"0 0 1 1 *"')
    config = config.replace("subscribers:\n", slow_source(site) + "subscribers:\n", 1)
    # overdue_after_intervals: a yearly schedule's 365 days times this is about 25 s, so that the slow
    # run, which waits for a dead worker's heartbeat to time out, misses its deadline.
    return config + "  task_retry_delay_s: 5\n  backoff_base_s: 0.05\n  overdue_after_intervals: 0.0000008\n"


def publish(site: LocalSite, count: int, delay_s: float = 0.0) -> list[str]:
    paths = [f"/slow/content/{n}.html" for n in range(count)]
    site.put("/slow/list/", "".join(f'<a href="{p}">{n}</a> ' for n, p in enumerate(paths)))
    # Texts the demo site does not serve, in disjoint parts: no document is a repost of another.
    paras = corpus_paragraphs("000")
    titles = ("关于加快建设全国一体化算力网络的实施意见", *TITLES)
    for n, path in enumerate(paths):
        body = gov_cn_page(titles[n], paras[n * 10 : (n + 1) * 10])
        site.pages[path] = Page(body=body.encode("utf-8"), delay_s=delay_s if n else 0.0)
    return paths


def wait_until(condition, timeout_s: float, what: str, cluster: CeleryCluster) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cluster.check_alive()
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def test_celery_two_workers_demo_changes_and_a_worker_killed_mid_fetch(
    tmp_path: Path, site: LocalSite, smtp: SmtpServer
) -> None:
    state = tmp_path / "demo.json"
    write_step(0, state)
    demo = DemoServer(port=0, state=state).start()
    slow_paths = publish(site, 1)  # the slow source's baseline: one document
    config = tmp_path / "sources.yaml"
    config.write_text(cluster_config(demo, site), encoding="utf-8")
    cluster = CeleryCluster(
        tmp_path / "airflow",
        config,
        workers=2,
        concurrency=2,
        heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
        extra_env={"POLICYWATCH_SMTP_URL": smtp.url},
    )
    try:
        cluster.start()
        store = make_engine(cluster.store_url)
        cluster.wait_for_dags([*DEMO_DAGS, SLOW_DAG, "policywatch_deliver"])

        def run_all(*dag_ids: str) -> None:
            runs = {dag_id: cluster.trigger(dag_id) for dag_id in dag_ids}
            for dag_id, run_id in runs.items():
                assert cluster.wait_for_run(dag_id, run_id) == "success", cluster.task_states(dag_id, run_id)

        def events() -> list[tuple[str, str, str]]:
            with store.connect() as conn:
                rows = conn.execute(select(ChangeEvent.source_id, ChangeEvent.kind, ChangeEvent.url))
                return [tuple(r) for r in rows]

        def sent() -> int:
            with store.connect() as conn:
                query = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
                return conn.execute(query).scalar_one()

        # Unpaused, each source runs its baseline at once (catchup off: the latest past cron time):
        # every document recorded, silently.
        cluster.unpause("^policywatch_")
        for dag_id in (*DEMO_DAGS, SLOW_DAG):
            run_id = cluster.first_run(dag_id)
            assert cluster.wait_for_run(dag_id, run_id) == "success", cluster.task_states(dag_id, run_id)
        assert events() == []

        # The demo's changes: 1 (a new notice) and 2 (a figure edited) at once, 3 (a repost), 4 (withdrawn).
        write_step(2, state)
        run_all("policywatch_demo-gov", "policywatch_demo-province")
        write_step(3, state)
        run_all("policywatch_demo-news")
        write_step(4, state)
        run_all("policywatch_demo-gov")
        assert sorted((s, k) for s, k, _ in events()) == [
            ("demo-gov", "new"),
            ("demo-gov", "removed"),
            ("demo-news", "republished"),
            ("demo-province", "changed"),
        ]
        # Both workers ran tasks.
        assert {"w1", "w2"} <= cluster.hostnames()
        # The alerts (new, changed, removed: the subscriber's events) go out through policywatch_deliver,
        # which each run's events trigger.
        wait_until(lambda: len(smtp.messages) >= 3 and sent() >= 3, 180, "the demo's alerts mailed", cluster)

        # A worker killed mid-fetch: four new documents on the slow source, 3 s per page.
        slow_paths = publish(site, 1 + len(TITLES), delay_s=SLOW_PAGE_S)
        slow_run = cluster.trigger(SLOW_DAG)

        def fetching_new() -> tuple | None:
            running = [
                row
                for row in cluster.task_states(SLOW_DAG, slow_run)
                if row[0] == "fetch_and_version_new" and row[2] == "running" and row[3]
            ]
            started = any(site.hits[p] for p in slow_paths[1:])
            return running[0] if running and started else None

        wait_until(lambda: fetching_new() is not None, 240, "the slow batch fetching", cluster)
        victim = fetching_new()
        assert victim is not None
        killed_at = time.monotonic()
        cluster.kill_worker(victim[3])
        survivor = ({"w1", "w2"} - {victim[3]}).pop()

        # Another source on the same host (127.0.0.1) runs to the end meanwhile: nothing of the dead
        # worker's (no pool slot, no host turn: its connection closed) holds it.
        other = cluster.trigger("policywatch_demo-province")
        assert cluster.wait_for_run("policywatch_demo-province", other, timeout_s=240) == "success"
        other_done_s = time.monotonic() - killed_at
        assert other_done_s < 150, other_done_s

        # The killed batch is found dead after the heartbeat timeout and retried on the survivor.
        assert cluster.wait_for_run(SLOW_DAG, slow_run, timeout_s=600) == "success"
        [batch] = [r for r in cluster.task_states(SLOW_DAG, slow_run) if r[0] == "fetch_and_version_new"]
        assert batch[4] >= 2 and batch[3] == survivor, batch

        with store.connect() as conn:
            versions = Counter(
                url
                for (url,) in conn.execute(
                    select(Document.url).join(DocumentVersion, DocumentVersion.document_id == Document.id)
                )
            )
        new_urls = [site.url(p) for p in slow_paths[1:]]
        assert all(versions[u] == 1 for u in new_urls), versions
        slow_events = [(k, u) for s, k, u in events() if s == "slow"]
        assert sorted(slow_events) == sorted(("new", u) for u in new_urls)
        # Every alert mailed exactly once: four more, none twice.
        wait_until(lambda: sent() >= 7 and len(smtp.messages) >= 7, 180, "the slow source's alerts", cluster)
        time.sleep(5)  # a duplicate would come now
        ids = [m.header("Message-ID") for m in smtp.messages]
        assert len(ids) == len(set(ids)) == sent() == 7, ids
        mailed = Counter(m.header("X-Policywatch-Source") for m in smtp.messages)
        assert mailed["slow"] == len(TITLES)
        # The slow run missed its deadline (its Deadline Alert, run by the triggerer): one operator
        # notice for that run (no POLICYWATCH_OPERATOR_EMAILS here: it waits, pending, unmailed).
        with store.connect() as conn:
            overdue = conn.execute(
                select(OperatorNotice.source_id, OperatorNotice.subject).where(
                    OperatorNotice.kind == "overdue"
                )
            ).all()
        assert [subject for source, subject in overdue if source == "slow" and slow_run in subject] != []
        assert len({subject for _, subject in overdue}) == len(overdue)  # never twice for one run
        store.dispose()
        print(f"demo-province finished {other_done_s:.0f} s after the kill")
    finally:
        cluster.stop()
        demo.close()
