"""Compare two documents, not only two versions of one: /compare?a=…&b=… (a document id, a 发文字号
in any bracket form, or a URL) opens the diff of their current versions (or of `a_version` /
`b_version`) with the same sentence and character marks and moved-passage notes as any diff: a
provincial plan against the national plan it implements. /api/compare answers with that diff's JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from crawlers import canonical_url
from policywatch.search import canonical_number, documents_numbered
from policywatch.web.deps import SessionDep
from policywatch.web.links import href
from policywatch.web.pages import render
from policywatch.web.params import checked_id, no_nul
from storage.models import Document, DocumentVersion
from storage.queries import find_document

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["api"])


def resolve_document(session: Session, ref: str) -> Document | None:
    """A document by id, by 发文字号 (the original rather than a repost), or by URL."""
    ref = ref.strip()
    if not ref:
        return None
    if ref.isascii() and ref.isdigit():
        return session.get(Document, checked_id(int(ref), "document"))
    number = canonical_number(ref)
    if number:
        ids = documents_numbered(session, number)
        docs = [d for d in (session.get(Document, i) for i in sorted(ids)) if d is not None]
        docs.sort(key=lambda d: (d.republished_of_id is not None, d.status != "active", d.id))
        if docs:
            return docs[0]
    return find_document(session, ref, canonical_url)


def _version(session: Session, doc: Document | None, version_id: int | None, side: str) -> int:
    if version_id is not None:
        version = session.get(DocumentVersion, checked_id(version_id, "version"))
        if version is None or (doc is not None and version.document_id != doc.id):
            raise HTTPException(status_code=404, detail=f"{side}: no such version of that document")
        return version.id
    if doc is None or doc.current_version_id is None:
        raise HTTPException(status_code=404, detail=f"{side}: no such document (id, 发文字号 or URL)")
    return doc.current_version_id


def _pair(session: Session, a: str, b: str, a_version: int | None, b_version: int | None) -> tuple[int, int]:
    doc_a = resolve_document(session, no_nul(a, "a") or "") if a else None
    doc_b = resolve_document(session, no_nul(b, "b") or "") if b else None
    return _version(session, doc_a, a_version, "a"), _version(session, doc_b, b_version, "b")


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    session: SessionDep,
    a: Annotated[str, Query(description="document id, 发文字号 or URL")] = "",
    b: Annotated[str, Query(description="document id, 发文字号 or URL")] = "",
    a_version: int | None = None,
    b_version: int | None = None,
    mode: Annotated[str, Query(pattern="^(side|inline)$")] = "side",
) -> Response:
    if (a or a_version) and (b or b_version):
        old, new = _pair(session, a, b, a_version, b_version)
        return RedirectResponse(href(request, f"/diff/{old}/{new}", mode=mode), status_code=303)
    chosen: dict[str, Any] = {}
    for side, ref in (("a", a), ("b", b)):
        doc = resolve_document(session, ref) if ref else None
        chosen[side] = {"ref": ref, "title": doc.title if doc else None, "id": doc.id if doc else None}
    return render(request, "compare.html", {"chosen": chosen})


@api_router.get("/compare", summary="The diff of two documents' current versions (redirects to /api/diff)")
def api_compare(
    request: Request,
    session: SessionDep,
    a: Annotated[str, Query(description="document id, 发文字号 or URL")] = "",
    b: Annotated[str, Query(description="document id, 发文字号 or URL")] = "",
    a_version: int | None = None,
    b_version: int | None = None,
) -> Response:
    if not (a or a_version) or not (b or b_version):
        raise HTTPException(status_code=400, detail="a and b: two documents (id, 发文字号 or URL)")
    old, new = _pair(session, a, b, a_version, b_version)
    return RedirectResponse(href(request, f"/api/diff/{old}/{new}"), status_code=307)
