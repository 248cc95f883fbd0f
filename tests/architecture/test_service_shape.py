"""Every service has the same composition root and the same route-registration verb.

`app.py` exposes `build_service(settings=None) -> ServiceRuntime`, which `__main__` serves; an
`api.py` registers its routes with `install(app, ...)`, the verb of `openlines.kit.http.routes`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .imports import ROOT

SERVICES = sorted(p.parent for p in ROOT.glob("services/*/src/openlines/*/app.py"))
OTHER_VERBS = {"setup", "register", "add_routes", "build_runtime"}


def _functions(path: Path) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text())
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_there_are_services() -> None:
    assert {p.name for p in SERVICES} >= {"dialogs", "ingest", "outbound", "routing"}


@pytest.mark.parametrize("package", SERVICES, ids=lambda p: p.name)
def test_the_composition_root_is_build_service(package: Path) -> None:
    build = _functions(package / "app.py").get("build_service")
    assert build is not None, f"{package.name}/app.py has no build_service"
    assert [a.arg for a in build.args.args] == ["settings"]
    assert [ast.unparse(d) for d in build.args.defaults] == ["None"]
    assert build.returns is not None and ast.unparse(build.returns) == "ServiceRuntime"
    assert "serve(build_service)" in (package / "__main__.py").read_text()


@pytest.mark.parametrize("package", SERVICES, ids=lambda p: p.name)
def test_routes_are_installed_with_one_verb(package: Path) -> None:
    for module in (package / "app.py", package / "api.py"):
        if module.exists():
            assert not OTHER_VERBS & set(_functions(module)), module
    if (package / "api.py").exists():
        assert "install" in _functions(package / "api.py")
