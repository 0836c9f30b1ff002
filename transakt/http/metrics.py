"""HTTP metrics in a per-application Prometheus registry (tests build many apps)."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from transakt.http.typing import Handler

__all__ = ["HTTP_METRICS_KEY", "HttpMetrics"]

# Seconds; HTTP latency of a wallet API spans sub-millisecond reads to multi-second bank calls.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Unmatched paths share one label so scanners cannot blow up the series count.
_UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Request counts by route and status, latency by route, requests in flight."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "transakt_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "transakt_http_request_duration_seconds",
            "Time from request to response, by method and route template.",
            ("method", "route"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "transakt_http_requests_in_flight",
            "HTTP requests being handled now.",
            registry=self.registry,
        )
        self._in_flight = 0

    def __repr__(self) -> str:
        return f"<HttpMetrics in_flight={self._in_flight}>"

    def text(self) -> str:
        """The HTTP series in Prometheus text format."""
        return generate_latest(self.registry).decode()

    def middleware(self) -> Middleware:
        """Count and time every request, errors included (so it wraps the error middleware)."""

        @web.middleware
        async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            route = _route_label(request)
            method = request.method if request.method in _METHODS else "OTHER"
            started = time.perf_counter()
            status = 500
            self.in_flight.inc()
            self._in_flight += 1
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as error:
                status = error.status
                raise
            finally:
                self.in_flight.dec()
                self._in_flight -= 1
                self.requests.labels(method, route, str(status)).inc()
                self.latency.labels(method, route).observe(time.perf_counter() - started)

        return metrics_middleware


def _route_label(request: web.Request) -> str:
    if request.match_info.http_exception is not None:
        return _UNMATCHED
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else _UNMATCHED


HTTP_METRICS_KEY = web.AppKey("http_metrics", HttpMetrics)
