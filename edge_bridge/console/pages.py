"""The console's HTML pages: one shell per view, filled in by ``static/console.js`` from the
JSON API and the live event stream (no template engine, no CDN: everything ships in
``edge_bridge/console/static``)."""

from __future__ import annotations

from html import escape

__all__ = ["PAGES", "page"]

PAGES = {
    "overview": "Plant overview",
    "machine": "Machine",
    "rollout": "Rollout",
    "audit": "Audit log",
    "runs": "Runs",
    "login": "Sign in",
}
"""View name → title."""

_NAV = (("/", "Overview"), ("/rollout", "Rollout"), ("/audit", "Audit"), ("/runs", "Runs"))


def page(view: str, **data: str) -> str:
    """The HTML shell of ``view`` (a key of :data:`PAGES`); ``data`` becomes ``data-*``
    attributes of ``<body>`` (e.g. the machine's name)."""
    title = PAGES[view]
    attributes = " ".join(f'data-{escape(k)}="{escape(v)}"' for k, v in data.items())
    nav = (
        "" if view == "login" else "".join(f'<a href="{href}">{label}</a>' for href, label in _NAV)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · twinfactory console</title>
<link rel="stylesheet" href="/static/console.css">
</head>
<body data-page="{escape(view)}" {attributes}>
<header><span class="brand">twinfactory console</span><nav>{nav}</nav>
<span id="who"></span><button id="logout" hidden>Sign out</button></header>
<div id="health" class="health unknown">connecting…</div>
<main id="main"><h1>{escape(title)}</h1><div id="content"></div></main>
<div id="tooltip" hidden></div>
<script src="/static/charts.js"></script>
<script src="/static/console.js"></script>
</body></html>
"""
