"""Check docker-compose.yml per profile: the compose schema, and that each profile starts exactly
what it needs.

No Docker here, so this does what Compose does before it starts anything, the way compose-go
does it: keep the services whose `profiles` match (a service without profiles is always kept),
validate the model against the Compose Specification's JSON schema (vendored in
deploy/compose-schema/, see its README), and refuse a `depends_on` on a service the profile
leaves out. On top, Sentinel's own rules: the expected service set of each profile, migrations
run once before any replica, one shared Chroma for replicas, no host port published twice,
Prometheus (deploy/prometheus/prometheus.yml) scraping every Sentinel server of the profile, and
no `${VAR:?}` that stops a profile none of whose services uses it (Compose interpolates the whole
file first).
Run: `uv run python scripts/check_compose.py`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "deploy/compose-schema/compose-spec.json"
PROMETHEUS_FILE = ROOT / "deploy/prometheus/prometheus.yml"

BASE = {"postgres", "redis"}
SINGLE = BASE | {"app"}
REPLICAS = BASE | {"migrate", "app-1", "app-2", "worker", "chroma", "proxy"}
OBSERVABILITY = {"prometheus", "grafana"}

# Active profiles -> the services `docker compose up` starts with them.
EXPECTED: dict[frozenset[str], set[str]] = {
    frozenset(): set(),  # no topology chosen: "no service selected"
    frozenset({"single"}): SINGLE,
    frozenset({"replicas"}): REPLICAS,
    frozenset({"single", "observability"}): SINGLE | OBSERVABILITY,
    frozenset({"replicas", "observability"}): REPLICAS | OBSERVABILITY,
}

Compose = dict[str, Any]


def load_compose(path: Path = COMPOSE_FILE) -> Compose:
    """The compose file as Compose reads it (YAML anchors and `<<` merges resolved)."""
    data: Compose = yaml.safe_load(path.read_text())
    return data


def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    """The vendored Compose Specification JSON schema."""
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def active_services(compose: Compose, profiles: frozenset[str]) -> set[str]:
    """The services a profile set enables (compose-go's `HasProfile`, `*` included)."""
    return {
        name
        for name, service in compose["services"].items()
        if not service.get("profiles") or "*" in profiles or profiles & set(service["profiles"])
    }


def project_for(compose: Compose, profiles: frozenset[str]) -> Compose:
    """The model Compose works on with these profiles: the other services left out."""
    keep = active_services(compose, profiles)
    services = {name: s for name, s in compose["services"].items() if name in keep}
    return {**compose, "services": services}


def schema_errors(project: Compose, schema: dict[str, Any]) -> list[str]:
    """Where the model breaks the Compose schema, as `path: message`."""
    validator = Draft202012Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(project), key=lambda e: list(e.absolute_path))
    ]


def dependencies(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`depends_on` in its long form (a list means `service_started`, required)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: {"condition": "service_started"} for name in raw}
    return dict(raw)


def dependency_errors(project: Compose) -> list[str]:
    """A `depends_on` on a service the profile leaves out fails the whole `up` in Compose."""
    services = project["services"]
    return [
        f"{name} depends on {target}, which this profile does not start"
        for name, service in services.items()
        for target, spec in dependencies(service).items()
        if target not in services and spec.get("required", True)
    ]


def sentinel_errors(project: Compose) -> list[str]:
    """Sentinel's rules for a profile: one migration before any replica, one shared Chroma."""
    services = project["services"]
    found: list[str] = []
    if "migrate" in services:
        # Every Sentinel process but the migrator and the Chroma server (same image).
        for name, service in services.items():
            if service.get("build") != "." or name in {"migrate", "chroma"}:
                continue
            env = service.get("environment") or {}
            wait = dependencies(service).get("migrate", {}).get("condition")
            if wait != "service_completed_successfully":
                found.append(f"{name} may start before `migrate` has finished")
            if env.get("DB_MIGRATE_ON_START") != "false":
                found.append(f"{name} migrates on start alongside `migrate`")
            if "chroma" in services and not env.get("CHROMA_HOST"):
                found.append(f"{name} keeps its own on-disk Chroma beside the Chroma server")
    published: dict[str, str] = {}
    for name, service in services.items():
        for port in service.get("ports") or []:
            host = str(port).rsplit(":", 1)[0] if ":" in str(port) else ""
            if host and host in published:
                found.append(f"{name} and {published[host]} both publish host port {host}")
            published.setdefault(host, name)
    return found


