"""deploy/: the Prometheus rules pass `promtool check rules`, and every metric the rules and the
Grafana dashboard use is one Sentinel really exports (checked against /metrics after traffic)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.schemas.behavior import examples
from tests.eventing import abnormal_episode
from tests.fakes.fixtures import reset_rag_state

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RULES = sorted((DEPLOY / "prometheus").glob("*rules*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
METRIC = re.compile(r"\b(sentinel_[a-z0-9_]+)")
SELECTOR = re.compile(r"\b(sentinel_[a-z0-9_]+)\{([^}]*)\}")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


def _rule_exprs() -> list[str]:
    exprs = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [rule["expr"] for rule in group["rules"]]
    return exprs


def _dashboard_exprs() -> list[str]:
    exprs = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [target["expr"] for target in panel.get("targets", [])]
    return exprs


def _exported(text: str) -> dict[str, set[str]]:
    """Every sample name /metrics can carry → label names seen (empty when no sample yet)."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in ("", *SUFFIXES.get(family.type, ())):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_rule_files_pass_promtool_check_rules():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run .ci/system-deps (Debian package prometheus)"
    assert RULES and all("rules" in p.name for p in RULES)
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_fire_on_the_scripted_series_of_their_unit_tests():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run .ci/system-deps (Debian package prometheus)"
    tests = sorted((DEPLOY / "prometheus" / "tests").glob("*.test.yml"))
    assert tests
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, tests)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_cover_what_operators_need_to_hear_about():
    exprs = "\n".join(_rule_exprs())
    for needed in (
        'status=~"5.."',
        "/api/v1/events",
        "/api/v1/behavior/analyze",
        "sentinel_alert_oldest_pending_seconds",
        "sentinel_alert_deliveries_total",
        "sentinel_llm_cooldown_seconds",
        "sentinel_source_last_seen_timestamp_seconds",
        "sentinel_llm_cost_usd_total",
        "sentinel_false_alarm_rate",
    ):
        assert needed in exprs, needed


def test_grafana_provisioning_points_at_the_shipped_dashboard():
    assert DASHBOARDS
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for service in ("prometheus", "grafana"):
        assert compose["services"][service]["profiles"] == ["observability"]
        for volume in compose["services"][service]["volumes"]:
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), host
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/sentinel.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    panels = json.loads(DASHBOARDS[0].read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 10


async def test_every_metric_in_rules_and_dashboards_is_exported(client, app):
    # A little of everything: events that open and close an abnormal episode (and an alert),
    # an analyze call, and a question (answered locally without keys).
    await reset_rag_state(app)
    done = await abnormal_episode(client, "cam-observability")
    r = await client.post(
        f"/api/v1/episodes/{done['episode_id']}/feedback", json={"label": "walking"}
    )
    assert r.status_code == 200 and r.json()["outcome"] == "false_alarm", r.text
    r = await client.post(
        "/api/v1/behavior/analyze", json={"sequence": examples()["running"]["sequence"]}
    )
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/rag/ask", json={"question": "낙상 알림이 오면 무엇을 하나요?"})
    assert r.status_code == 200, r.text
    r = await client.post("/behavior/analyze", json={"sequence": examples()["running"]["sequence"]})
    assert r.status_code == 200, r.text
    r = await client.get("/metrics")
    assert r.status_code == 200
    exported = _exported(r.text)

    # Route labels the latency rules match are routes the metrics middleware really reports.
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    seen = {s.labels["route"] for s in families["sentinel_http_requests"].samples}
    schema_paths = set((await client.get("/openapi.json")).json()["paths"])
    for pattern in re.findall(r'route=~"([^"]+)"', "\n".join(_rule_exprs())):
        for route in pattern.split("|"):
            assert route in seen | schema_paths, route

    exprs = _rule_exprs() + _dashboard_exprs()
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    missing = sorted(used - set(exported))
    assert not missing, f"metrics used in deploy/ but not exported: {missing}"
    assert len(used) >= 15

    # Label names in selectors exist on the metric (where it has samples to compare with).
    wrong = []
    for expr in exprs:
        for name, matchers in SELECTOR.findall(expr):
            labels = exported.get(name) or set()
            for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", matchers):
                if labels and label not in labels:
                    wrong.append(f"{name}{{{label}}}")
    assert not wrong, f"unknown labels: {wrong}"


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_every_rule_has_a_summary_and_severity(path: Path):
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
