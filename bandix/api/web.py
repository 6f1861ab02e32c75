"""The dashboard's files (bandix/web), served at / by the daemon itself.

A fixed set of files read once, each with an ETag, so a browser revalidates
with a 304 instead of downloading again; no path from the request ever
reaches the file system.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import falcon

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
FILES = ("index.html", "app.js", "charts.js", "app.css")


class WebResource:
    def __init__(self) -> None:
        root = resources.files("bandix").joinpath("web")
        self._files: dict[str, tuple[bytes, str, str]] = {}
        for name in FILES:
            body = root.joinpath(name).read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            self._files[name] = (body, TYPES[name[name.rindex("."):]], etag)

    def on_get(self, req: falcon.Request, resp: falcon.Response, filename: str = "index.html") -> None:
        found = self._files.get(filename)
        if found is None:
            raise falcon.HTTPNotFound(description=f"no such file: /{filename}")
        body, content_type, etag = found
        resp.set_header("ETag", etag)
        resp.set_header("Cache-Control", "no-cache")  # revalidate: a new bandix brings new files
        resp.set_header("X-Content-Type-Options", "nosniff")
        if req.get_header("If-None-Match") == etag:
            resp.status = falcon.HTTP_304
            return
        resp.content_type = content_type
        resp.data = body
