"""The `aura-agent` command: `serve` runs the HTTP server the README describes, `chat` talks to a
running one from the terminal, and `check` validates the configuration and pings every
dependency."""

from __future__ import annotations

import argparse
import os
import sys

from aura_agent import __version__
from aura_agent.app import development_key_banner, with_development_key
from aura_agent.config import ConfigError, load_settings


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"aura-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    settings, generated = with_development_key(settings)
    if generated and settings.internal_api_key:
        # Workers build their own app from the environment: hand them all the same key.
        os.environ["INTERNAL_API_KEY"] = settings.internal_api_key
        print(development_key_banner(settings), flush=True)
    import uvicorn

    from aura_agent.server import BACKSTOP_SECONDS, HeadLimitedProtocol, run

    config = uvicorn.Config(
        "aura_agent.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        workers=args.workers,
        loop="uvloop",
        # httptools has no limit on a request's head: this protocol answers 431 beyond it.
        http=HeadLimitedProtocol,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        log_config=None,
        access_log=False,
        server_header=False,
        # The drain (SHUTDOWN_GRACE_SECONDS) runs first; this only bounds its last writes.
        timeout_graceful_shutdown=BACKSTOP_SECONDS,
    )
    return run(config)


def _chat(args: argparse.Namespace) -> int:
    from aura_agent.chat_client import ChatClient, default_api_key, run_chat

    key = args.key or default_api_key()
    if not key:
        print(
            "aura-agent chat: no API key: pass --key or set INTERNAL_API_KEY "
            "(a development server prints the key it generated when it starts)",
            file=sys.stderr,
        )
        return 2
    client = ChatClient(args.url, key, model=args.model, session_id=args.session)
    try:
        return run_chat(client)
    finally:
        client.close()


def _check(_: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"aura-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    from aura_agent.health_check import report
    from aura_agent.logging import configure_logging

    # Adapters may log while probing; keep it to warnings, on stderr, with secrets redacted.
    configure_logging(
        level="WARNING",
        log_format=settings.log_format,
        secrets=(*settings.api_key_table().secrets, *settings.routes.secrets),
    )
    return report(settings, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="aura-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"aura-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default=None, help="bind address (default: HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default: PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "1")),
        help="worker processes (default: WEB_CONCURRENCY or 1)",
    )
    serve.set_defaults(handler=_serve)

    chat = commands.add_parser(
        "chat",
        help="chat with a running server from the terminal",
        description="Reads messages line by line and streams the replies. /new starts a new "
        "conversation, /quit or Ctrl-D exits, Ctrl-C stops a reply.",
    )
    chat.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    chat.add_argument(
        "--key", default=None, help="API key (default: INTERNAL_API_KEY from the environment/.env)"
    )
    chat.add_argument("--model", default=None, help="route to use (default: the server's)")
    chat.add_argument("--session", default=None, help="continue this session id")
    chat.set_defaults(handler=_chat)

    check = commands.add_parser(
        "check",
        help="validate the configuration and ping every model route and the session store",
    )
    check.set_defaults(handler=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
