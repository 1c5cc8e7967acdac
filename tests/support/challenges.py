"""A local site on 127.0.0.1 that defends itself the way Chinese government sites do.

Each top-level directory is behind one vendor's challenge, computed in JavaScript by the page the
way the real one is (public write-ups of scrapers of these sites), and verified by the server:

- `/jsl/`  加速乐 (Jiasule). No `__jsluid_s`: HTTP 521, `Set-Cookie: __jsluid_s`, and a script that
  assembles `__jsl_clearance_s` from values in the page (the cookie name itself built from pieces)
  and reloads. Then a second 521 whose `go({...})` names a hash (md5, sha1 or sha256, picked by the
  server per visitor), a prefix, a suffix and an alphabet: the script tries every pair of
  characters until the hash of prefix+pair+suffix is the server's `ct`, sets that as the
  clearance after `wt` ms and reloads. Then 200.
- `/rs/`   瑞数 (Rivers). No valid `<P>S`/`<P>T`: HTTP 412 (or 202 / 200-empty), `Set-Cookie: <P>S`,
  `<meta id content r='m'>`, an inline `<script r='m'>` setting `$_ts`, an external script, and a
  trigger after `</html>`; the external script computes `<P>T` from the meta content, `$_ts` and
  `navigator.userAgent` (so the clearance holds only for the user agent that earned it).
- `/acw/`  Alibaba Cloud WAF. No valid `acw_sc__v2`: 200 with `Set-Cookie: acw_tc` and the
  `arg1='…'` script (the real permutation and XOR mask) setting `acw_sc__v2` and reloading.
- `/open/` no protection: a Hanweb 大汉 column page filled by script from
  `/open/module/web/jpage/dataproxy.jsp` (XML, `<record>` CDATA, `<totalpage>`), and the proxy.

Under `/jsl/list/` a listing filled by script (fetch of `data.json`), behind the challenge.
`revoke()` forgets every clearance (a challenge comes back). `requests` logs who asked for what,
`browser` telling the browser's requests from the plain Fetcher's (by the Accept header).
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page

RIVERS_PREFIX = "FSSBBIl1UgzbN7N80"
# What crawlers.fetch.Fetcher asks for: any other Accept is the browser's (Chromium's own, or
# Playwright's route.fetch repeating it), which sends the same User-Agent.
PLAIN_ACCEPT = "text/html,application/xhtml+xml;q=0.9,text/plain;q=0.8,*/*;q=0.5"
ACW_POS = (
    15, 35, 29, 24, 33, 16, 1, 38, 10, 9, 19, 31, 40, 27, 22, 23, 25, 13, 6, 11,
    39, 18, 20, 8, 14, 21, 32, 26, 2, 30, 7, 4, 17, 5, 3, 28, 34, 37, 12, 36,
)  # fmt: skip
ACW_MASK = "3000176000856006061501533003690027800375"
JSL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
HASHES = ("md5", "sha1", "sha256")

# MD5 as the Jiasule page carries it (SubtleCrypto has no MD5); SHA-1/SHA-256 by SubtleCrypto
# (127.0.0.1 is a secure context).
_JS_HASH = r"""
function md5(s){var K=[],R=[7,12,17,22,5,9,14,20,4,11,16,23,6,10,15,21],i,j;
for(i=0;i<64;i++)K[i]=Math.floor(Math.abs(Math.sin(i+1))*4294967296)|0;
var b=unescape(encodeURIComponent(s)),n=b.length,L=(((n+8)>>>6)+1)*16,w=[];
for(i=0;i<L;i++)w[i]=0;for(i=0;i<n;i++)w[i>>2]|=b.charCodeAt(i)<<((i%4)*8);
w[n>>2]|=0x80<<((n%4)*8);w[L-2]=n*8;
var h0=0x67452301,h1=0xefcdab89|0,h2=0x98badcfe|0,h3=0x10325476;
for(j=0;j<L;j+=16){var a=h0,bb=h1,c=h2,d=h3,f,g,t,x,r;
for(i=0;i<64;i++){if(i<16){f=(bb&c)|(~bb&d);g=i}else if(i<32){f=(d&bb)|(~d&c);g=(5*i+1)%16}
else if(i<48){f=bb^c^d;g=(3*i+5)%16}else{f=c^(bb|~d);g=(7*i)%16}
t=d;d=c;c=bb;x=(a+f+K[i]+w[j+g])|0;r=R[(i>>4)*4+(i%4)];bb=(bb+((x<<r)|(x>>>(32-r))))|0;a=t;}
h0=(h0+a)|0;h1=(h1+bb)|0;h2=(h2+c)|0;h3=(h3+d)|0;}
var o='';[h0,h1,h2,h3].forEach(function(h){for(var k=0;k<4;k++)o+=('0'+((h>>>(k*8))&255).toString(16)).slice(-2)});return o;}
function hex(buf){return Array.prototype.map.call(new Uint8Array(buf),function(x){return('0'+x.toString(16)).slice(-2)}).join('')}
function digest(ha,s){if(ha==='md5')return Promise.resolve(md5(s));
return crypto.subtle.digest(ha==='sha1'?'SHA-1':'SHA-256',new TextEncoder().encode(s)).then(hex)}
"""


def fnv1a(text: str) -> str:
    h = 0x811C9DC5
    for ch in text:
        h ^= ord(ch)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def acw_clearance(arg1: str) -> str:
    """acw_sc__v2 from arg1: the real page's permutation, then XOR with the mask."""
    out = [""] * len(ACW_POS)
    for i, ch in enumerate(arg1):
        for j, pos in enumerate(ACW_POS):
            if pos == i + 1:
                out[j] = ch
    arg2 = "".join(out)
    return "".join(f"{int(arg2[i : i + 2], 16) ^ int(ACW_MASK[i : i + 2], 16):02x}" for i in range(0, 40, 2))


def _hash(name: str, text: str) -> str:
    return hashlib.new(name, text.encode()).hexdigest()


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    cookies: list[str] = field(default_factory=list)  # Set-Cookie values
    location: str | None = None


@dataclass
class Hit:
    path: str
    query: str
    browser: bool  # the browser's request (not crawlers.fetch.Fetcher's Accept header)
    user_agent: str
    passed: bool  # answered with the real content (not a challenge)
    at: float = field(default_factory=time.monotonic)


def policy_page(title: str, paragraphs: list[str]) -> str:
    return gov_cn_page(
        title,
        paragraphs,
        doc_number="工信部发〔2024〕1号",
        issuer="工业和信息化部",
        pub_date="2024-03-01",
    )


PARAS = corpus_paragraphs("004")[1:21]


class ChallengeSite:
    """Serve the vendors' sites until `close()` (see the module)."""

    def __init__(
        self,
        documents_per_vendor: int = 3,
        hanweb_documents: int = 23,
        rivers_status: int = 412,
        jiasule_hash: str | None = None,
    ) -> None:
        self.rivers_status = rivers_status
        self.jiasule_hash = jiasule_hash  # None: the server picks one per visitor, at random
        self.documents: dict[str, str] = {}
        for vendor in ("jsl", "rs", "acw"):
            for n in range(1, documents_per_vendor + 1):
                self.documents[f"/{vendor}/art/{n}.html"] = policy_page(
                    f"关于推进数字经济发展的通知（{vendor}-{n}）", [f"第{n}号文件。", *PARAS]
                )
        self.hanweb = [
            (
                f"/open/art/2024/3/{n}/art_1229_{n}.html",
                f"省政府关于数据要素的通知{n}",
                f"2024-03-{1 + n % 28:02d}",
            )
            for n in range(1, hanweb_documents + 1)
        ]
        for path, title, _ in self.hanweb:
            self.documents[path] = policy_page(title, [f"{title}。", *PARAS[:8]])
        self.js_list = [f"/jsl/art/{n}.html" for n in range(1, documents_per_vendor + 1)]
        self.lock = threading.Lock()
        self.requests: list[Hit] = []
        self.hits: Counter[str] = Counter()
        # Jiasule: __jsluid_s -> (stage-1 clearance, hash name, final clearance, stage-1 page);
        # cleared ids.
        self._jsl: dict[str, tuple[str, str, str, str]] = {}
        self._jsl_ok: set[str] = set()
        # Rivers: <P>S -> valid; Aliyun: acw_tc -> arg1; cleared acw_tc.
        self._rs: set[str] = set()
        self._rs_ok: set[tuple[str, str]] = set()
        self._acw: dict[str, str] = {}
        self._acw_ok: set[str] = set()
        self.robots = "User-agent: *\nDisallow: /open/private/\n"
        self.redirects: dict[str, str] = {}  # path -> Location (302)
        self.protected = True  # False: the same site without its challenges (for comparisons)
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                cookies = {k: m.value for k, m in SimpleCookie(self.headers.get("Cookie", "")).items()}
                ua = self.headers.get("User-Agent", "")
                response = site.answer(parts.path, parts.query, cookies, ua)
                with site.lock:
                    site.hits[parts.path] += 1
                    site.requests.append(
                        Hit(
                            parts.path,
                            parts.query,
                            self.headers.get("Accept", "") != PLAIN_ACCEPT,
                            ua,
                            response.status == 200 and not response.cookies,
                        )
                    )
                head = f"HTTP/1.1 {response.status} X\r\nContent-Type: {response.content_type}\r\n"
                head += f"Content-Length: {len(response.body)}\r\n"
                head += "".join(f"Set-Cookie: {c}\r\n" for c in response.cookies)
                if response.location:
                    head += f"Location: {response.location}\r\n"
                self.wfile.write(head.encode("latin-1") + b"\r\n" + response.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # -- the public side -------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def revoke(self) -> None:
        """Forget every clearance: the next request of each visitor is challenged again."""
        with self.lock:
            self._jsl.clear()
            self._jsl_ok.clear()
            self._rs.clear()
            self._rs_ok.clear()
            self._acw.clear()
            self._acw_ok.clear()

    def edit(self, path: str, old: str, new: str) -> None:
        with self.lock:
            assert old in self.documents[path]
            self.documents[path] = self.documents[path].replace(old, new)

    def served(self, prefix: str, *, browser: bool | None = None) -> list[Hit]:
        """Requests under `prefix` answered with content (not a challenge)."""
        with self.lock:
            return [
                h
                for h in self.requests
                if h.path.startswith(prefix) and h.passed and (browser is None or h.browser == browser)
            ]

    # -- routing ---------------------------------------------------------------------------------

    def answer(self, path: str, query: str, cookies: dict[str, str], ua: str) -> Response:
        if path == "/robots.txt":
            return Response(200, self.robots.encode(), "text/plain")
        if path.startswith("/rs-lib/"):
            return Response(200, RIVERS_LIB.encode(), "application/javascript")
        if not self.protected:
            challenge = None
        elif path.startswith("/jsl/"):
            challenge = self._jiasule(cookies)
        elif path.startswith("/rs/"):
            challenge = self._rivers(cookies, ua)
        elif path.startswith("/acw/"):
            challenge = self._aliyun(cookies)
        else:
            challenge = None
        if challenge is not None:
            return challenge
        return self._content(path, query)

    def _content(self, path: str, query: str) -> Response:
        if path in self.redirects:
            return Response(302, b"", cookies=[], location=self.redirects[path])
        if path == "/jsl/list/index.html":
            return Response(200, JS_LIST_PAGE.encode())
        if path == "/jsl/list/data.json":
            items = [{"url": p, "title": f"文件{i}"} for i, p in enumerate(self.js_list, 1)]
            return Response(200, json.dumps(items, ensure_ascii=False).encode(), "application/json")
        if path == "/open/col/col1229/index.html":
            return Response(200, HANWEB_COLUMN_PAGE.encode())
        if path == "/open/module/web/jpage/dataproxy.jsp":
            return Response(200, self.dataproxy(query).encode(), "text/xml; charset=utf-8")
        with self.lock:
            body = self.documents.get(path)
        if body is None:
            return Response(404, b"<html><body>not found</body></html>")
        return Response(200, body.encode())

    def dataproxy(self, query: str) -> str:
        """Hanweb's answer: records startrecord..endrecord, totalpage in pages of perpage."""
        q = {k: v[0] for k, v in parse_qs(query).items()}
        start = int(q.get("startrecord", "1"))
        end = int(q.get("endrecord", str(start + 44)))
        perpage = int(q.get("perpage", "15"))
        rows = self.hanweb[start - 1 : end]
        records = "".join(
            f'<record><![CDATA[\n<li><a href="{p}" title="{html.escape(t)}" target="_blank">{html.escape(t)}</a>'
            f"<span>{d}</span></li>\n]]></record>\n"
            for p, t, d in rows
        )
        total = len(self.hanweb)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<datastore>\n'
            f'<nextgroup><![CDATA[<a href="/open/module/web/jpage/dataproxy.jsp?page=1&webid=1&columnid=1229"></a>]]></nextgroup>\n'
            f"<recordset>\n{records}</recordset>\n"
            f"<totalrecord>{total}</totalrecord>\n<totalpage>{-(-total // perpage)}</totalpage>\n</datastore>\n"
        )

    # -- the vendors -----------------------------------------------------------------------------

    def _jiasule(self, cookies: dict[str, str]) -> Response | None:
        jsluid = cookies.get("__jsluid_s", "")
        clearance = cookies.get("__jsl_clearance_s", "")
        with self.lock:
            known = self._jsl.get(jsluid)
            if known is not None and jsluid in self._jsl_ok and clearance == known[2]:
                return None
            if known is None:
                jsluid = secrets.token_hex(16)
                ts = random.randint(1_700_000_000, 1_800_000_000)
                keys = [random.randint(100, 999) for _ in range(5)]
                stage1 = f"{ts}.{sum(keys) % 1000:03d}|-1|" + "".join(base36(k) for k in keys)
                name = self.jiasule_hash or random.choice(HASHES)
                pair = random.choice(JSL_CHARS) + random.choice(JSL_CHARS)
                prefix, suffix = secrets.token_hex(6), f"{ts}|0|"
                final = prefix + pair + suffix
                page = jiasule_stage1(ts, keys)
                self._jsl[jsluid] = (stage1, name, final, page)
                return Response(
                    521,
                    page.encode(),
                    cookies=[f"__jsluid_s={jsluid}; max-age=31536000; path=/; HttpOnly"],
                )
            stage1, name, final, page = known
            if clearance in (stage1, final):
                # Stage 2 (or a final clearance sent before the server marked it: mark it now).
                if clearance == final:
                    self._jsl_ok.add(jsluid)
                    return None
                prefix, suffix = final[:12], final[14:]
                return Response(521, jiasule_stage2(name, prefix, suffix, _hash(name, final)).encode())
            # No clearance, or a wrong one: the visitor's stage-1 page again.
            return Response(521, page.encode())

    def _rivers(self, cookies: dict[str, str], ua: str) -> Response | None:
        s = cookies.get(RIVERS_PREFIX + "S", "")
        t = cookies.get(RIVERS_PREFIX + "T", "")
        with self.lock:
            if s in self._rs and t == rivers_clearance(s, ua):
                self._rs_ok.add((s, ua))
                return None
            if s not in self._rs:
                s = secrets.token_urlsafe(24)
                self._rs.add(s)
                new = [f"{RIVERS_PREFIX}S={s}; path=/; HttpOnly"]
            else:
                new = []
        content, nsd, cd = rivers_values(s)
        page = rivers_page(content, nsd, cd)
        status = self.rivers_status
        if status == 200:
            page = page.replace("<body></body>", "<body><title></title></body>")
        if not new:
            # The page must be able to name S to compute T: a real Rivers page sends S again.
            new = [f"{RIVERS_PREFIX}S={s}; path=/; HttpOnly"]
        return Response(status, page.encode(), cookies=new)

    def _aliyun(self, cookies: dict[str, str]) -> Response | None:
        tc = cookies.get("acw_tc", "")
        sc = cookies.get("acw_sc__v2", "")
        with self.lock:
            arg1 = self._acw.get(tc)
            if arg1 is not None and sc == acw_clearance(arg1):
                self._acw_ok.add(tc)
                return None
            if arg1 is None:
                tc = secrets.token_hex(20)
                arg1 = secrets.token_hex(20).upper()
                self._acw[tc] = arg1
        return Response(
            200,
            aliyun_page(arg1).encode(),
            cookies=[f"acw_tc={tc}; path=/; HttpOnly; Max-Age=1800"],
        )


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def _obfuscate(text: str) -> str:
    """('_')+('_')+('j')+… as 加速乐 writes the cookie name (so the name is not in the page)."""
    return "+".join(f"('{ch}')" for ch in text)


