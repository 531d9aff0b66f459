"""The Prometheus alert rules in k8s/base/prometheus (the one rules file), checked and
unit-tested by promtool."""

from __future__ import annotations

import subprocess

import yaml

from tests.support.observability import RULES, promtool


def test_the_alert_rules_are_valid_prometheus_rules() -> None:
    # Given the rules file; When promtool checks it
    result = subprocess.run([promtool(), "check", "rules", "followthrough-rules.yaml"], cwd=RULES,
                            capture_output=True, text=True, timeout=60, check=False)
    # Then every rule parses
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_each_alert_fires_when_it_should_and_stays_quiet_otherwise() -> None:
    # Given the rules' unit tests (series in, alerts expected out, at chosen times)
    # When promtool runs them
    result = subprocess.run([promtool(), "test", "rules", "followthrough-rules.test.yaml"], cwd=RULES,
                            capture_output=True, text=True, timeout=120, check=False)
    # Then each alert fires exactly as expected
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    # Given the rules and their unit tests
    rules = yaml.safe_load((RULES / "followthrough-rules.yaml").read_text())
    cases = yaml.safe_load((RULES / "followthrough-rules.test.yaml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    # When the expectations are grouped by alert
    firing = {check["alertname"] for test in cases["tests"] for check in test["alert_rule_test"]
              if check["exp_alerts"]}
    quiet = {check["alertname"] for test in cases["tests"] for check in test["alert_rule_test"]
             if not check["exp_alerts"]}
    # Then every alert is expected to fire somewhere and to stay quiet somewhere
    assert len(alerts) == 13
    assert alerts - firing == set()
    assert alerts - quiet == set()
    assert (firing | quiet) - alerts == set(), "a unit test names an alert the rules do not have"
