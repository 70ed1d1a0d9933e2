"""Atomic, durable replacement of a file's content."""

import os
from collections.abc import Callable
from pathlib import Path

import aiofiles
import aiofiles.os

_fsync = aiofiles.os.wrap(os.fsync)


def temp_path(path: Path) -> Path:
    """Name the temporary file that `write_atomic` uses for `path`."""
    return path.with_name(path.name + ".tmp")


async def write_atomic(
    path: Path, data: bytes, before_replace: Callable[[], None] | None = None
) -> os.stat_result:
    """Replace the file at `path` with `data` and return the new file's stat.

    Whenever the process dies, `path` contains either the old or the new
    complete content. The data goes to a temporary file in the same folder,
    which is fsynced and renamed over `path`. Then the folder is fsynced, so
    that the rename itself survives a power cut. `before_replace` runs just before
    the rename; if it raises, `path` is left as it was. Callers must not
    write the same path concurrently, because they share the temporary file.
    """
    temp = temp_path(path)
    try:
        async with aiofiles.open(temp, "wb") as file:
            await file.write(data)
            await file.flush()
            await _fsync(file.fileno())
            # Taken from the descriptor, so that a file saved over `path`
            # right after the rename cannot be mistaken for this one.
            stat = os.fstat(file.fileno())
        if before_replace is not None:
            before_replace()
        await aiofiles.os.replace(temp, path)
    except BaseException:
        _remove_quietly(temp)
        raise
    # NOTE: if this fsync fails, the new content is already in place although
    # the caller gets an error saying that the write failed.
    await _fsync_folder(path.parent)
    return stat


async def _fsync_folder(folder: Path) -> None:
    if os.name == "nt":
        # Windows cannot open a folder as a file; NTFS journals the rename.
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        await _fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
