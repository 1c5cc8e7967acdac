"""The policy graph: which documents a document references (cites, implements, amends, repeals), and
which documents reference it. (Being written: see the lead's next commit.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def document_graph(session: Session, document_id: int) -> dict[str, Any]:
    """What the document page shows of the graph (see templates/_policy_graph.html)."""
    return {"cites": [], "cited_by": [], "implementations": [], "repealed_by": [], "amended_by": []}
