"""The layers' import rules, checked on the source: a forbidden import fails here, not in review.

    domain       imports nothing of the package outside itself
    application  imports the domain only
    adapters     implement the ports: the domain and their own kind, never the http layer,
                 the application, the configuration or the composition root
    adapters.http_client
                 HTTP plumbing under the LLM adapters: no other adapter, nor the domain
    http         never an adapter, the container or the composition root
    http wings   each API (`http.chat`, `http.openai`) never imports another's wing, and the
                 shared plumbing (`http.sse`, `http.ops`) imports neither

Every import counts, also one inside a function (the container imports some adapters lazily).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "aura_agent"
COMPOSITION_ROOT = ("aura_agent.container", "aura_agent.app")

# (layer, what it may not import); a module is in a layer when its name starts with the layer.
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aura_agent.domain", ("aura_agent",)),
    ("aura_agent.application", ("aura_agent",)),
    (
        "aura_agent.adapters",
        (
            "aura_agent.http",
            "aura_agent.application",
            "aura_agent.config",
            *COMPOSITION_ROOT,
        ),
    ),
    ("aura_agent.http", ("aura_agent.adapters", *COMPOSITION_ROOT)),
    ("aura_agent.adapters.http_client", ("aura_agent.adapters", "aura_agent.domain")),
    ("aura_agent.http.chat", ("aura_agent.http.openai", "aura_agent.http.ops")),
    ("aura_agent.http.openai", ("aura_agent.http.chat", "aura_agent.http.ops")),
    ("aura_agent.http.sse", ("aura_agent.http.chat", "aura_agent.http.openai")),
    ("aura_agent.http.ops", ("aura_agent.http.chat", "aura_agent.http.openai")),
)
# What each layer may import although the rule above forbids its prefix.
ALLOWED: dict[str, tuple[str, ...]] = {
    "aura_agent.domain": ("aura_agent.domain",),
    "aura_agent.application": ("aura_agent.domain", "aura_agent.application"),
    "aura_agent.adapters.http_client": ("aura_agent.adapters.http_client",),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool) -> Iterator[str]:
    """Every module `source` imports, relative imports resolved against `module`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from aura_agent import container` imports the module `aura_agent.container`
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, imports: Iterable[str]) -> list[str]:
    """The imports of `module` that its layers' rules forbid (a module may be in several)."""
    names = list(imports)  # read once per layer
    found = []
    for layer, forbidden in RULES:
        if not _within(module, layer):
            continue
        allowed = ALLOWED.get(layer, ())
        for name in names:
            if any(_within(name, prefix) for prefix in allowed):
                continue
            if any(_within(name, prefix) for prefix in forbidden):
                found.append(f"{module} imports {name}")
    return found


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", all_modules(), ids=lambda path: module_name(path))
def test_the_layers_keep_their_import_rules(path: Path) -> None:
    module = module_name(path)
    imports = list(
        imported_modules(path.read_text(), module, is_package=path.name == "__init__.py")
    )
    assert violations(module, imports) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("aura_agent.domain.models", "from aura_agent.config import Settings", 2),
        ("aura_agent.application.chat", "import aura_agent.http.sse", 1),
        ("aura_agent.http.chat.routes", "def f():\n    from aura_agent import container", 1),
        ("aura_agent.http.openai.routes", "from ...adapters.llm import demo", 2),
        ("aura_agent.adapters.llm.x", "from aura_agent.config.providers import PROVIDERS", 2),
        ("aura_agent.adapters.http_client.x", "from aura_agent.adapters.llm import sse", 2),
        ("aura_agent.adapters.http_client.x", "from ..llm.errors import ErrorMapper", 2),
        ("aura_agent.adapters.http_client.x", "import aura_agent.domain.models", 1),
        ("aura_agent.adapters.llm.x", "from aura_agent.adapters.http_client import client", 0),
        ("aura_agent.adapters.http_client.x", "from .pool import ConnectionPool", 0),
        ("aura_agent.application.chat", "from aura_agent.domain.ports import ChatModel", 0),
        ("aura_agent.http.chat.routes", "from aura_agent.application import chat_service", 0),
        ("aura_agent.http.chat.stream", "from aura_agent.http.openai.chunks import X", 2),
        ("aura_agent.http.openai.routes", "from ..sse import response", 0),
        ("aura_agent.http.sse.response", "from aura_agent.http.chat import stream", 2),
    ],
)
def test_the_checker_sees_a_forbidden_import(module: str, source: str, expected: int) -> None:
    imports = imported_modules(source, module, is_package=False)
    assert len(violations(module, imports)) == expected
