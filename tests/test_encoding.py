"""crawlers.decode_html and detect_challenge as plain functions (no server)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlers import decode_html, detect_challenge
from policywatch.demosite import CORPUS_DIR

CORPUS = sorted(CORPUS_DIR.glob("*.txt"))


def page(text: str, head: str = "") -> str:
    return f"<html><head>{head}<title>通知</title></head><body><p>{text}</p></body></html>"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name[:3])
@pytest.mark.parametrize("size", [40, 400, 4000])
def test_gbk_detected_without_any_label(path, size):
    html = page(path.read_text(encoding="utf-8")[:size])
    data = html.encode("gbk", errors="ignore")
    text, codec, source, bad = decode_html(data, None)
    assert (text, codec, source, bad) == (data.decode("gbk"), "gb18030", "detected", 0)


@pytest.mark.parametrize("label", ["gb2312", "GBK", "x-gbk", "cp936", "GB_2312-80", "gb18030", "csGB2312"])
def test_gb_labels_decode_as_gb18030(label):
    html = page("朱镕基 喆 堃")  # none of these is in GB2312
    text, codec, source, _ = decode_html(html.encode("gb18030"), label)
    assert (text, codec, source) == (html, "gb18030", "header")


def test_meta_beats_detection_and_bom_is_honoured():
    html = page("数字经济", head='<meta http-equiv="content-type" content="text/html;charset=GB2312">')
    assert decode_html(html.encode("gbk"), None)[1:3] == ("gb18030", "meta")
    text, codec, _, _ = decode_html(b"\xef\xbb\xbf" + page("数字").encode(), "gbk")
    assert codec == "utf-8" and text == page("数字")


def test_ascii_body_takes_declared_label():
    assert decode_html(b"<html>plain</html>", "gbk")[1:] == ("gb18030", "header", 0)
    assert decode_html(b"<html>plain</html>", None)[1:] == ("utf-8", "detected", 0)


def test_garbage_gets_replacement_count():
    data = page("数字经济").encode() + bytes(range(0x80, 0x100)) * 3
    text, _, _, bad = decode_html(data, "utf-8")
    assert bad == text.count("\ufffd") and bad > 0


@pytest.mark.parametrize("header", ["utf-8", None])
def test_short_utf8_page_with_a_stray_byte_stays_utf8(header):
    # charset-normalizer calls this cp1257 and decodes it "cleanly" into mojibake.
    html = page("layout: post title: 数字经济")
    data = html.encode().replace(b"</p>", b"\xff</p>")
    text, codec, source, bad = decode_html(data, header)
    assert (codec, source, bad) == ("utf-8", "header" if header else "detected", 1)
    assert text.replace("\ufffd", "") == html


def test_override_wins():
    data = page("数字经济").encode("gbk")
    assert decode_html(data, "utf-8", "gbk") == (page("数字经济"), "gb18030", "override", 0)


@settings(max_examples=60, deadline=None)
@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
        | st.sampled_from("，。、0123456789 abc《》"),
        min_size=20,
        max_size=300,
    ),
    st.sampled_from(["utf-8", "gb18030"]),
    st.sampled_from([None, "header", "meta"]),
)
def test_roundtrip(body, codec, label_at):
    head = f'<meta charset="{codec}">' if label_at == "meta" else ""
    html = page(body, head=head)
    data = html.encode(codec)
    text, used, _, bad = decode_html(data, codec if label_at == "header" else None)
    assert text == html and bad == 0
    assert used == codec or data.isascii()


def test_challenge_markers():
    assert detect_challenge(412, {}, "") is not None
    assert detect_challenge(200, {}, "<html><script>$_ts=window['$_ts'];</script></html>") is not None
    assert detect_challenge(200, {}, "<script>var x='__jsl_clearance_s';</script>") is not None
    assert detect_challenge(403, {"cf-mitigated": "challenge"}, "<html></html>") is not None
    assert detect_challenge(200, {}, page("安全狗提醒：您的请求带有不合法参数")) is not None
    assert detect_challenge(200, {}, page("请开启JavaScript并刷新该页")) is not None
    cookie_js = "<html><script>document.cookie='a=1';location.reload()</script></html>"
    assert detect_challenge(200, {}, cookie_js) is not None


def test_real_pages_not_challenges():
    long_text = CORPUS[3].read_text(encoding="utf-8")[:6000]
    # A long policy page that talks about firewalls and carries analytics / cookie scripts.
    html = page(long_text + "加强Web应用防火墙建设，访问受限的系统应当……") + (
        "<script>document.cookie='v=1';if(x)location.href='/';var _cf_chl='';</script>"
    )
    assert detect_challenge(200, {}, html) is None
    assert detect_challenge(200, {}, page("短通知：会议改期。")) is None
    assert detect_challenge(503, {}, "<html><body>Service Unavailable</body></html>") is None
