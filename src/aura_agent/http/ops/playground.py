"""`GET /playground`: a one-page browser client for trying the API, served by the app itself.

The page is plain HTML, CSS and JavaScript modules shipped as package data (no build step, no
CDN), so it works offline and in the wheel. It holds no secret: the user types the API key,
which the page keeps in `sessionStorage` and sends as `x-api-key` like any other client. The
only thing it learns from the server without a key is `GET /playground/config`: route names
and the default route, which a `POST /chat` with an unknown model reveals anyway.

Every response carries a strict Content-Security-Policy (no inline script or style, requests
to this origin only, no framing) as a second line of defence behind the page's own rule of
never turning model text into HTML.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response

from aura_agent import __version__
from aura_agent.config import Settings
from aura_agent.http.problems import RequestProblem

_ASSET_TYPES: Final = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The files change with the package version; revalidating costs little on loopback.
    "Cache-Control": "no-cache",
}


class PlaygroundConfig(msgspec.Struct, kw_only=True, frozen=True):
    """What the page needs before the user has typed a key: nothing secret."""

    models: list[str]
    default_model: str
    version: str


@cache
def _files() -> dict[str, bytes]:
    """The page's files by name, read once: they are small and immutable while running."""
    folder = resources.files("aura_agent.http.ops").joinpath("playground_files")
    return {entry.name: entry.read_bytes() for entry in folder.iterdir() if entry.is_file()}


def _asset(name: str) -> tuple[bytes, str]:
    """An asset by exact file name; anything else (paths, other types) is a 404."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    media_type = _ASSET_TYPES.get(suffix)
    content = _files().get(name)
    if media_type is None or content is None:
        raise RequestProblem("no such playground file", status_code=404)
    return content, media_type


class PlaygroundController(Controller):
    """The page, its assets and its key-free configuration; registered only when enabled."""

    path = "/playground"
    include_in_schema = False

    @get("/", summary="The browser playground")
    async def page(self) -> Response[bytes]:
        """The HTML shell; everything dynamic happens in app.js."""
        return Response(
            _files()["index.html"],
            media_type="text/html",
            headers=SECURITY_HEADERS,
        )

    @get("/config", summary="Route names for the playground's model picker")
    async def config(self, settings: NamedDependency[Settings]) -> Response[PlaygroundConfig]:
        """Route names only (what a request may send as `model`): never a key or a URL."""
        routes = settings.routes
        body = PlaygroundConfig(
            models=list(routes.names), default_model=routes.default, version=__version__
        )
        return Response(body, headers=SECURITY_HEADERS)

    @get("/assets/{name:str}", summary="A playground script or stylesheet")
    async def asset(self, name: FromPath[str]) -> Response[bytes]:
        """Serves only files of the packaged folder, by exact name, with their real type."""
        content, media_type = _asset(name)
        return Response(content, media_type=media_type, headers=SECURITY_HEADERS)
