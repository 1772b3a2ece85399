"""Jinja2 templates of the UI (``templates/``, shipped as package data), autoescaped."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import jinja2
from aiohttp import web

from ._security import csrf_of, scope_of

__all__ = ["render"]


def _when(ts: float | None) -> str:
    """Epoch seconds as an ISO 8601 local date and time (the date included)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(sep=" ", timespec="seconds")


def _count(n: int, cap: int) -> str:
    return f"{cap:,}+" if n >= cap else f"{n:,}"


_ENV: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("durable._ui", "templates"),
    autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined,
    trim_blocks=True, lstrip_blocks=True)
_FILTERS: Final[Any] = _ENV.filters  # (jinja2's stubs type it by its own filters)
_FILTERS["when"] = _when
_FILTERS["count"] = _count


def render(request: web.Request, name: str, context: dict[str, Any], *,
           status: int = 200) -> web.Response:
    """Template ``name`` with ``context``, the request's CSRF token and tenants."""
    scope = scope_of(request)
    html = _ENV.get_template(name).render(
        **context, csrf=csrf_of(request), path=request.path,
        tenants=None if scope is None else sorted(scope), query=request.query)
    return web.Response(text=html, content_type="text/html", status=status)
