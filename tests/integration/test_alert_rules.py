"""The Prometheus alert rules in k8s/base/prometheus, checked and unit-tested by promtool."""

from __future__ import annotations

import subprocess

from tests.support.observability import RULES, promtool


def test_the_alert_rules_are_valid_prometheus_rules() -> None:
    # Given the rules file; When promtool checks it
    result = subprocess.run([promtool(), "check", "rules", "followthrough-rules.yaml"], cwd=RULES,
                            capture_output=True, text=True, timeout=60, check=False)
    # Then every rule parses
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_each_alert_fires_when_it_should_and_stays_quiet_otherwise() -> None:
    # Given the rules' unit tests (series in, alerts expected out, at chosen times)
    # When promtool runs them
    result = subprocess.run([promtool(), "test", "rules", "followthrough-rules.test.yaml"], cwd=RULES,
                            capture_output=True, text=True, timeout=120, check=False)
    # Then each alert fires exactly as expected
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
