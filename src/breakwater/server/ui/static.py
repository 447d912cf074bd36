"""The dashboard's static files, shipped in the package and served from memory.

Only the files named in ``FILES`` are served (no path from the request ever reaches the file
system). They are read on first use and kept: a handful of small files.

uPlot (MIT, https://github.com/leeoniya/uPlot) is vendored from the npm registry:
``uplot@1.6.32``, ``dist/uPlot.iife.min.js`` and ``dist/uPlot.min.css`` unchanged, its licence
as ``uPlot.LICENSE`` (npm integrity ``sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgk
My+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==``). To update it: ``npm pack uplot@<version>``, copy the
same three files, change the version here and in ``FILES`` (the URL carries it, so browsers
never keep an old copy).
"""

from __future__ import annotations

from importlib import resources

from breakwater.server.asgi import Send
from breakwater.server.ui.web import SECURITY_HEADERS

UPLOT_VERSION = "1.6.32"

#: URL name -> (file in static/, content type)
FILES: dict[str, tuple[str, bytes]] = {
    f"uPlot-{UPLOT_VERSION}.min.js": ("uPlot.iife.min.js", b"text/javascript; charset=utf-8"),
    f"uPlot-{UPLOT_VERSION}.min.css": ("uPlot.min.css", b"text/css; charset=utf-8"),
    "uPlot.LICENSE.txt": ("uPlot.LICENSE", b"text/plain; charset=utf-8"),
    "dashboard.css": ("dashboard.css", b"text/css; charset=utf-8"),
    "dashboard.js": ("dashboard.js", b"text/javascript; charset=utf-8"),
}


class StaticFiles:
    """``GET /ui/static/<name>`` for the names in ``FILES``."""

    def __init__(self) -> None:
        self._cache: dict[str, bytes] = {}

    def body(self, name: str) -> bytes | None:
        entry = FILES.get(name)
        if entry is None:
            return None
        data = self._cache.get(name)
        if data is None:
            data = (resources.files("breakwater.server.ui") / "static" / entry[0]).read_bytes()
            self._cache[name] = data
        return data

    async def send(self, name: str, send: Send) -> bool:
        """Send the file; ``False`` (nothing sent) when there is no such file."""
        data = self.body(name)
        if data is None:
            return False
        # the versioned names never change; the dashboard's own files may change with a release
        cache = b"public, max-age=31536000, immutable" if "-" in name else b"no-cache"
        headers = [(b"content-type", FILES[name][1]), (b"cache-control", cache), *SECURITY_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})
        return True
