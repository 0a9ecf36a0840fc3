"""The `.env` file format: the small subset every tool agrees on."""

from __future__ import annotations

import re

__all__ = ["parse_dotenv"]


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse the simple `.env` format: KEY=VALUE lines, `#` comments, optional quotes, `export`."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key.strip()] = value
    return values
