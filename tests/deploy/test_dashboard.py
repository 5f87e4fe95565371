"""deploy/grafana/dari-dashboard.json: valid, and it charts exactly the metrics dari exposes."""

from __future__ import annotations

import json
import re
from typing import Any

from adapters.metrics import Metrics
from tests.deploy.files import DEPLOY

# Series that later work adds; the dashboard already charts them.
COMING: set[str] = set()
SUFFIXES = re.compile(r"_(bucket|sum|count|created)$")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "dari-dashboard.json").read_text(encoding="utf-8")
    )
    return data


def exposed() -> set[str]:
    names = set()
    for metric in Metrics().registry.collect():
        names.add(metric.name + ("_total" if metric.type == "counter" else ""))
    return names


def charted() -> set[str]:
    exprs = [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]]
    return {SUFFIXES.sub("", name) for expr in exprs for name in re.findall(r"\bdari_[a-z_]+", expr)}


def test_every_exposed_and_coming_metric_is_charted_and_nothing_else() -> None:
    assert {"dari_messages_total", "dari_answer_seconds", "dari_errors_total"} <= exposed()
    assert charted() == exposed() | COMING


def test_panels_are_well_formed() -> None:
    data = dashboard()
    assert data["uid"] and data["title"] and data["schemaVersion"] >= 36
    ids = [panel["id"] for panel in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["datasource"]["uid"] == "${datasource}"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"][
            "w"
        ] <= 24
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    names = [v["name"] for v in data["templating"]["list"]]
    assert names == ["datasource", "platform"]
