"""`aura-agent check`: validate the configuration and ping every dependency, before deploying.

`/ready` answers for a running instance and probes only the default route; this runs without a
server and probes *every* route (a broken fallback otherwise goes unnoticed until the day it is
needed) and the session store, printing one row per component. Adapters come from the same
container and `build_chat_model` the app uses, so what passes here is what the app will run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

from aura_agent.config import Settings
from aura_agent.config.providers import provider_spec
from aura_agent.config.routes import Route
from aura_agent.container import Container, build_chat_model, resolved
from aura_agent.domain.errors import AuraError

CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One row of the report."""

    component: str
    ok: bool
    detail: str


def _where(url: str) -> str:
    """An endpoint without credentials or query: enough for an operator to spot a typo."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unparsable URL"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _reason(exc: BaseException) -> str:
    """The domain error's user-facing text, plus the low-level cause an operator needs."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({str(cause).strip()})"
    return text


async def _probe(
    component: str, check: Awaitable[None], passed: str, failed_suffix: str, seconds: float
) -> CheckResult:
    try:
        await asyncio.wait_for(check, seconds)
    except TimeoutError:
        return CheckResult(component, False, f"no answer within {seconds:g} s{failed_suffix}")
    except AuraError as exc:
        return CheckResult(component, False, _reason(exc) + failed_suffix)
    except Exception as exc:  # an adapter bug is still a failed row, not a traceback
        return CheckResult(component, False, f"unexpected {type(exc).__name__}: {exc}")
    return CheckResult(component, True, passed)


def _route_probe(
    route: Route, settings: Settings, client: Any, seconds: float
) -> Awaitable[CheckResult]:
    model = build_chat_model(route, settings, client)
    if provider_spec(route.provider).family == "demo":
        described = "offline demo model (canned replies)"
    else:
        described = f"{route.provider} {route.model} at {_where(route.url)}"
    return _probe(f"route {route.name}", model.check(), described, f" [{described}]", seconds)


def _store_label(settings: Settings) -> str:
    if settings.session_store == "memory":
        return "in-process memory (not shared between instances)"
    cluster = " cluster" if settings.redis_cluster else ""
    return f"redis{cluster} at {_where(settings.redis_url)}"


async def run_checks(
    settings: Settings, *, seconds_per_check: float = CHECK_TIMEOUT_SECONDS
) -> list[CheckResult]:
    """Probe every route and the session store concurrently; never raises for a failed probe."""
    routes = settings.routes
    results = [
        CheckResult(
            "configuration",
            True,
            f"AURA_ENV={settings.aura_env}; {len(routes.routes)} route(s), "
            f"default {routes.default}",
        )
    ]
    container = Container(settings=settings)
    try:
        client = await resolved(container.http_client())
        probes = [
            _route_probe(route, settings, client, seconds_per_check) for route in routes.routes
        ]
        store_label = _store_label(settings)
        component = f"session store ({settings.session_store})"
        try:
            store = await resolved(container.session_store())
        except Exception as exc:  # e.g. a URL redis-py refuses: a failed row, not a traceback
            probes.append(_failed(component, _reason(exc) + f" [{store_label}]"))
        else:
            probes.append(
                _probe(
                    component, store.check(), store_label, f" [{store_label}]", seconds_per_check
                )
            )
        results.extend(await asyncio.gather(*probes))
    finally:
        await resolved(container.shutdown_resources())
    return results


async def _failed(component: str, detail: str) -> CheckResult:
    return CheckResult(component, False, detail)


def render_table(results: Sequence[CheckResult]) -> str:
    """A plain aligned table; plain text so it reads the same in CI logs and terminals."""
    rows = [("COMPONENT", "STATUS", "DETAIL")] + [
        (result.component, "pass" if result.ok else "FAIL", result.detail) for result in results
    ]
    width = max(len(row[0]) for row in rows)
    return "\n".join(f"{c:<{width}}  {s:<6}  {d}".rstrip() for c, s, d in rows)


def report(settings: Settings, out: TextIO) -> int:
    """Run the checks, print the table and a summary; 0 when everything passed, else 1."""
    results = asyncio.run(run_checks(settings))
    failures = [result for result in results if not result.ok]
    out.write(render_table(results) + "\n\n")
    if failures:
        names = ", ".join(result.component for result in failures)
        out.write(f"{len(failures)} check(s) failed: {names}\n")
    else:
        out.write("all checks passed\n")
    out.flush()
    return 1 if failures else 0
