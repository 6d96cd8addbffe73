"""Serve the web example, a local tfjs build and one converted model on 127.0.0.1.

    python examples/web/serve.py bazel-bin/examples/mlp_graph [--port 8000]

then open the printed URL. Nothing is fetched from the internet: ``vendor/tf.min.js``
comes from ``tests/js/node_modules`` (``npm ci --prefix tests/js``). The browser test
uses the same server, so what the test checks is what a user sees.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import posixpath
import sys
import threading
import urllib.parse
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
REPO_ROOT = WEB_DIR.parent.parent
TFJS_DIST = REPO_ROOT / "tests" / "js" / "node_modules" / "@tensorflow" / "tfjs" / "dist"


def _inside(root: Path, rel: str) -> Path | None:
    """``root/rel`` if it stays inside ``root``, else None (no ``..`` escapes)."""
    parts = [p for p in posixpath.normpath("/" + rel).split("/") if p]
    candidate = root.joinpath(*parts).resolve()
    if candidate == root.resolve() or root.resolve() in candidate.parents:
        return candidate
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Maps ``/`` to the page, ``/vendor/`` to tfjs' dist and ``/model/`` to the model."""

    def __init__(self, *args, model_dir: Path, **kwargs):
        self._model_dir = model_dir
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def translate_path(self, path: str) -> str:
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        for prefix, root in (("/vendor/", TFJS_DIST), ("/model/", self._model_dir)):
            if path.startswith(prefix):
                target = _inside(root, path[len(prefix) :])
                return str(target) if target else str(root / "__not_found__")
        if path in ("/", "/index.html", "/app.js"):
            return str(WEB_DIR / (path.lstrip("/") or "index.html"))
        return str(WEB_DIR / "__not_found__")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, fmt: str, *args) -> None:  # keep test output quiet
        pass


def start_server(model_dir: Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; returns the server and its base URL."""
    handler = functools.partial(_Handler, model_dir=Path(model_dir).resolve())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="directory holding model.json and its shards")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    model_dir = Path(args.model_dir)
    if not (model_dir / "model.json").is_file():
        parser.error(f"no model.json in {model_dir}")
    if not (TFJS_DIST / "tf.min.js").is_file():
        parser.error(f"{TFJS_DIST / 'tf.min.js'} is missing; run: npm ci --prefix tests/js")
    server, url = start_server(model_dir, args.port)
    print(f"open {url}?model=model/model.json  (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
