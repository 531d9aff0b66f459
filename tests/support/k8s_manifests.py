"""The Kubernetes manifests as a cluster would receive them (each overlay rendered by
kustomize, the one built into the locked ``kubectl`` wheel), and the rules every
Deployment must meet.

The Prometheus Operator's objects (group ``monitoring.coreos.com``) have no schema among
Kubernetes' own, which ``kubernetes-validate`` would only warn about: ``make k8s-validate``
takes them out first (``python -m tests.support.k8s_manifests split``) and validates them
here, strictly, against the Operator's models (``cloudcoil-models-prometheus-operator``,
generated from its CRDs); the rest goes to ``kubernetes-validate --strict``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p for p in (ROOT / "k8s" / "overlays").iterdir() if (p / "kustomization.yaml").exists())
PROBES_NOTE = "followthrough/probes"


def kubectl() -> str:
    return str(Path(sys.executable).with_name("kubectl"))


def render(overlay: Path) -> list[dict[str, Any]]:
    out = subprocess.run([kubectl(), "kustomize", str(overlay)], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _container_problems(name: str, container: dict[str, Any], probes_waived: bool) -> Iterable[str]:
    where = f"Deployment {name}, container {container.get('name')}"
    if not probes_waived:
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in container:
                yield f"{where}: no {probe} (or a {PROBES_NOTE} annotation saying why none)"
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(kind, {}):
                yield f"{where}: no {kind}.{resource}"
    security = container.get("securityContext", {})
    if security.get("readOnlyRootFilesystem") is not True:
        yield f"{where}: root filesystem not read-only"
    if security.get("allowPrivilegeEscalation") is not False:
        yield f"{where}: privilege escalation allowed"
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        yield f"{where}: capabilities not all dropped"
    for env in container.get("env", []):
        if env["name"] in ("DATABASE_URL", "BROKER_URL") and "secretKeyRef" not in env.get("valueFrom", {}):
            yield f"{where}: {env['name']} not from a Secret"


def problems(docs: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the rendered manifests (empty: all good)."""
    found: list[str] = []
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            leaked = [k for k in doc.get("data", {}) if k.endswith("_URL") or "SECRET" in k or "TOKEN" in k]
            found.extend(f"ConfigMap {doc['metadata']['name']}: {k} belongs in a Secret" for k in leaked)
        if doc["kind"] != "Deployment":
            continue
        name = doc["metadata"]["name"]
        waived = bool(doc["metadata"].get("annotations", {}).get(PROBES_NOTE, "").strip())
        pod = doc["spec"]["template"]["spec"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
            found.append(f"Deployment {name}: runAsNonRoot not set")
        for container in pod["containers"]:
            found.extend(_container_problems(name, container, waived))
        if not any(_selects(b["spec"]["selector"], labels) for b in budgets):
            found.append(f"Deployment {name}: no PodDisruptionBudget")
    return found


OPERATOR_GROUP = "monitoring.coreos.com"


def operator_problems(doc: dict[str, Any]) -> list[str]:
    """What the Prometheus Operator's CRD schema rejects in one of its objects, strictly: a
    field it does not define (which the API server would prune or refuse) as much as a
    wrong type or value. Empty: valid."""
    import pydantic
    from cloudcoil.models.prometheus_operator import v1

    where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    model = {"PodMonitor": v1.PodMonitor, "ServiceMonitor": v1.ServiceMonitor,
             "PrometheusRule": v1.PrometheusRule}.get(str(doc.get("kind")))
    if doc.get("apiVersion") != f"{OPERATOR_GROUP}/v1" or model is None:
        return [f"{where}: no schema here for {doc.get('apiVersion')} {doc.get('kind')}"]
    try:
        parsed = model.model_validate(doc)
    except pydantic.ValidationError as exc:
        return [f"{where}: {error['loc']}: {error['msg']}" for error in exc.errors()]
    # The models ignore fields they do not define: what comes back without them was unknown.
    kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"{where}: unknown field {path}" for path in _dropped(doc, kept, "")]


def _dropped(given: Any, kept: Any, path: str) -> Iterable[str]:
    if isinstance(given, dict):
        for key, value in given.items():
            if not isinstance(kept, dict) or key not in kept:
                yield f"{path}.{key}".lstrip(".")
            else:
                yield from _dropped(value, kept[key], f"{path}.{key}")
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (value, back) in enumerate(zip(given, kept, strict=False)):
            yield from _dropped(value, back, f"{path}[{i}]")


