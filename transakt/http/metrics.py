"""HTTP metrics: real prometheus-client objects, registered on the process's registry.

The front door counts every request itself (it exists before the node opens), so its counter,
histogram and gauge are created unregistered and join the node's registry once the node is open
(``register``): one registry per process, never the global default one.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from transakt.http.keys import NODE_KEY

__all__ = ["HTTP_METRICS_KEY", "HttpMetrics", "join_node_registry", "method_label", "route_label"]

# Seconds; HTTP latency of a wallet API spans sub-millisecond reads to multi-second bank calls.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Unmatched paths share one label so scanners cannot blow up the series count.
_UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Request counts by route and status, latency by route, requests in flight."""

    def __init__(self) -> None:
        self.requests = Counter(
            "transakt_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=None,
        )
        self.latency = Histogram(
            "transakt_http_request_duration_seconds",
            "Time from request to response, by method and route template.",
            ("method", "route"),
            buckets=_LATENCY_BUCKETS,
            registry=None,
        )
        self.in_flight = Gauge(
            "transakt_http_requests_in_flight",
            "HTTP requests being handled now.",
            registry=None,
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

    def describe(self) -> Iterator[Metric]:
        """The families ``collect`` yields (no samples), checked for clashes on registration."""
        for metric in (self.requests, self.latency, self.in_flight):
            yield from metric.describe()

    def collect(self) -> Iterator[Metric]:
        """The HTTP families, as a collector on the process's registry."""
        for metric in (self.requests, self.latency, self.in_flight):
            yield from metric.collect()

    def register(self, registry: CollectorRegistry) -> None:
        """Export the HTTP series through ``registry`` (the process's one)."""
        registry.register(self)

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


async def join_node_registry(app: web.Application) -> None:
    """Startup hook: the HTTP series join the node's registry (the node opens before it, in
    the app's cleanup context), so ``/metrics`` answers one registry."""
    app[HTTP_METRICS_KEY].register(app[NODE_KEY].registry)
