"""The Docker files, checked without a Docker daemon (there is none here or in CI).

hadolint lints the Dockerfile; the build stage's RUN steps run under bash against a local stand-in
for PyTorch's CPU index; the build context is matched as Docker matches .dockerignore; the compose
file is validated against the Compose schema for each profile, with the services each starts.
The checks themselves live in scripts/check_dockerfile.py and scripts/check_compose.py
(`.ci/check-docker`); each is also shown to catch the fault it guards against.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import check_compose, check_dockerfile
from scripts.check_dockerfile import (
    context_problems,
    cuda_only_packages,
    dockerfile_arg,
    ignored,
    parse_dockerignore,
    run_problems,
)

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()
LOCK = (ROOT / "uv.lock").read_text()
VENV_BIN = Path(sys.executable).parent
CUDA_WHEEL = re.compile(r"^(nvidia-|cuda-|triton$)")


def _tool(name: str) -> str:
    """A dev tool of the project's environment; missing means the dev group is not installed."""
    path = shutil.which(name) or str(VENV_BIN / name)
    assert Path(path).exists(), f"{name} not found: run `uv sync` (dev group)"
    return path


def _hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )


# --- Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = _hadolint(ROOT / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_fails_on_any_finding(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        'FROM ghcr.io/example/python:latest\nRUN cd /tmp && pip install requests\nCMD ["python"]\n'
    )
    result = _hadolint(bad)
    assert result.returncode != 0
    # untrusted registry, `latest`, unpinned pip, `cd` in RUN
    for rule in ("DL3026", "DL3007", "DL3013", "DL3003"):
        assert rule in result.stdout, result.stdout


def test_cpu_build_leaves_out_exactly_the_cuda_wheels_of_the_lock() -> None:
    cuda_only = cuda_only_packages(LOCK)
    assert {"triton", "nvidia-cublas", "nvidia-cudnn-cu13", "cuda-toolkit"} <= cuda_only
    # What the CPU torch needs too stays in.
    assert not {"torch", "filelock", "sympy", "networkx", "jinja2"} & cuda_only
    assert set(dockerfile_arg(DOCKERFILE, "TORCH_CUDA_ONLY").split()) == cuda_only
    assert dockerfile_arg(DOCKERFILE, "TORCH_INDEX") == "https://download.pytorch.org/whl/cpu"
    assert check_dockerfile.problems(DOCKERFILE, LOCK) == []


def test_cuda_list_out_of_step_with_the_lock_is_reported() -> None:
    without_triton = re.sub(r" triton\"", '"', DOCKERFILE)
    assert without_triton != DOCKERFILE
    assert any("lacks ['triton']" in p for p in check_dockerfile.problems(without_triton, LOCK))
    stale = DOCKERFILE.replace('ARG TORCH_CUDA_ONLY="', 'ARG TORCH_CUDA_ONLY="nvidia-cuda-nvcc ')
    assert any("nvidia-cuda-nvcc" in p for p in check_dockerfile.problems(stale, LOCK))
    cuda_default = DOCKERFILE.replace("whl/cpu\n", "whl/cu130\n", 1)
    assert any("TORCH_INDEX" in p for p in check_dockerfile.problems(cuda_default, LOCK))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('"-e", "-o"', '"-o"'), "SHELL lacks `-e`"),
        (("--inexact", ""), "lacks --inexact"),
        (("for name in torch $TORCH_CUDA_ONLY", "for name in torch"), "does not leave out"),
    ],
)
def test_run_steps_that_would_let_cuda_torch_in_are_reported(
    change: tuple[str, str], expected: str
) -> None:
    assert run_problems(DOCKERFILE) == []
    broken = DOCKERFILE.replace(*change)
    assert broken != DOCKERFILE
    assert any(expected in problem for problem in run_problems(broken))


