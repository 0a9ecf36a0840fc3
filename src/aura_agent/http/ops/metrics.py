"""Prometheus metrics, recorded once per request from the `RequestRecord`, served at `/metrics`.

The hot path makes no metric calls: the stream fills the request's record as it goes (it does
that anyway for the canonical log line) and `MetricsMiddleware` turns the finished record into
counter and histogram updates after the response's last byte. The only other update is the
active-streams gauge, moved when an event-stream response starts and ends.

Each app owns a `CollectorRegistry` (never prometheus-client's global one), so several apps in
one process (tests) do not clash. With several worker processes (`WEB_CONCURRENCY > 1`) each
worker serves its own numbers; prometheus-client's multiprocess mode is not used.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

from aura_agent.config import Settings
from aura_agent.http.auth import ApiKeyGuard, presented_key
from aura_agent.http.record import RequestRecord

_TTFT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60)
_STREAM_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_EVENT_STREAM: Final = b"text/event-stream"
# Litestar puts the matched route's template in the scope; a raw path (with a session id in it)
# must never become a label value, so anything without a template is counted as one value.
_NO_TEMPLATE: Final = "unmatched"
# Litestar appends the charset to every text/* type itself.
_MEDIA_TYPE: Final = CONTENT_TYPE_LATEST.partition("; charset=")[0]


class Metrics:
    """The series of one app and how a finished request updates them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        process_collector.ProcessCollector(registry=registry)
        platform_collector.PlatformCollector(registry=registry)
        gc_collector.GCCollector(registry=registry)
        self.requests = Counter(
            "aura_requests_total",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "aura_time_to_first_token_seconds",
            "From the request's arrival to its first token, by the model route that served it.",
            ("model_route",),
            buckets=_TTFT_BUCKETS,
            registry=registry,
        )
        self.stream_duration = Histogram(
            "aura_stream_duration_seconds",
            "Duration of event-stream responses, from the request's arrival to the last byte.",
            buckets=_STREAM_BUCKETS,
            registry=registry,
        )
        self.active_streams = Gauge(
            "aura_active_streams", "Event-stream responses in progress.", registry=registry
        )
        self.tokens_relayed = Counter(
            "aura_tokens_relayed_total",
            "Tokens (text deltas) relayed to clients, by model route.",
            ("model_route",),
            registry=registry,
        )
        self.usage_tokens = Counter(
            "aura_usage_tokens_total",
            "Tokens the providers reported as used, by model route and kind (prompt, completion).",
            ("model_route", "kind"),
            registry=registry,
        )
        self.upstream_errors = Counter(
            "aura_upstream_errors_total",
            "Requests that failed because of the model provider, by provider and error class.",
            ("provider", "kind"),
            registry=registry,
        )
        self.upstream_attempts = Counter(
            "aura_upstream_attempts_total",
            "Upstream attempts (first tries, retries, fallbacks) of requests a route served.",
            registry=registry,
        )
        self.fallbacks = Counter(
            "aura_fallbacks_total",
            "Requests served by a fallback route instead of the one requested.",
            registry=registry,
        )

    def observe(self, record: RequestRecord, *, route: str, streamed: bool) -> None:
        """Account for one finished request."""
        method = record.method if record.method in _METHODS else "other"
        self.requests.labels(route, method, str(record.final_status())).inc()
        if streamed:
            self.stream_duration.observe(record.elapsed_ms() / 1000)
        model_route = record.route
        if model_route is not None:
            if record.ttft_ms is not None:
                self.time_to_first_token.labels(model_route).observe(record.ttft_ms / 1000)
            if record.tokens_relayed:
                self.tokens_relayed.labels(model_route).inc(record.tokens_relayed)
            usage = record.usage
            if usage is not None:
                self.usage_tokens.labels(model_route, "prompt").inc(usage.prompt_tokens)
                self.usage_tokens.labels(model_route, "completion").inc(usage.completion_tokens)
        if record.attempts is not None:
            self.upstream_attempts.inc(record.attempts)
            if record.requested_route is not None and record.route != record.requested_route:
                self.fallbacks.inc()
        if record.error_provider is not None and record.outcome is not None:
            kind = record.outcome.removeprefix("error:")
            self.upstream_errors.labels(record.error_provider, kind).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every series."""
        return generate_latest(self.registry)


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.startswith(_EVENT_STREAM)
    return False


class MetricsMiddleware:
    """Updates `metrics` when a request ends; sits inside `RequestContextMiddleware`.

    It runs after the inner app returned, i.e. after a streamed body's last byte, when the
    record is complete.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        streamed = False
        active = self.metrics.active_streams

        async def watch_start(message: Message) -> None:
            nonlocal streamed
            if message["type"] == "http.response.start" and _is_event_stream(
                message.get("headers", ())
            ):
                streamed = True
                active.inc()
            await send(message)

        try:
            await self.app(scope, receive, watch_start)
        finally:
            if streamed:
                active.dec()
            record = scope.get("aura.record")
            if isinstance(record, RequestRecord):
                route = scope.get("path_template") or _NO_TEMPLATE
                self.metrics.observe(record, route=route, streamed=streamed)


class _ScraperGuard:
    """The metrics key, as a bearer token or `x-api-key`; not a caller's key, so no tenant."""

    def __init__(self, api_key: str) -> None:
        self._key = ApiKeyGuard(api_key)

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        if not self._key.is_valid(presented_key(connection)):
            raise NotAuthorizedException(detail="missing or wrong metrics key (METRICS_API_KEY)")


def metrics_endpoint(metrics: Metrics, api_key: str | None) -> HTTPRouteHandler:
    """`GET /metrics`; when `api_key` is set, scrapers must send it (bearer or x-api-key)."""
    guards = [_ScraperGuard(api_key)] if api_key else []

    @get("/metrics", guards=guards, include_in_schema=False, summary="Prometheus metrics")
    async def scrape() -> Response[bytes]:
        return Response(metrics.render(), media_type=_MEDIA_TYPE)

    return scrape


def metrics_parts(settings: Settings) -> tuple[list[HTTPRouteHandler], list[DefineMiddleware]]:
    """The route handler and middleware to add to the app; none when METRICS_ENABLED is false."""
    if not settings.metrics_enabled:
        return [], []
    metrics = Metrics()
    return (
        [metrics_endpoint(metrics, settings.metrics_api_key)],
        [DefineMiddleware(MetricsMiddleware, metrics=metrics)],
    )
