"""Owner-only files and directories for stores and media, whatever the process umask."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")
"""Files SQLite keeps next to a database; they hold the same data."""


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) as 0700; an existing directory is left alone."""
    directory = Path(path)
    if not directory.is_dir():
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is masked by the umask
    return directory


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty as 0600 if missing; tighten it (and SQLite's side files) if ours."""
    file = Path(path)
    private_dir(file.parent)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        side = file.with_name(file.name + suffix)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if side.stat().st_uid == os.geteuid():
                os.chmod(side, FILE_MODE)
    return file


def mode_of(path: str | os.PathLike[str]) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(os.stat(path).st_mode)
