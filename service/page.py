"""GET / and GET /static/{name}: the drawing page, served from the files in ``service/static/``.

The files are read once at start-up (they ship as package data). Every response carries a strict
Content-Security-Policy (nothing but this origin; no inline script or style) and a strong ETag.
The page itself is revalidated on each visit (``no-cache``: a new deployment shows at once, and an
unchanged page costs a 304); its assets are linked with their content hash (``?v=``), so a browser
keeps those for a year without asking again.
"""
from __future__ import annotations

import hashlib
from importlib import resources

import falcon

TYPES = {
    "index.html": "text/html; charset=utf-8",
    "pad.js": "text/javascript; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

# 'self' only: the page loads nothing from another origin. img-src blob: shows the chosen photo and
# the 28x28 image from /predict?explain=1 (decoded into a Blob by the script, so no data: URLs).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"


class _File:
    def __init__(self, data: bytes, content_type: str):
        self.data, self.content_type = data, content_type
        self.hash = hashlib.sha256(data).hexdigest()[:16]
        self.etag = f'"{self.hash}"'


def load(package: str = "service") -> dict:
    """{name: _File} for every file in TYPES; index.html links each asset with ``?v=<its hash>``."""
    folder = resources.files(package) / "static"
    files = {name: _File(folder.joinpath(name).read_bytes(), ctype) for name, ctype in TYPES.items()}
    html = files["index.html"].data.decode()
    for name, f in files.items():
        if name != "index.html":
            html = html.replace(f'"/static/{name}"', f'"/static/{name}?v={f.hash}"')
    files["index.html"] = _File(html.encode(), TYPES["index.html"])
    return files


class StaticFile:
    """GET/HEAD for one file, or for ``/static/{name}``: ETag, If-None-Match -> 304, cache policy."""

    def __init__(self, files: dict, name: str | None = None):
        self.files, self.name = files, name

    def on_get(self, req, resp, name: str | None = None):
        f = self.files.get(self.name or name)
        if f is None or (self.name is None and name == "index.html"):
            raise falcon.HTTPNotFound(title="Not found", description=f"no static file {name!r}")
        resp.set_headers(HEADERS)
        resp.etag = f.etag
        # A hashed link (the page's own) never changes; anything else is checked again each time.
        resp.cache_control = [IMMUTABLE if self.name is None and req.get_param("v") == f.hash else REVALIDATE]
        if any(tag == "*" or tag == f.hash for tag in (req.if_none_match or [])):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = f.content_type
        resp.data = f.data

    on_head = on_get


def add_routes(app: falcon.App) -> None:
    """Route ``/`` (the page) and ``/static/{name}`` (its script, style sheet and icon)."""
    files = load()
    app.add_route("/", StaticFile(files, "index.html"))
    app.add_route("/static/{name}", StaticFile(files))