def jiasule_stage1(ts: int, keys: list[int]) -> str:
    script = (
        f"var _t={ts},_k=[{','.join(map(str, keys))}];"
        "var _s=0;for(var i=0;i<_k.length;i++){_s+=_k[i]}"
        "var _v=_t+'.'+('00'+(_s%1000)).slice(-3)+'|-1|'+_k.map(function(x){return x.toString(36)}).join('');"
        f"document.cookie={_obfuscate('__jsl_clear')}+'ance_s='+_v+';max-age=3600;path=/';"
        "location.href=location.pathname+location.search"
    )
    return f"<html><body><script>{script}</script></body></html>"


def jiasule_stage2(name: str, prefix: str, suffix: str, ct: str) -> str:
    params = {
        "bts": [prefix, suffix],
        "chars": JSL_CHARS,
        "ct": ct,
        "ha": name,
        "is": True,
        "tn": "__jsl_clearance_s",
        "vt": "3600",
        "wt": "150",
    }
    script = (
        _JS_HASH
        + r"""
function go(p){var c=p.chars,n=c.length,cands=[];
for(var i=0;i<n;i++)for(var j=0;j<n;j++)cands.push(p.bts[0]+c[i]+c[j]+p.bts[1]);
var k=0;(function next(){if(k>=cands.length)return;var v=cands[k++];
digest(p.ha,v).then(function(h){if(h===p.ct){setTimeout(function(){
document.cookie=p.tn+'='+v+';max-age='+p.vt+';path=/';location.href=location.pathname+location.search},
parseInt(p.wt))}else{next()}})})()}
"""
        + f"go({json.dumps(params)})"
    )
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><script>{script}</script></body></html>"


