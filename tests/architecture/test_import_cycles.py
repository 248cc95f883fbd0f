"""No import cycles among the openlines modules.

A cycle means two modules that cannot be understood, tested or moved apart; a function-level
import that dodges the circular-import error at run time is still one (see imports.py).
"""

from __future__ import annotations

from pathlib import Path

from .imports import cycles, graph, imports_of


def test_the_openlines_modules_import_each_other_without_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_function_level_imports_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from openlines.kit import runtime\n"
        "def later():\n"
        "    from ..other import thing\n"
    )
    found = {imp.target for imp in imports_of("openlines.pkg.mod", module)}
    assert found == {"typing.TYPE_CHECKING", "openlines.pkg.sibling", "openlines.other.thing"}


def test_the_real_graph_has_the_edges_it_should() -> None:
    edges = graph()
    # kit.http.app imports routes at module level; codec reads envelope; nothing goes back.
    assert "openlines.kit.http.routes" in edges["openlines.kit.http.app"]
    assert "openlines.events.envelope" in edges["openlines.events.codec"]
    assert "openlines.events.codec" not in edges["openlines.events.envelope"]
    # A function-level import is an edge: contract imports the services' APIs lazily.
    assert "openlines.dialogs.api" in edges["openlines.stack.contract"]
