"""The kit's shared test harness: waiting for a marker, tokens, lines files."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
import yaml

from openlines.kit.settings import DEV_JWT_SECRET
from openlines.kit.testing.auth import bearer, token
from openlines.kit.testing.lines import write_lines
from openlines.kit.testing.waiting import eventually


async def test_eventually_returns_the_first_truthy_value_of_a_sync_or_async_check() -> None:
    calls = iter([None, 0, "found"])
    assert await eventually(lambda: next(calls), interval=0) == "found"

    async def ready() -> bool:
        return True

    assert await eventually(ready) is True


async def test_eventually_fails_with_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"waiting for the marker; last: \[\]"):
        await eventually(lambda: [], timeout=0.05, what="the marker")


def test_tokens_carry_the_subject_role_and_lines() -> None:
    claims = jwt.decode(
        token("sue", "supervisor", lines=["demo"]), DEV_JWT_SECRET, algorithms=["HS256"]
    )
    assert (claims["sub"], claims["roles"], claims["lines"]) == ("sue", ["supervisor"], ["demo"])
    assert bearer("ann")["Authorization"].startswith("Bearer ")


def test_a_lines_file_is_written_from_text_or_a_mapping(tmp_path: Path) -> None:
    config = {"operators": [{"id": "ann", "role": "operator"}], "lines": []}
    from_mapping = write_lines(tmp_path, config)
    from_text = write_lines(
        tmp_path, "operators: [{id: ann, role: operator}]\nlines: []\n", "b.yaml"
    )
    assert yaml.safe_load(from_mapping.read_text()) == yaml.safe_load(from_text.read_text())
    assert from_mapping == tmp_path / "lines.yaml"
