"""Run the real `aura-agent serve` console script as a subprocess on loopback, for e2e tests.

Each server runs in its own empty directory (so no `.env` is picked up) with only a few
variables inherited from the test process, and logs to `<workdir>/server.log`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).with_name("aura-agent"))
_INHERITED = {"PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR"}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(**values: str) -> dict[str, str]:
    """A minimal environment plus `values`: the developer's own settings must not leak in."""
    env = {name: value for name, value in os.environ.items() if name in _INHERITED}
    env.update({"LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}, **values)
    return env


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A started server: where to reach it, its process, and its log file."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (a graceful shutdown), then SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def spawn_server(workdir: Path, **env: str) -> ServerProcess:
    """Start `aura-agent serve` in `workdir` on a free port; it is not ready yet."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLI, "serve", "--port", str(port)],
            cwd=workdir,
            env=environment(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(f"http://127.0.0.1:{port}", process, log_path)


@asynccontextmanager
async def running_server(workdir: Path, **env: str) -> AsyncIterator[ServerProcess]:
    """Start `aura-agent serve` in `workdir`, wait until `/health` answers 200, stop it after."""
    server = spawn_server(workdir, **env)
    process, log_path = server.process, server.log_path
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for _ in range(200):
                if process.poll() is not None:
                    break
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("server did not become healthy:\n" + log_path.read_text())
        assert process.poll() is None, log_path.read_text()
        yield server
    finally:
        server.stop()
