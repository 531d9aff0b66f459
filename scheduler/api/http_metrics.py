"""HTTP request counters and latency histograms per route template, and requests per
workspace for the first ``MAX_WORKSPACES`` workspaces seen (the rest count as "other"):
every label stays bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
MAX_WORKSPACES = 100
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("followthrough_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("followthrough_http_request_duration_seconds", "Time to answer",
                                 ["method", "route"], buckets=BUCKETS, registry=registry)
        self.by_workspace = Counter("followthrough_http_workspace_requests",
                                    f"HTTP requests by workspace (the first {MAX_WORKSPACES} seen; then 'other')",
                                    ["workspace", "status_class"], registry=registry)
        self._workspaces: set[str] = set()

    def observe(self, method: str, route: str, status: int, seconds: float, workspace: str | None = None) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if workspace is not None:
            if workspace not in self._workspaces and len(self._workspaces) < MAX_WORKSPACES:
                self._workspaces.add(workspace)
            label = workspace if workspace in self._workspaces else "other"
            self.by_workspace.labels(label, f"{status // 100}xx").inc()
