"""Output destinations checked before any work, and writes that fail said loudly.

`check_output_file` / `check_output_dir` run when a command starts (`run --save`, `predict
--out`): the folder must exist or be creatable, be writable (a probe file is created and removed,
so read-only mounts and permissions are both caught), and a file must not be a folder or the
reverse. They raise `OutputError` (one line, exit code 2) naming the path and the fix.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from handpose.errors import OutputError


def _writable_dir(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{what} {folder}: not a folder (a file is in the way)") from None
    except OSError as error:
        reason = error.strerror or error
        raise OutputError(f"{what} {folder}: cannot create it ({reason})") from None
    if not folder.is_dir():
        raise OutputError(f"{what} {folder}: not a folder (a file is in the way)")
    try:
        fd, probe = tempfile.mkstemp(prefix=".handpose-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(
            f"{what} {folder}: not writable ({error.strerror or error}); choose another place"
        ) from None


def check_output_file(path: str | Path, what: str) -> Path:
    """`path` as a file to (over)write: not a folder, in a writable folder; returns it."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path}: is a folder; name a file in it (e.g. {path / 'out'})")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{what} {path}: the file exists and is not writable")
    _writable_dir(path.parent if str(path.parent) else Path("."), what)
    return path


def check_output_dir(path: str | Path, what: str) -> Path:
    """`path` as a folder to write files into (created if missing), writable; returns it."""
    path = Path(path)
    _writable_dir(path, what)
    return path