REQUIRED_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")


def required_variables(node: Any) -> set[str]:
    """The variables a part of the file requires (`${NAME:?message}` or `${NAME?message}`)."""
    if isinstance(node, str):
        return set(REQUIRED_VARIABLE.findall(node))
    if isinstance(node, dict):
        return set().union(*map(required_variables, node.values()), set())
    if isinstance(node, list):
        return set().union(*map(required_variables, node), set())
    return set()


def required_variable_errors(compose: Compose, project: Compose) -> list[str]:
    """Compose interpolates the whole file before it picks a profile's services, so a variable
    required anywhere stops every profile: each must belong to a service the profile starts."""
    used = required_variables(project["services"])
    return [
        f"Compose stops unless {name} is set, though no service of this profile uses it"
        for name in sorted(required_variables(compose) - used)
    ]


def load_prometheus(path: Path = PROMETHEUS_FILE) -> dict[str, Any]:
    """Prometheus's configuration as the `prometheus` service mounts it."""
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def sentinel_servers(project: Compose) -> set[str]:
    """The services that run `sentinel serve`: Sentinel's image with its default command."""
    return {
        name
        for name, service in project["services"].items()
        if service.get("build") == "." and "command" not in service
    }


def scraped_names(prometheus: dict[str, Any]) -> set[str]:
    """The DNS names the `sentinel` scrape job looks up."""
    return {
        name
        for job in prometheus.get("scrape_configs", [])
        if job.get("job_name") == "sentinel"
        for sd in job.get("dns_sd_configs", [])
        for name in sd.get("names", [])
    }


def scrape_errors(project: Compose, prometheus: dict[str, Any]) -> list[str]:
    """With Prometheus running, every Sentinel server answers a name it scrapes, and nothing else
    does (a worker or Chroma would be scraped as a Sentinel that is down)."""
    if "prometheus" not in project["services"]:
        return []
    names = scraped_names(prometheus)
    servers = sentinel_servers(project)
    found: list[str] = []
    for name, service in project["services"].items():
        networks = service.get("networks") or {}
        aliases = {
            alias
            for network in (networks.values() if isinstance(networks, dict) else [])
            for alias in (network or {}).get("aliases", [])
        }
        if name in servers and not (aliases | {name}) & names:
            found.append(f"Prometheus does not scrape {name} (it looks up {sorted(names)})")
        if name not in servers and (aliases | {name}) & names:
            found.append(f"Prometheus scrapes {name}, which is no Sentinel server")
    return found


def problems(
    compose: Compose, schema: dict[str, Any], prometheus: dict[str, Any] | None = None
) -> list[str]:
    """Everything wrong with the compose file, each line naming its profile; empty when fine."""
    prometheus = load_prometheus() if prometheus is None else prometheus
    found = [f"(whole file) {e}" for e in schema_errors(compose, schema)]
    for profiles, expected in EXPECTED.items():
        label = ",".join(sorted(profiles)) or "(no profile)"
        project = project_for(compose, profiles)
        started = set(project["services"])
        if started != expected:
            extra, missing = sorted(started - expected), sorted(expected - started)
            found.append(f"{label}: starts {sorted(started)}; extra {extra}, missing {missing}")
        for line in schema_errors(project, schema) + dependency_errors(project):
            found.append(f"{label}: {line}")
        found += [f"{label}: {line}" for line in sentinel_errors(project)]
        found += [f"{label}: {line}" for line in scrape_errors(project, prometheus)]
        if profiles:  # with none, Compose stops anyway: "no service selected"
            found += [f"{label}: {line}" for line in required_variable_errors(compose, project)]
    return found


def main() -> int:
    found = problems(load_compose(), load_schema())
    for problem in found:
        print(f"check-compose: {problem}", file=sys.stderr)
    if not found:
        print(f"check-compose: {len(EXPECTED)} profile sets valid, each starts what it needs")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
