"""The one way tests write a lines file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_lines(directory: Path, config: str | dict[str, Any], name: str = "lines.yaml") -> Path:
    """Write `config` (YAML text, or the mapping it stands for) to `directory/name`."""
    path = directory / name
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    path.write_text(text)
    return path