def split(rendered: Path, core: Path) -> list[str]:
    """Write the rendered overlay's objects of Kubernetes' own to ``core`` (for
    kubernetes-validate) and check the Prometheus Operator's here; returns their problems."""
    docs = [doc for doc in yaml.safe_load_all(rendered.read_text()) if doc]
    operator = [d for d in docs if str(d.get("apiVersion", "")).startswith(f"{OPERATOR_GROUP}/")]
    core.write_text(yaml.safe_dump_all([d for d in docs if d not in operator], sort_keys=False))
    return [problem for doc in operator for problem in operator_problems(doc)]


RULES = ROOT / "k8s" / "base" / "prometheus" / "followthrough-rules.yaml"
JOB_MATCHER = re.compile(r'\bjob\s*(=~|=)\s*"([^"]*)"')


def alert_job_matchers(rules: dict[str, Any]) -> list[tuple[str, str]]:
    """The (alert, job regex) of every alert rule that names a scrape job of ours (the
    ``job`` label of ``up``; kube-state-metrics' jobs are not ours)."""
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            for op, value in JOB_MATCHER.findall(str(rule["expr"])):
                found.append((rule["alert"], value if op == "=~" else re.escape(value)))
    return found


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return dict(doc["spec"]["template"]["metadata"].get("labels", {}))


def monitor_job(monitor: dict[str, Any], target_labels: dict[str, str], target_name: str) -> str:
    """The ``job`` label the Prometheus Operator gives a monitor's targets: the value of the
    target's ``jobLabel`` label when the monitor sets one; else ``<namespace>/<name>`` for
    a PodMonitor and the Service's name for a ServiceMonitor."""
    label = monitor["spec"].get("jobLabel")
    if label:
        return target_labels.get(label, "")
    if monitor["kind"] == "PodMonitor":
        return f"{monitor['metadata'].get('namespace', 'default')}/{monitor['metadata']['name']}"
    return target_name


def monitoring_problems(docs: list[dict[str, Any]], matchers: list[tuple[str, str]]) -> list[str]:
    """What keeps the Prometheus Operator from scraping every role that serves /metrics
    under the job names the alert rules use (empty: all good). A role serves /metrics when
    its container declares a port named ``metrics`` (the API's other port answers /metrics
    only to loopback or a token): the monitor must scrape that port."""
    found: list[str] = []
    monitors = [d for d in docs if d["kind"] in ("PodMonitor", "ServiceMonitor")]
    services = [d for d in docs if d["kind"] == "Service"]
    jobs: list[str] = []
    for role in (d for d in docs if d["kind"] == "Deployment"):
        name, labels = role["metadata"]["name"], _pod_labels(role)
        ports = {p.get("name") for c in role["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        if "metrics" not in ports:
            continue
        scraped = []
        for monitor in monitors:
            same_ns = monitor["metadata"].get("namespace") == role["metadata"].get("namespace")
            if monitor["kind"] == "PodMonitor":
                endpoints = {e.get("port") for e in monitor["spec"].get("podMetricsEndpoints", [])}
                if same_ns and _selects(monitor["spec"]["selector"], labels) and "metrics" in endpoints:
                    scraped.append(monitor_job(monitor, labels, name))
                continue
            for service in services:  # a ServiceMonitor reaches the pods through a Service
                service_ports = {p.get("name") for p in service["spec"].get("ports", [])
                                 if "metrics" in (p.get("targetPort"), p.get("name"))}
                endpoints = {e.get("port") for e in monitor["spec"].get("endpoints", [])}
                if (same_ns and service["metadata"].get("namespace") == role["metadata"].get("namespace")
                        and _selects(monitor["spec"]["selector"], service["metadata"].get("labels", {}))
                        and _selects({"matchLabels": service["spec"].get("selector", {})}, labels)
                        and endpoints & service_ports):
                    scraped.append(monitor_job(monitor, service["metadata"].get("labels", {}),
                                               service["metadata"]["name"]))
        if not scraped:
            found.append(f"Deployment {name}: serves /metrics, and no PodMonitor or ServiceMonitor scrapes it")
        jobs.extend(scraped)
        for job in scraped:
            if not any(re.fullmatch(pattern, job) for _, pattern in matchers):
                found.append(f"Deployment {name}: scraped as job {job!r}, which no alert rule's job matcher matches")
    for alert, pattern in matchers:
        if not any(re.fullmatch(pattern, job) for job in jobs):
            found.append(f"alert {alert}: job=~{pattern!r} matches no monitored job ({sorted(jobs)})")
    for monitor in monitors:
        found.extend(operator_problems(monitor))
    return found


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3 or argv[0] != "split":
        print("usage: python -m tests.support.k8s_manifests split RENDERED.yaml CORE.yaml", file=sys.stderr)
        return 2
    found = split(Path(argv[1]), Path(argv[2]))
    for problem in found:
        print(f"ERROR {argv[1]}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
