"""Aura Agent: a small, fast backend that streams LLM chat to frontends over Server-Sent Events."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aura-agent")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
