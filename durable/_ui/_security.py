"""Who may use the web UI, for which tenants, and CSRF protection of its forms.

* Open: bound to loopback (127.0.0.1, ::1, localhost) with no token, every request may act
  for every tenant: only people on this machine reach it.
* Tokens: anywhere else the UI needs at least one token (``durable ui --token``, refused
  otherwise: ``ui_access``). Each token allows every tenant (``TOKEN``) or some
  (``TOKEN:acme,globex``). A request shows one by ``Authorization: Bearer TOKEN`` or by the
  cookie ``/login`` sets (an HMAC of the token under a key made at start: the token itself
  is never stored in the browser). Every handler reads the tenants it may act for from
  ``request["tenants"]`` (None: every tenant) and checks each tenant it touches (``allowed``).
* CSRF: every page sets a random cookie (``SameSite=Strict``); every form carries it as a
  hidden field; a POST whose field differs from the cookie, or whose ``Origin`` is another
  host, is refused (403) before its handler runs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit

from aiohttp import web

from .._scope import Scope, permit
from ..errors import TenantPermissionError, UsageError

__all__ = ["CSRF_COOKIE", "Access", "allowed", "csrf_of", "parse_tokens", "scope_of",
           "ui_access"]

TENANTS: Final = web.RequestKey("tenants", object)  # the request's Scope (None: every tenant)
CSRF: Final = web.RequestKey("csrf", str)  # a new CSRF token the response sets
SESSION_COOKIE: Final = "durable_ui"
CSRF_COOKIE: Final = "durable_csrf"
_PUBLIC: Final = ("/login", "/static/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_tokens(specs: Iterable[str]) -> dict[str, Scope]:
    """``TOKEN`` (every tenant) or ``TOKEN:tenant,tenant`` each; a token's tenants."""
    tokens: dict[str, Scope] = {}
    for spec in specs:
        token, sep, names = spec.partition(":")
        tenants = [t.strip() for t in names.split(",") if t.strip()]
        if len(token) < 16:
            raise UsageError("a UI token is at least 16 characters (make one with: python -c "
                             "'import secrets; print(secrets.token_urlsafe())')")
        if sep and not tenants:
            raise UsageError(f"--token {token[:4]}…: name its tenants after the colon "
                             "(TOKEN:acme,globex), or none for every tenant (TOKEN)")
        tokens[token] = None if not sep or tenants == ["*"] else frozenset(tenants)
    return tokens


def ui_access(host: str, tokens: dict[str, Scope], ceiling: Scope = None) -> Access:
    """The access rules of a UI bound to ``host``: open on loopback without tokens, else
    tokens are required (``UsageError`` when none is given). ``ceiling``: the tenants the
    UI's client may act for (None: every tenant); no token allows more."""
    from durable_server._http import is_loopback

    if not tokens and not is_loopback(host):
        raise UsageError(f"the UI binds to {host}, which is not loopback: give it a token "
                         "(--token TOKEN, or TOKEN:tenant,tenant to allow only those; env "
                         "DURABLE_UI_TOKENS), or bind to 127.0.0.1")
    return Access(tokens, ceiling)


class Access:
    """Tokens and their tenants; no tokens: open (loopback only, see ``ui_access``)."""

    def __init__(self, tokens: dict[str, Scope], ceiling: Scope = None) -> None:
        self._key = secrets.token_bytes(32)
        self.open = not tokens
        self.ceiling = ceiling
        tokens = {t: ceiling if s is None else s if ceiling is None else s & ceiling
                  for t, s in tokens.items()}
        self._tokens = tokens
        self._sessions = {self._sign(t): scope for t, scope in tokens.items()}

    def _sign(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    def scope_of(self, request: web.Request) -> tuple[bool, Scope]:
        """Whether the request may use the UI, and the tenants it may act for."""
        if self.open:
            return True, self.ceiling
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if bearer:
            for token, scope in self._tokens.items():
                if hmac.compare_digest(bearer.encode(), token.encode()):
                    return True, scope
        session = request.cookies.get(SESSION_COOKIE, "")
        for signed, scope in self._sessions.items():
            if hmac.compare_digest(session.encode(), signed.encode()):
                return True, scope
        return False, frozenset()

    def session_for(self, token: str) -> str | None:
        """The cookie that stands for ``token``, if it is one."""
        for known in self._tokens:
            if hmac.compare_digest(token.encode(), known.encode()):
                return self._sign(known)
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate, scope, and check CSRF, before any handler runs."""
        ok, scope = self.scope_of(request)
        public = request.path.startswith(_PUBLIC)
        if not ok and not public:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
            raise web.HTTPUnauthorized(text="log in first (a UI token)")
        request[TENANTS] = scope
        if request.method == "POST":
            await _check_csrf(request)
        response = await handler(request)
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(CSRF_COOKIE, csrf_of(request), httponly=True, samesite="Strict",
                                path="/")
        return response


def csrf_of(request: web.Request) -> str:
    """The request's CSRF token (its cookie's, or a new one that the response will set)."""
    token = request.cookies.get(CSRF_COOKIE) or request.get(CSRF)
    if not token:
        token = request[CSRF] = secrets.token_urlsafe(24)
    return token


async def _check_csrf(request: web.Request) -> None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text=f"a form from {origin} may not post here")
    form = await request.post()
    cookie = request.cookies.get(CSRF_COOKIE, "")
    field = str(form.get("csrf", ""))
    if not cookie or not hmac.compare_digest(cookie.encode(), field.encode()):
        raise web.HTTPForbidden(text="the form's CSRF token does not match: reload the page "
                                "and submit it again")


def scope_of(request: web.Request) -> Scope:
    """The tenants the request may act for (None: every tenant)."""
    scope: Any = request[TENANTS]
    return cast(Scope, scope)


def allowed(request: web.Request, tenant: str) -> str:
    """``tenant`` if the request may act for it; else 403."""
    try:
        return permit(scope_of(request), tenant)
    except TenantPermissionError as exc:
        raise web.HTTPForbidden(text=str(exc)) from None
