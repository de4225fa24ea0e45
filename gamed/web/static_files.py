"""/static/: the stylesheet and scripts, read once from the package and served from memory."""

from __future__ import annotations

import hashlib
from importlib import resources as package_files

from twisted.web import resource

TYPES = {".css": b"text/css; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
         ".png": b"image/png", ".svg": b"image/svg+xml"}


class StaticFiles(resource.Resource):
    isLeaf = True

    def __init__(self, package: str = "gamed.web", folder: str = "static"):
        super().__init__()
        self.files: dict = {}
        for entry in package_files.files(package).joinpath(folder).iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in TYPES:
                body = entry.read_bytes()
                etag = b'"%s"' % hashlib.sha256(body).hexdigest()[:16].encode()
                self.files[entry.name.encode()] = (TYPES[suffix], body, etag)

    def render_GET(self, request):
        found = self.files.get(b"/".join(request.postpath))
        if found is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"no such file\n"
        kind, body, etag = found
        request.setHeader(b"content-type", kind)
        request.setHeader(b"cache-control", b"public, max-age=300")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"etag", etag)
        if request.getHeader(b"if-none-match") == etag.decode():
            request.setResponseCode(304)
            return b""
        return body
