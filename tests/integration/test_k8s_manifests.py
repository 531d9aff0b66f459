"""The Kubernetes overlays as kustomize renders them: every Deployment has probes (or says
why not), requests and limits, a non-root read-only security context and a
PodDisruptionBudget; secrets come from Secrets; workers scale on queue depth; the
migration runs as a Job; the optional Prometheus Operator overlay scrapes every role that serves
/metrics under the job the alert rules use. (Strict schema validation per Kubernetes version:
`make k8s-validate`.)"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.support.k8s_manifests import (
    OPERATOR_GROUP,
    OVERLAYS,
    PROBES_NOTE,
    ROOT,
    RULES,
    alert_job_matchers,
    monitor_job,
    monitoring_problems,
    problems,
    render,
    split,
)


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


OPERATOR_OVERLAY = ROOT / "k8s" / "overlays" / "production-prometheus-operator"


def test_the_operator_overlay_scrapes_every_role_with_metrics_under_the_job_the_alerts_use() -> None:
    # Given the optional overlay with the Prometheus Operator's objects, and the alert rules
    docs = render(OPERATOR_OVERLAY)
    matchers = alert_job_matchers(yaml.safe_load(RULES.read_text()))
    assert [alert for alert, _ in matchers] == ["FollowthroughApiDown"]
    # Then every role that serves /metrics is scraped, by a valid monitor whose selector picks
    # its pods, under a job the alert's matcher matches, and every such matcher finds a job
    assert monitoring_problems(docs, matchers) == []
    [monitor] = [d for d in docs if d["kind"] in ("PodMonitor", "ServiceMonitor")]
    [api] = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "followthrough-api"]
    job = monitor_job(monitor, api["spec"]["template"]["metadata"]["labels"], "followthrough-api")
    assert job == "followthrough/followthrough-api"
    # And it is the job the alert rules' promtool tests feed `up` under
    tests = (ROOT / "k8s" / "base" / "prometheus" / "followthrough-rules.test.yaml").read_text()
    assert f'up{{job="{job}"' in tests


def test_the_operator_objects_are_optional() -> None:
    for overlay in OVERLAYS:
        if overlay != OPERATOR_OVERLAY:
            assert not [d for d in render(overlay) if d["apiVersion"].startswith(f"{OPERATOR_GROUP}/")], overlay.name


@pytest.mark.parametrize("breakage", ["renamed", "job label", "selector", "port", "namespace", "unknown field",
                                      "bad value"])
def test_the_monitoring_rules_catch_a_monitor_that_breaks_one(breakage: str) -> None:
    # Given the operator overlay, its PodMonitor broken in one way
    docs = copy.deepcopy(render(OPERATOR_OVERLAY))
    [monitor] = [d for d in docs if d["kind"] == "PodMonitor"]
    spec = monitor["spec"]
    if breakage == "renamed":
        monitor["metadata"]["name"] = "api-metrics"  # the job becomes followthrough/api-metrics
    elif breakage == "job label":
        spec["jobLabel"] = "app.kubernetes.io/component"  # the job becomes "api"
    elif breakage == "selector":
        spec["selector"]["matchLabels"]["app.kubernetes.io/component"] = "worker"
    elif breakage == "port":
        spec["podMetricsEndpoints"][0]["port"] = "http"
    elif breakage == "namespace":
        monitor["metadata"]["namespace"] = "monitoring"  # selects pods of its own namespace only
    elif breakage == "unknown field":
        spec["podMetricsEndpoints"][0]["intervall"] = "30s"
    else:
        spec["podMetricsEndpoints"][0]["scheme"] = "gopher"
    # When the rules are checked / Then they say what is wrong
    assert monitoring_problems(docs, alert_job_matchers(yaml.safe_load(RULES.read_text()))) != []


def test_make_k8s_validate_hands_kubernetes_validate_only_kubernetes_own_objects(tmp_path: Path) -> None:
    # Given the operator overlay rendered to a file, as `make k8s-validate` does
    rendered, core = tmp_path / "rendered.yaml", tmp_path / "core.yaml"
    docs = render(OPERATOR_OVERLAY)
    rendered.write_text(yaml.safe_dump_all(docs))
    # When it is split
    assert split(rendered, core) == []
    # Then the core file holds everything but the Operator's objects, which were checked here
    kept = [d for d in yaml.safe_load_all(core.read_text()) if d]
    assert kept == [d for d in docs if not d["apiVersion"].startswith(f"{OPERATOR_GROUP}/")]
    assert len(kept) == len(docs) - 1
    # And a broken Operator object fails the split
    broken = copy.deepcopy(docs)
    next(d for d in broken if d["kind"] == "PodMonitor")["spec"]["selector"]["matchLabelz"] = {}
    rendered.write_text(yaml.safe_dump_all(broken))
    assert split(rendered, core) == ["PodMonitor followthrough-api: unknown field spec.selector.matchLabelz"]
