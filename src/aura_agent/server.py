"""uvicorn with a graceful drain: on SIGTERM nothing finished is lost and nothing is cut mid-word.

uvicorn's own shutdown stops accepting, waits up to `timeout_graceful_shutdown` and then cancels
whatever still runs: a stream would just stop, with no `event: error` for its client. The
`DrainingServer` runs the drain first:

1. stop accepting connections; idle keep-alive connections close, busy ones close after their
   response;
2. let in-flight streams finish for up to SHUTDOWN_GRACE_SECONDS (their turns are saved);
3. end the rest with `event: error` "the server is shutting down; please retry" (unsaved);
4. uvicorn's shutdown: wait for those last writes (briefly), close the app (lifespan), exit 0.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from aura_agent.http.stream_control import FINAL_WRITE_SECONDS, drain_streams

# After the drain, how long uvicorn waits for the interrupted streams' last writes before it
# cancels what is left (a client that stopped reading).
BACKSTOP_SECONDS = int(FINAL_WRITE_SECONDS) + 3


def _ignore(_: int, __: FrameType | None) -> None:
    """The handler uvicorn 'restores' and re-raises SIGTERM into once it has shut down."""


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose shutdown drains the app's streams first (see the module doc)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await drain_streams()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, except that a SIGTERM shutdown ends the process with status 0.

        uvicorn re-raises the signal it shut down for, so the process would die "killed by
        SIGTERM" after a clean drain; orchestrators and scripts read that as a failure.
        """
        if threading.current_thread() is not threading.main_thread():
            with super().capture_signals():
                yield
            return
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _ignore)
        try:
            with super().capture_signals():
                yield
        finally:
            signal.signal(signal.SIGTERM, previous)


class _DrainingWorker(multiprocess.Process):
    """A `--workers` child process that runs a `DrainingServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(config=self.config)
        return self._server


def run(config: uvicorn.Config) -> int:
    """Serve until SIGTERM/SIGINT; the exit status: 0, or uvicorn's 3 if startup failed."""
    if config.workers > 1:
        # The supervisor builds its workers by this module-level name; each worker drains its
        # own streams when the supervisor passes SIGTERM on.
        multiprocess.Process = _DrainingWorker  # type: ignore[misc]
        multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    server = DrainingServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE
