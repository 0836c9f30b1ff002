"""HTTP metrics in a per-application Prometheus registry (tests build many apps)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["HTTP_METRICS_KEY", "HttpMetrics", "method_label", "route_label"]

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
        # Read when scraped, not kept in step with two locked updates per request.
        self.in_flight.set_function(lambda: self.handling)
        self.handling = 0  # requests being handled now
        # (method, route, status) -> its counter and its histogram. ``.labels()`` validates,
        # stringifies and locks on every call; the label sets are few (routes are templates,
        # methods a fixed set), so each is looked up once.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def __repr__(self) -> str:
        return f"<HttpMetrics in_flight={self.handling}>"

    def text(self) -> str:
        """The HTTP series in Prometheus text format."""
        return generate_latest(self.registry).decode()

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its latency."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def method_label(method: str) -> str:
    """The method as a label: one of the standard ones, else OTHER (no unbounded series)."""
    return method if method in _METHODS else "OTHER"


def route_label(request: web.Request) -> str:
    """The matched route's template (never the raw path), or ``unmatched``."""
    if request.match_info.http_exception is not None:
        return _UNMATCHED
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else _UNMATCHED


HTTP_METRICS_KEY = web.AppKey("http_metrics", HttpMetrics)
