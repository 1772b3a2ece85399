"""The web UI (``durable ui``, ``durable server --ui``): executions, one execution's timeline
and time travel, operations, schedules and patches, server-rendered.

aiohttp serves Jinja2 templates (``templates/``) and static files (``static/``: a vendored
htmx, the styles and a few lines of script), all package data: no JavaScript build step, no
CDN, it works offline. Every page works without JavaScript; htmx adds live updates of an open
execution's page and the time slider's fragments. ``_security`` says who may see what.
"""

from __future__ import annotations

from ._app import UiServer, make_app
from ._security import parse_tokens

__all__ = ["UiServer", "make_app", "parse_tokens"]