def rivers_values(s: str) -> tuple[str, int, str]:
    seed = hashlib.sha256(s.encode()).hexdigest()
    return seed[:48], int(seed[48:54], 16) % 100000, hashlib.md5(seed.encode()).hexdigest() * 2


def rivers_clearance(s: str, ua: str) -> str:
    content, nsd, cd = rivers_values(s)
    return fnv1a(f"{content}|{ua}|{nsd}|{cd}") + fnv1a(f"{cd}|{nsd}")


def rivers_page(content: str, nsd: int, cd: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head>\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
        f'<meta id="9DhefwqGPrzGxEp9hPaoag" content="{content}" r=\'m\'>\n'
        f"<script type=\"text/javascript\" r='m'>$_ts=window['$_ts'];if(!$_ts)$_ts={{}};$_ts.nsd={nsd};"
        f'$_ts.cd="{cd}";if($_ts.lcd)$_ts.lcd();</script>\n'
        '<script type="text/javascript" charset="utf-8" src="/rs-lib/4QbVtADbnLVIc/d.FxJzG50F.dfe1675.js" r=\'m\'></script>\n'
        "</head><body></body></html>"
        "<script type=\"text/javascript\" r='m'>_$rs_trigger();</script>"
    )


# The external script: computes <P>T from the meta content, $_ts and the user agent, and reloads.
RIVERS_LIB = (
    r"""
function _$fnv(s){var h=0x811c9dc5;for(var i=0;i<s.length;i++){h^=s.charCodeAt(i);h=Math.imul(h,0x01000193)>>>0}
return ('0000000'+h.toString(16)).slice(-8)}
function _$rs_trigger(){var m=document.querySelector("meta[r='m']");if(!m||!window.$_ts)return;
var t=_$fnv(m.content+'|'+navigator.userAgent+'|'+$_ts.nsd+'|'+$_ts.cd)+_$fnv($_ts.cd+'|'+$_ts.nsd);
document.cookie='"""
    + RIVERS_PREFIX
    + r"""T='+t+'; path=/';location.replace(location.href)}
"""
)


