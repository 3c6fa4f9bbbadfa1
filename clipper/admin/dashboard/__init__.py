"""The web dashboard: static files served by the admin API at `/`, and its metrics summary.

The front end (`static/`) is plain HTML, CSS and JavaScript, shipped in the package: no build
step, no network access. It calls the admin API with the admin token, if the server has one.
`summary.py` builds the metrics summary it charts; `history.py` keeps the last minutes of
summaries, so its charts are full when the page opens.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

__all__ = ["STATIC_DIR", "dashboard_url"]

STATIC_DIR = Path(__file__).parent / "static"
"""index.html, the scripts and the style sheet of the dashboard."""


def dashboard_url(
    host: str, admin_port: int, token: str | None = None, scheme: str = "http"
) -> str:
    """The dashboard's address; with `token`, in the URL fragment, which browsers never send
    to the server (the page stores it for the session and removes it from the address bar)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{host}:{admin_port}/"
    return f"{url}#token={quote(token, safe='')}" if token else url