def _wheel(directory: Path, name: str, version: str, files: dict[str, str]) -> None:
    """A minimal wheel (PEP 427) with these modules."""
    dist_info = f"{name}-{version}.dist-info"
    contents = {
        **files,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(directory / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in contents.items():
            wheel.writestr(path, text)


def _locked_torch() -> str:
    return next(p["version"] for p in tomllib.loads(LOCK)["package"] if p["name"] == "torch")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def cpu_index(tmp_path: Path) -> Iterator[str]:
    """A stand-in for https://download.pytorch.org/whl/cpu (unreachable here): a simple index
    whose torch is the lock's version with the CPU build's local label and no CUDA."""
    version = _locked_torch()
    (tmp_path / "index" / "torch").mkdir(parents=True)
    (tmp_path / "index" / "empty").mkdir()
    module = f'__version__ = "{version}+cpu"\n\nclass version:\n    cuda = None\n'
    _wheel(tmp_path / "index" / "torch", "torch", f"{version}+cpu", {"torch/__init__.py": module})
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "index"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _run_build_stage(context: Path, torch_index: str) -> tuple[int, str]:
    """The build stage's RUN steps, in order, with its SHELL, ARGs and ENV, in `context` (the
    files its COPY lines take already there); `pip install uv` is left out: uv is here.
    Returns the first failing step's exit status (0 when all pass) and everything printed."""
    steps = check_dockerfile.stage(DOCKERFILE, "build")
    env = {
        k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    }
    env |= {
        "PATH": f"{VENV_BIN}{os.pathsep}{env['PATH']}",  # `python` 3.11, as in the base image
        "TORCH_INDEX": torch_index,
        "TORCH_CUDA_ONLY": dockerfile_arg(DOCKERFILE, "TORCH_CUDA_ONLY"),
        "UV_PYTHON_DOWNLOADS": "never",
        # The image copies and compiles; linking from uv's cache keeps the test to seconds.
        "UV_LINK_MODE": "hardlink",
        "UV_COMPILE_BYTECODE": "0",
    }
    shell: list[str] = []
    output = ""
    for step in steps:
        if step.keyword == "SHELL":
            shell = json.loads(step.args)
        if step.keyword != "RUN" or step.args.startswith("pip install"):
            continue
        result = subprocess.run(
            [*shell, step.args],
            cwd=context,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        output += result.stdout
        if result.returncode:
            return result.returncode, output
    return 0, output


@pytest.fixture
def build_context(tmp_path: Path) -> Path:
    """What the build stage's COPY lines take, laid out as in the image's /app."""
    context = tmp_path / "app"
    sources = [s for s in check_dockerfile.copy_sources(DOCKERFILE) if s != "data/models"]
    for name in check_dockerfile.project_files(ROOT, sources):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    return context


def _installed(context: Path) -> dict[str, str]:
    listed = subprocess.run(
        [_tool("uv"), "pip", "list", "--python", str(context / ".venv/bin/python")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split()[:2] for line in listed.splitlines()[2:] if line.strip()]
    return {name: version for name, version in rows}


def test_build_stage_installs_the_lock_with_cpu_torch_and_no_cuda_wheel(
    build_context: Path, cpu_index: str
) -> None:
    status, output = _run_build_stage(build_context, cpu_index)
    assert status == 0, output
    assert re.search(r"^torch \S+\+cpu CUDA None$", output, flags=re.MULTILINE), output
    installed = _installed(build_context)
    # The lock's version from TORCH_INDEX, kept by the project's `uv sync --inexact`.
    assert installed["torch"] == f"{_locked_torch()}+cpu", installed
    assert not [name for name in installed if CUDA_WHEEL.match(name)]
    for name in ("sentinel", "fastapi", "chromadb", "sentence-transformers", "filelock"):
        assert name in installed, name
    assert (build_context / ".venv/bin/sentinel").exists()


def test_build_stage_fails_when_torch_cannot_be_installed(
    build_context: Path, cpu_index: str
) -> None:
    # An index without torch: the RUN step must fail, not go on to a torch-less image.
    status, output = _run_build_stage(build_context, cpu_index + "empty/")
    assert status != 0
    assert "torch was not found in the package registry" in output, output


# --- .dockerignore -----------------------------------------------------------------------------


def test_build_context_holds_what_copy_takes_and_leaves_out_venv_and_data() -> None:
    assert context_problems(DOCKERFILE, DOCKERIGNORE, ROOT) == []
    patterns = parse_dockerignore(DOCKERIGNORE)
    for path in (".venv/lib/python3.11/site-packages/torch/__init__.py", "data/sentinel.db"):
        assert ignored(patterns, path), path
    for path in ("data/models/behavior_lstm.pt", "data/models/basic_motions.npz", "uv.lock"):
        assert not ignored(patterns, path), path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("!app/\n", ""), "app/main.py: COPY needs it"),
        (("!data/models/behavior_lstm.pt\n", ""), "data/models/behavior_lstm.pt: COPY needs it"),
        (("!data/models/behavior_lstm.pt\n", "!data/\n"), "data/sentinel.db: .dockerignore lets"),
        (("*\n", ""), ".venv/bin/python: .dockerignore lets"),
        (
            ("**/__pycache__\n**/*.pyc\n", ""),
            "app/__pycache__/main.cpython-311.pyc: .dockerignore lets",
        ),
    ],
)
def test_build_context_faults_are_reported(change: tuple[str, str], expected: str) -> None:
    broken = DOCKERIGNORE.replace(*change)
    assert broken != DOCKERIGNORE
    assert any(expected in p for p in context_problems(DOCKERFILE, broken, ROOT))


def test_dockerignore_matching_follows_docker() -> None:
    patterns = parse_dockerignore("*\n!app/\n**/__pycache__\n!app/keep/__pycache__\ndocs/*.md\n")
    assert ignored(patterns, "tests/x.py")  # `*` takes top-level names and all below them
    assert not ignored(patterns, "app/api/v1/events.py")  # a later `!` puts a tree back
    assert ignored(patterns, "app/__pycache__/x.pyc")  # `**/` also matches no directory
    assert ignored(patterns, "__pycache__/x.pyc")
    assert not ignored(patterns, "app/keep/__pycache__/x.pyc")  # the last match decides
    assert not ignored(parse_dockerignore("docs/*.md\n"), "docs/sub/a.md")  # `*` stays in a segment
    assert ignored(parse_dockerignore("/docs/./a.md\n"), "docs/a.md")  # cleaned like Docker


# --- docker-compose.yml ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return check_compose.load_compose()


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return check_compose.load_schema()


def test_vendored_compose_schema_is_the_release_its_readme_names() -> None:
    readme = (ROOT / "deploy/compose-schema/README.md").read_text()
    digest = hashlib.sha256(check_compose.SCHEMA_FILE.read_bytes()).hexdigest()
    assert f"`{digest}`" in readme


SINGLE = {"app", "postgres", "redis"}
REPLICAS = {"migrate", "app-1", "app-2", "worker", "chroma", "proxy", "postgres", "redis"}


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ((), set()),
        (("single",), SINGLE),
        (("replicas",), REPLICAS),
        (("single", "observability"), SINGLE | {"prometheus", "grafana"}),
        (("replicas", "observability"), REPLICAS | {"prometheus", "grafana"}),
    ],
)
def test_each_profile_starts_exactly_its_services_and_is_valid(
    compose: dict[str, Any], schema: dict[str, Any], profiles: tuple[str, ...], expected: set[str]
) -> None:
    project = check_compose.project_for(compose, frozenset(profiles))
    assert set(project["services"]) == expected
    assert check_compose.schema_errors(project, schema) == []
    assert check_compose.dependency_errors(project) == []
    assert check_compose.sentinel_errors(project) == []
    prometheus = check_compose.load_prometheus()
    assert check_compose.scrape_errors(project, prometheus) == []