def aliyun_page(arg1: str) -> str:
    pos = ",".join(f"0x{p:x}" for p in ACW_POS)
    script = (
        f"var arg1='{arg1}';"
        f"var _0x4b=[{pos}],_0x4e='{ACW_MASK}';"
        "String.prototype.unsbox=function(){var a=this,o=[];for(var i=0;i<a.length;i++){"
        "for(var j=0;j<_0x4b.length;j++){if(_0x4b[j]==i+1){o[j]=a[i]}}}return o.join('')};"
        "String.prototype.hexXor=function(k){var r='';for(var i=0;i<this.length&&i<k.length;i+=2){"
        "var x=(parseInt(this.slice(i,i+2),16)^parseInt(k.slice(i,i+2),16)).toString(16);"
        "r+=('0'+x).slice(-2)}return r};"
        "var arg2=arg1.unsbox().hexXor(_0x4e);"
        "function setCookie(n,v){var e=new Date();e.setTime(e.getTime()+3600*1000);"
        "document.cookie=n+'='+v+';expires='+e.toGMTString()+';max-age=3600;path=/'}"
        "function reload(x){setCookie('acw_sc__v2',x);document.location.reload()}reload(arg2);"
    )
    return f"<html><script>\n{script}\n</script></html>"


JS_LIST_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>政策文件 - 工业和信息化部</title></head>
<body><div class="header"><a href="/jsl/">首页</a></div>
<div class="column"><h2>政策文件</h2><ul id="list"></ul></div>
<script>
fetch('/jsl/list/data.json',{credentials:'same-origin'}).then(function(r){return r.json()}).then(function(items){
var ul=document.getElementById('list');items.forEach(function(it){var li=document.createElement('li');
var a=document.createElement('a');a.href=it.url;a.textContent=it.title;li.appendChild(a);ul.appendChild(li)})});
</script>
<img src="/jsl/img/banner.png"><script src="http://third-party.example/analytics.js"></script>
</body></html>"""

HANWEB_COLUMN_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>通知公告 省人民政府</title></head>
<body><div class="header">省人民政府门户网站</div><div id="div1229"></div>
<script>
var xhr=new XMLHttpRequest();
xhr.open('GET','/open/module/web/jpage/dataproxy.jsp?startrecord=1&endrecord=45&perpage=15&col=1&appid=1&webid=1&path=%2F&columnid=1229&sourceContentType=1&unitid=5678&webname=%E7%9C%81&permissiontype=0');
xhr.onload=function(){var recs=xhr.responseXML.getElementsByTagName('record'),h='';
for(var i=0;i<recs.length&&i<15;i++){h+=recs[i].textContent}document.getElementById('div1229').innerHTML='<ul>'+h+'</ul>'};
xhr.send();
</script></body></html>"""
