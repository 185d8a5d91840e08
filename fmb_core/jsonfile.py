"""Versioned JSON files (checkpoint configs, preference indexes, reward models): read one and
check its schema and required entries, with errors that name the file and the fault."""

from __future__ import annotations

import json
from pathlib import Path

from fmb_core.errors import FmbError


def read_versioned(
    file: Path, schema: str, required: tuple[str, ...], error: type[FmbError], missing_hint: str = ""
) -> dict:
    """The parsed `file`, a dict whose "schema" is `schema` and that holds every `required` key.

    Raises `error` naming the file: missing (with `missing_hint` appended), not JSON, another
    schema, or an entry missing."""
    file = Path(file)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise error(f"{file}: missing{missing_hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{file}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("schema") != schema:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise error(f"{file}: schema {found!r}, expected {schema!r}")
    for key in required:
        if key not in data:
            raise error(f"{file}: no {key!r} entry")
    return data
