"""The Kubernetes manifests as a cluster would receive them (each overlay rendered by
kustomize, the one built into the locked ``kubectl`` wheel), and the rules every
Deployment must meet."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
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
