"""The README's examples run (docs that cannot rot)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("code", BLOCKS)
def test_readme_example(code: str) -> None:
    exec(compile(code, str(README), "exec"), {})
