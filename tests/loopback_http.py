"""A loopback HTTP/1.1 server whose every answer a test writes by hand, and a self-signed cert.

Shared by the asyncio transport's own tests and the transport conformance suite.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.support import read_http_request

__all__ = ["OK_5", "Handler", "Server", "answer", "self_signed_cert"]

# (reader, writer, index of the request on its connection) -> keep serving this connection?
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[bool]]

OK_5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


class Server:
    """A loopback HTTP/1.1 server: reads each request, then lets `handler` answer it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.requests: list[bytes] = []
        self.hung_up = asyncio.Event()  # a client closed a connection
        self._server: asyncio.Server | None = None
        self.ssl: ssl.SSLContext | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        index = 0
        try:
            while True:
                try:
                    request = await read_http_request(reader)
                except asyncio.IncompleteReadError:
                    self.hung_up.set()
                    return
                self.requests.append(request)
                if not await self.handler(reader, writer, index):
                    return
                index += 1
        except (ConnectionError, ssl.SSLError):
            self.hung_up.set()
        finally:
            self.open -= 1
            writer.close()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if ssl_context else "http"
        return f"{scheme}://127.0.0.1:{port}/v1/chat"

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def answer(data: bytes, *, keep: bool = True) -> Handler:
    """A handler writing `data` to every request; `keep=False` closes the connection after it."""

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter, __: int) -> bool:
        writer.write(data)
        await writer.drain()
        return keep

    return handler


def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, made by the openssl CLI (skips the test without one)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
