"""Serve the digits web app (this folder) on http://127.0.0.1:8000/ until Ctrl-C.

Any static file server does the same (`python -m http.server -d examples/webapp 8000`); the
page then calls Clipper's query API itself, which must allow this page's origin:
`CLIPPER_CORS_ALLOWED_ORIGINS=http://127.0.0.1:8000 clipper start`.
"""

from __future__ import annotations

import argparse
import functools
import http.server
from pathlib import Path

HERE = Path(__file__).resolve().parent


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves this folder without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    handler = functools.partial(QuietHandler, directory=str(HERE))
    with http.server.ThreadingHTTPServer((args.host, args.port), handler) as server:
        print(f"Serving the digits web app at http://{args.host}:{args.port}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