def test_replicas_leave_app_out_and_single_leaves_the_replica_services_out(
    compose: dict[str, Any],
) -> None:
    replicas = check_compose.active_services(compose, frozenset({"replicas"}))
    single = check_compose.active_services(compose, frozenset({"single"}))
    assert "app" not in replicas
    assert not {"migrate", "app-1", "app-2", "worker", "chroma"} & single
    assert check_compose.active_services(compose, frozenset()) == set()
    assert check_compose.problems(compose, check_compose.load_schema()) == []


def test_a_service_without_profile_is_reported_as_started_by_every_profile(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    del broken["services"]["app"]["profiles"]
    found = check_compose.problems(broken, schema)
    assert any(p.startswith("replicas: starts") and "extra ['app']" in p for p in found), found
    assert any(p.startswith("(no profile): starts ['app']") for p in found), found


def test_schema_and_dependency_faults_are_reported(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["app"]["restart_policy"] = "always"
    broken["services"]["proxy"]["depends_on"].append("app")
    broken["services"]["app-2"]["environment"]["DB_MIGRATE_ON_START"] = "true"
    found = check_compose.problems(broken, schema)
    assert any("single: services.app: 'restart_policy' does not match" in p for p in found), found
    assert any("replicas: proxy depends on app" in p for p in found), found
    assert any("replicas: app-2 migrates on start" in p for p in found), found


def test_prometheus_must_scrape_every_sentinel_server(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    broken = copy.deepcopy(compose)
    del broken["services"]["app-2"]["networks"]
    broken["services"]["worker"]["networks"] = {"default": {"aliases": ["sentinel-server"]}}
    found = check_compose.problems(broken, schema)
    assert any(
        p.startswith("observability,replicas: Prometheus does not scrape app-2") for p in found
    ), found
    assert any("Prometheus scrapes worker" in p for p in found), found


def test_ci_step_passes() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / ".ci/check-docker")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_required_variable_only_one_profile_uses_is_reported(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    # Compose interpolates the whole file before it picks services: a `${VAR:?}` in Grafana
    # would stop `single` and `replicas` even without `observability`.
    assert check_compose.required_variables(compose) == {"JWT_SECRET", "ACCESS_TOKEN"}
    broken = copy.deepcopy(compose)
    grafana_env = broken["services"]["grafana"]["environment"]
    grafana_env["GF_SECURITY_ADMIN_PASSWORD"] = "${GRAFANA_ADMIN_PASSWORD:?set it in .env}"
    found = check_compose.problems(broken, schema)
    for label in ("single", "replicas"):
        assert f"{label}: Compose stops unless GRAFANA_ADMIN_PASSWORD is set" in "\n".join(found)
    assert not any(p.startswith("observability,") and "Compose stops" in p for p in found)
