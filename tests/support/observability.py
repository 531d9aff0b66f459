"""Reading the Grafana dashboards and Prometheus rules kept in k8s/base, for their tests."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.database import IN_CI

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "k8s" / "base" / "grafana"
RULES = REPO / "k8s" / "base" / "prometheus"
TIME_FILTER = re.compile(r"\$__timeFilter\(([^()]*)\)")


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(GRAFANA.glob("*.json"))}


def _targets(board: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


def sql_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, SQL) of every SQL panel and query variable."""
    found = [(title, t["rawSql"]) for title, t in _targets(board) if "rawSql" in t]
    found += [(f"variable {v['name']}", v["query"]) for v in board.get("templating", {}).get("list", [])
              if v.get("type") == "query" and v["datasource"]["type"].endswith("postgresql-datasource")]
    return found


def promql(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for _, t in _targets(board) if "expr" in t]


def expand_macros(raw_sql: str, workspaces: list[str]) -> str:
    """Grafana's macros as Grafana expands them (the ones our panels use), for a run by hand."""
    listed = ", ".join("'" + w.replace("'", "''") + "'" for w in workspaces)
    query = raw_sql.replace("${workspace:sqlstring}", listed)
    query = TIME_FILTER.sub(
        r"\1 BETWEEN '2000-01-01T00:00:00Z'::timestamptz AND '2100-01-01T00:00:00Z'::timestamptz", query
    )
    assert "$" not in query, f"a Grafana macro this test does not expand: {query}"
    return query


def rule_expressions() -> list[str]:
    document = yaml.safe_load((RULES / "followthrough-rules.yaml").read_text())
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


_PROMQL_NOT_NAMES = (
    re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'),  # string literals
    re.compile(r"\{[^}]*\}"),  # label matchers
    re.compile(r"\[[^\]]*\]"),  # ranges and subqueries
    re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"),  # label lists
)
_PROMQL_IDENTIFIER = re.compile(r"(?<![\w:$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()")
_PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                              "group_left", "group_right", "inf", "nan"})


def promql_metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects (any prefix): not functions, labels, keywords."""
    for pattern in _PROMQL_NOT_NAMES:
        expr = pattern.sub(" ", expr)
    return {name for name in _PROMQL_IDENTIFIER.findall(expr) if name.lower() not in _PROMQL_KEYWORDS}


def metric_names(text: str) -> set[str]:
    """Every metric /metrics serves: sample names, and each family's own names even with no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        names.update(sample.name for sample in family.samples)
    return names


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if IN_CI:
            pytest.fail("promtool is not installed (CI is set; .ci/run installs Debian's prometheus package)")
        pytest.skip("promtool not installed (apt-get install prometheus); CI fails instead")
    return found
