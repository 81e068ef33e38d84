"""The floors of `app/` (issue 24, point 1): `scripts/import_graph.py` finds no upward import,
no cycle and no router past the services in the code, and does find each kind when a tree
holds one."""

from __future__ import annotations

from pathlib import Path

from scripts.import_graph import check, floor


def test_the_code_keeps_its_floors():
    report = check()
    assert report.clean, "\n".join(report.lines())


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_check_finds_upward_imports_cycles_and_routers_past_the_services(tmp_path: Path):
    root = _tree(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/core/__init__.py": "",
            # Upward, but lazily inside a function: still counts.
            "app/core/settings.py": "def f():\n    from app.services.a import x\n",
            "app/services/__init__.py": "",
            "app/services/a.py": "from app.services import b\nx = 1\n",
            "app/services/b.py": "from .a import x\n",  # a <-> b, relatively
            "app/models/__init__.py": "",
            "app/models/user.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from app.schemas.users import Out\n",  # annotations only
            "app/schemas/__init__.py": "",
            "app/schemas/users.py": "Out = 1\n",
            "app/api/__init__.py": "",
            "app/api/v1.py": "from app.models.user import *\nfrom app.schemas.users import Out\n",
        },
    )
    report = check(root)
    assert report.upward == [("app.core.settings", "app.services.a")]
    assert report.cycles == [["app.services.a", "app.services.b"]]
    assert report.past_services == [("app.api.v1", "app.models.user")]
    assert not report.clean


def test_every_module_of_the_app_has_a_floor():
    from scripts.import_graph import ROOT, modules

    assert [name for name in modules(ROOT) if name != "app" and floor(name) is None] == []
