"""Triage marks on changes: important, reviewed, not significant, with a note. (Being written.)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
