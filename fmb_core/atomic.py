"""Write a folder all at once: build it under a temporary name, then rename it into place.

A failure (bad input found late, Ctrl-C, a full disk) leaves no partial output behind and
leaves an earlier result at the same path untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fmb_core.errors import FmbError, ParameterError

MARKER = "manifest.json"
"""A folder holding this file was written by us and may be replaced."""


def check_output_dir(out: Path, force: bool = False) -> Path:
    """Validate `out` as a folder to (re)write; return it as an absolute Path.

    Raises ParameterError when `out` is a file, is a non-empty folder we did not write (unless
    `force`), or its parent cannot be written.
    """
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ParameterError(f"--out {out}: is a file, expected a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists() and not force:
        raise ParameterError(f"--out {out}: folder is not empty and holds no {MARKER}; pass --force to replace it")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise ParameterError(f"--out {out}: parent {parent} is a file")
    return out


@contextlib.contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `out`; on success it replaces `out` in one rename."""
    out = Path(out).absolute()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise FmbError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
