"""The Kubernetes overlays as kustomize renders them: every Deployment has probes (or says
why not), requests and limits, a non-root read-only security context and a
PodDisruptionBudget; secrets come from Secrets; workers scale on queue depth; the
migration runs as a Job. (Strict schema validation per Kubernetes version: `make k8s-validate`.)"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.support.k8s_manifests import OVERLAYS, PROBES_NOTE, ROOT, problems, render


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_every_deployment_of_the_overlay_meets_the_rules(overlay: Path) -> None:
    # Given the overlay rendered as the cluster would receive it
    docs = render(overlay)
    # Then every role is there, and nothing breaks a rule
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    assert deployments == {f"followthrough-{r}" for r in ("api", "worker", "dispatcher", "projector")}
    assert problems(docs) == []
    assert any(d["kind"] == "Job" and d["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
               for d in docs)


def test_the_api_is_probed_on_healthz_and_readyz() -> None:
    docs = render(OVERLAYS[0])
    [api] = [d for d in docs if d["metadata"]["name"] == "followthrough-api" and d["kind"] == "Deployment"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert PROBES_NOTE not in api["metadata"].get("annotations", {})


def test_production_scales_workers_on_queue_depth() -> None:
    docs = render(next(p for p in OVERLAYS if p.name == "production"))
    [hpa] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler" and
             d["spec"]["scaleTargetRef"]["name"] == "followthrough-worker"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["external"]["metric"]["name"] == "followthrough_schedule_items"
    [worker] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "followthrough-worker"]
    assert "replicas" not in worker["spec"]  # the autoscaler owns it


@pytest.mark.parametrize("breakage", ["probes", "limits", "security", "budget", "secret"])
def test_the_rules_catch_a_deployment_that_breaks_one(breakage: str) -> None:
    # Given a rendered overlay, and one Deployment broken in one way
    docs = copy.deepcopy(render(OVERLAYS[0]))
    [api] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "followthrough-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    if breakage == "probes":
        del container["readinessProbe"]
    elif breakage == "limits":
        del container["resources"]["limits"]
    elif breakage == "security":
        container["securityContext"]["readOnlyRootFilesystem"] = False
    elif breakage == "budget":
        docs = [d for d in docs
                if not (d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "followthrough-api")]
    else:
        container["env"][0] = {"name": "DATABASE_URL", "value": "postgresql://app:pw@db/ft"}
    # When the rules are checked / Then that Deployment is named
    found = problems(docs)
    assert found
    assert all(line.startswith("Deployment followthrough-api") for line in found), found


def test_every_alert_rule_has_its_runbook_section_in_the_operations_guide() -> None:
    # Given the one alert rules file (the kustomize base's) and the runbook
    rules = yaml.safe_load((ROOT / "k8s" / "base" / "prometheus" / "followthrough-rules.yaml").read_text())
    runbook = (ROOT / "docs" / "operations.md").read_text()
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) == 13
    # Then each alert links a section of docs/operations.md named after it
    for rule in alerts:
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert f"\n### {rule['alert']}\n" in runbook, rule["alert"]
    # And the runbook's Alerts part documents no alert the rules do not have
    alerts_part = runbook.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    sections = {line[4:] for line in alerts_part.splitlines() if line.startswith("### ")}
    assert sections == {rule["alert"] for rule in alerts}
