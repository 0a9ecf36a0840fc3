"""Start and stop throwaway redis-server processes on loopback for the integration tests.

Plain synchronous helpers (subprocess + sockets) so fixtures of any scope can use them; async
tests call the slow ones through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 6379
CLUSTER_BUS_OFFSET = 10_000  # Redis Cluster nodes also listen on port + 10000


def redis_server_binary() -> str | None:
    """Path of `redis-server`, or None when it is not installed."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def redis_cli_binary() -> str | None:
    """Path of `redis-cli`, or None when it is not installed."""
    return shutil.which("redis-cli") or (
        "/usr/bin/redis-cli" if Path("/usr/bin/redis-cli").exists() else None
    )


def command(port: int, *args: str, timeout: float = 0.5) -> bytes | None:
    """Send one inline command to a Redis on loopback; return the raw reply, None if unreachable."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(" ".join(args).encode() + b"\r\n")
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(65_536)
                if not chunk:
                    break
                reply += chunk
            # Bulk string replies ($len\r\n...\r\n) may need a second read.
            if reply.startswith(b"$"):
                size = int(reply[1 : reply.index(b"\r\n")])
                while size >= 0 and len(reply) < reply.index(b"\r\n") + 2 + size + 2:
                    chunk = sock.recv(65_536)
                    if not chunk:
                        break
                    reply += chunk
            return reply
    except OSError:
        return None


def is_redis_listening(port: int = DEFAULT_PORT) -> bool:
    """True if a Redis answers PING on 127.0.0.1:port."""
    return command(port, "PING") == b"+PONG\r\n"


def _is_answering(port: int) -> bool:
    """True if a Redis replies at all (a password-protected one answers PING with -NOAUTH)."""
    reply = command(port, "PING")
    return reply is not None and reply[:1] in (b"+", b"-")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, cluster: bool = False) -> int:
    """A loopback port nobody listens on; for a cluster node its bus port is free as well."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if not cluster:
            return port
        if port + CLUSTER_BUS_OFFSET <= 65_535 and _port_is_free(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free loopback port found")


class LocalRedisServer:
    """One redis-server subprocess on 127.0.0.1, persisting nothing, that can be killed and
    restarted on the same port (to simulate an outage)."""

    def __init__(self, workdir: Path, port: int | None = None, *extra_args: str) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.port = port if port is not None else free_port()
        self.workdir = workdir
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"redis-{self.port}.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers."""
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.workdir),
            "--logfile", str(self.log_path),
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not _is_answering(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited early; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer in {timeout} s")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill the server at once (SIGKILL: an outage, not a graceful shutdown)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        """Start again on the same port, with an empty dataset."""
        self.stop()
        self.start()


class LocalRedisCluster:
    """A three-primary, no-replica Redis Cluster on loopback, for tests."""

    def __init__(self, workdir: Path, nodes: int = 3) -> None:
        self.workdir = workdir
        self.servers: list[LocalRedisServer] = []
        self.node_count = nodes

    @property
    def url(self) -> str:
        return self.servers[0].url

    def start(self, timeout: float = 20.0) -> None:
        """Start the nodes, join them into a cluster, and wait until every node reports ok."""
        cli = redis_cli_binary()
        if cli is None:
            raise RuntimeError("redis-cli is not installed")
        deadline = time.monotonic() + timeout
        try:
            for _ in range(self.node_count):
                port = free_port(cluster=True)
                server = LocalRedisServer(
                    self.workdir,
                    port,
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", "2000",
                )  # fmt: skip
                self.servers.append(server)
                server.start()
            nodes = [f"{HOST}:{server.port}" for server in self.servers]
            create = subprocess.run(
                [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True,
                timeout=max(1.0, deadline - time.monotonic()),
                check=False,
            )
            if create.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout!r}")
            self.wait_until_ok(max(0.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def wait_until_ok(self, timeout: float = 20.0) -> None:
        """Wait until every node reports `cluster_state:ok`."""
        deadline = time.monotonic() + timeout
        while not all(self._node_ok(server.port) for server in self.servers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not become ok in {timeout:.1f} s")
            time.sleep(0.05)

    @staticmethod
    def _node_ok(port: int) -> bool:
        reply = command(port, "CLUSTER", "INFO")
        return reply is not None and b"cluster_state:ok" in reply

    def stop(self) -> None:
        """Kill every node."""
        for server in self.servers:
            server.stop()
        self.servers.clear()
