"""The analyst web app: server-rendered pages, feeds, exports and a JSON API over the version store."""

from policywatch.web.app import create_app

__all__ = ["create_app"]
