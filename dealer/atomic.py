"""Atomic, durable replacement of a file's content."""

import os
from pathlib import Path

import aiofiles
import aiofiles.os

_fsync = aiofiles.os.wrap(os.fsync)


def temp_path(path: Path) -> Path:
    """Name the temporary file that `write_atomic` uses for `path`."""
    return path.with_name(path.name + ".tmp")


async def write_atomic(path: Path, data: bytes) -> os.stat_result:
    """Replace the file at `path` with `data` and return the new file's stat.

    Whenever the process dies, `path` holds either the old or the new
    complete content: the data goes to a temporary file in the same folder,
    is fsynced, renamed over `path`, and the folder is fsynced so that the
    rename itself survives a power cut. Callers must not write the same path
    concurrently, because they share the temporary file.
    """
    temp = temp_path(path)
    try:
        async with aiofiles.open(temp, "wb") as file:
            await file.write(data)
            await file.flush()
            await _fsync(file.fileno())
        await aiofiles.os.replace(temp, path)
    except OSError:
        _remove_quietly(temp)
        raise
    await _fsync_folder(path.parent)
    return await aiofiles.os.stat(path)


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
