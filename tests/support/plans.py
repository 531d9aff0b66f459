"""Reading query plans in tests: which nodes of an ``EXPLAIN (FORMAT JSON)`` plan scan what."""

from __future__ import annotations

from typing import Any


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of a plan, itself first (init plans and subplans included)."""
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(nodes(child))
    return found


def index_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in nodes(plan) if n.get("Node Type") in ("Index Scan", "Index Only Scan")]
