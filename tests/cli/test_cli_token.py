"""`openlines token`: the printed JWT is accepted by the kit's authenticator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openlines.cli.main import build_parser
from openlines.kit.http.auth import Authenticator, Principal
from openlines.kit.http.errors import ApiError
from openlines.kit.settings import DEV_JWT_SECRET, KitSettings

DEMO_LINES = str(Path(__file__).resolve().parents[2] / "config" / "demo.yaml")


def _token(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    args = build_parser().parse_args(["token", *argv, "--lines-file", DEMO_LINES])
    assert args.handler(args) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out  # only the token: `TOKEN=$(openlines token ann)` works
    return out


async def _decode(token: str, secret: str = DEV_JWT_SECRET) -> Principal:
    return await Authenticator(KitSettings(jwt_secret=secret)).decode(token)


@pytest.fixture(autouse=True)
def _no_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLINES_JWT_SECRET", raising=False)


async def test_role_comes_from_the_lines_config(capsys: pytest.CaptureFixture[str]) -> None:
    ann = await _decode(_token(capsys, "ann"))
    assert (ann.operator_id, ann.roles, ann.lines) == ("ann", frozenset({"operator"}), None)
    sue = await _decode(_token(capsys, "sue"))
    assert sue.roles == {"supervisor"} and sue.is_supervisor


async def test_role_and_lines_can_be_given(capsys: pytest.CaptureFixture[str]) -> None:
    admin = await _decode(_token(capsys, "ann", "--role", "admin", "--line", "demo"))
    assert admin.roles == {"admin"}
    assert admin.lines == {"demo"}


async def test_unknown_operator_gets_operator_role_and_a_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["token", "zed", "--lines-file", DEMO_LINES])
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    assert "not in the lines config" in captured.err
    assert (await _decode(captured.out.strip())).roles == {"operator"}


async def test_ttl_sets_the_expiry(capsys: pytest.CaptureFixture[str]) -> None:
    import jwt

    claims = jwt.decode(_token(capsys, "ann", "--ttl", "90s"), DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 90
    claims = jwt.decode(_token(capsys, "ann", "--ttl", "2d"), DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 2 * 86400


@pytest.mark.parametrize("ttl", ["0", "soon", "12y", "-5m"])
def test_invalid_ttl_is_a_usage_error(ttl: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["token", "ann", f"--ttl={ttl}"])
    assert exited.value.code == 2
    assert "invalid ttl" in capsys.readouterr().err


async def test_secret_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "a-deployment-secret-of-at-least-32-bytes"
    monkeypatch.setenv("OPENLINES_JWT_SECRET", secret)
    token = _token(capsys, "bob")
    assert (await _decode(token, secret)).operator_id == "bob"
    with pytest.raises(ApiError) as rejected:
        await _decode(token)  # the dev secret no longer verifies it
    assert rejected.value.code == "invalid_token"


@pytest.mark.infra  # processes of its own
def test_command_modules_import_nothing_heavy() -> None:
    # Every `openlines` call imports every command module: they must stay light.
    code = (
        "import sys, openlines.cli.commands.token, openlines.cli.commands.say, "
        "openlines.cli.commands.tail; "
        "print(sorted(m for m in ('aiokafka', 'aiohttp', 'pydantic', 'rich', 'jwt') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
