"""Users and autos, held in memory and saved to db.json.

Single process: a second server on the same file is refused through a lock
file, not coordinated with.
"""

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import aiofiles
import filelock
import orjson

from dealer.atomic import temp_path, write_atomic
from dealer.document import parse_document, serialize_document
from dealer.errors import (
    AutoExistsError,
    AutoNotFoundError,
    DatabaseFileError,
    DatabaseLockedError,
    DealerError,
    StoreUnavailableError,
    UserExistsError,
)
from dealer.passwords import PasswordHasher

logger = logging.getLogger(__name__)

# How often the file is checked for hand edits while no change is pending, in seconds.
WATCH_INTERVAL = 1.0

def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class Store:
    """The database: dicts in memory, written atomically and durably to one JSON file.

    Every change runs under one asyncio lock and returns only after the file
    holding it has been fsynced. Changes that arrive while a write is on disk
    wait and go to disk together in the next write (group commit). If that
    write fails, its changes are undone in memory and each of their callers
    gets StoreUnavailableError. Reads see only what is on disk: changes
    waiting for their write stay invisible to them.
    """

    def __init__(self, path: Path, hasher: PasswordHasher) -> None:
        self.path = path
        self._hasher = hasher
        # The working copy, which changes edit under the lock before their write.
        self._users: dict[str, str] = {}
        self._autos: dict[str, dict] = {}
        # Shallow copies of the working copy as last written or loaded, for reads.
        # Changes replace an auto's fields dict and never edit it in place.
        self._saved_users: dict[str, str] = {}
        self._saved_autos: dict[str, dict] = {}
        self._autos_json: bytes | None = None

        self._lock = asyncio.Lock()
        self._file_lock = filelock.FileLock(path.with_name(path.name + ".lock"))
        # Identity of the file content that memory reflects, to notice hand edits.
        self._disk_signature: tuple[int, int, int] | None = None
        # A hand edit that could not be loaded, kept so that it is logged once.
        self._rejected_signature: tuple[int, int, int] | None = None
        self._rejected_error: DatabaseFileError | None = None
        self._last_rewrite_error: str | None = None

        # Changes applied to the working copy and not yet written.
        self._pending_changes = 0
        self._pending_done: asyncio.Future | None = None
        self._flusher: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self.changes_written = 0
        self.flushes = 0

    # Opening and closing

    async def open(self) -> None:
        """Lock the file for this process, then load it, creating it when missing."""
        if not self.path.parent.is_dir():
            raise DatabaseFileError(f"{self.path}: the folder {self.path.parent} does not exist; create it first")
        if self.path.is_dir():
            raise DatabaseFileError(f"{self.path} is a folder; name a file, such as {self.path / 'db.json'}")
        try:
            self._file_lock.acquire(blocking=False)
        except filelock.Timeout:
            raise DatabaseLockedError(
                f"{self.path} is already used by another dealer server "
                f"(lock file {self._file_lock.lock_file}); stop it or pass another --db"
            ) from None
        except OSError as error:
            raise DatabaseFileError(f"{self.path}: cannot create the lock file: {error.strerror}") from None

        try:
            await self._load_or_create()
        except BaseException:
            self._file_lock.release()
            raise
        self._watcher = asyncio.create_task(self._watch())

    async def _load_or_create(self) -> None:
        stale = temp_path(self.path)
        if stale.exists():
            logger.warning("Removing %s left by an interrupted write", stale)
            try:
                stale.unlink()
            except OSError as error:
                raise DatabaseFileError(f"{stale}: cannot remove the temporary file: {error.strerror}") from None

        try:
            if self.path.exists():
                await self._load()
            else:
                await self._write()
                logger.info("Created an empty database in %s", self.path)
        except OSError as error:
            raise DatabaseFileError(f"{self.path}: cannot write: {error.strerror}") from None
        logger.info("Loaded %d users and %d autos from %s", len(self._users), len(self._autos), self.path)

    async def close(self) -> None:
        """Stop watching the file, let a write in progress finish, and release the file lock."""
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._file_lock.release()
        logger.info("Closed %s: wrote %d changes in %d flushes", self.path, self.changes_written, self.flushes)

    # Reads

    @property
    def user_count(self) -> int:
        return len(self._saved_users)

    @property
    def auto_count(self) -> int:
        return len(self._saved_autos)

    def has_user(self, username: str) -> bool:
        return username in self._saved_users

    def password_hash(self, username: str) -> str | None:
        return self._saved_users.get(username)

    def get_auto(self, mark: str) -> dict | None:
        """Return the auto with its mark as the first key, or None."""
        fields = self._saved_autos.get(mark)
        if fields is None:
            return None
        return {"mark": mark, **fields}

    def autos_json(self) -> bytes:
        """Return all autos as a JSON array in stored order, serialized once per write."""
        if self._autos_json is None:
            autos = [{"mark": mark, **fields} for mark, fields in self._saved_autos.items()]
            self._autos_json = orjson.dumps(autos)
        return self._autos_json

    # Changes

    async def add_user(self, username: str, password_hash: str) -> None:
        def apply() -> None:
            if username in self._users:
                raise UserExistsError()
            self._users[username] = password_hash

        await self._commit(apply)

    async def create_auto(self, mark: str, fields: dict) -> None:
        def apply() -> None:
            if mark in self._autos:
                raise AutoExistsError()
            self._autos[mark] = dict(fields)

        await self._commit(apply)

    async def update_auto(self, mark: str, fields: dict) -> None:
        def apply() -> None:
            previous = self._autos.get(mark)
            if previous is None:
                raise AutoNotFoundError()
            self._autos[mark] = {**previous, **fields}

        await self._commit(apply)

    async def delete_auto(self, mark: str) -> None:
        def apply() -> None:
            if mark not in self._autos:
                raise AutoNotFoundError()
            del self._autos[mark]

        await self._commit(apply)

    async def _commit(self, apply: Callable[[], None]) -> None:
        """Apply a change in memory and wait until a write has put it on disk.

        A change rejected because of changes that are still waiting for their
        write (a create after a pending create of the same mark) waits for
        that write too: if the write fails, the change is decided again.
        """
        while True:
            async with self._lock:
                if not self._pending_changes:
                    # Pending changes were applied on top of the file as it is now,
                    # so only the first change of a batch needs to look at the disk.
                    await self._sync_with_disk()
                rejection: DealerError | None = None
                try:
                    apply()
                except DealerError as error:
                    if self._pending_done is None:
                        raise
                    rejection = error
                else:
                    self._pending_changes += 1
                    if self._pending_done is None:
                        self._pending_done = asyncio.get_running_loop().create_future()
                    if self._flusher is None:
                        self._flusher = asyncio.create_task(self._flush_pending())
                done = self._pending_done

            try:
                # Shielded so that a client who disconnects cannot cancel the others' result.
                await asyncio.shield(done)
            except StoreUnavailableError:
                if rejection is None:
                    raise
                continue
            if rejection is not None:
                raise rejection
            return

    async def _flush_pending(self) -> None:
        """Write pending changes until none are left; each write takes all that queued during the last one."""
        try:
            while True:
                async with self._lock:
                    if not self._pending_changes:
                        return
                    changes, self._pending_changes = self._pending_changes, 0
                    done, self._pending_done = self._pending_done, None
                    await self._write_batch(changes, done)
        finally:
            self._flusher = None
            if self._pending_changes:
                # Only reached when this task is cancelled while it waits for the lock.
                error = StoreUnavailableError("The change was not saved because the server is stopping")
                self._fail_batch(self._pending_done, error)
                self._pending_changes, self._pending_done = 0, None

    async def _write_batch(self, changes: int, done: asyncio.Future) -> None:
        """Write the working copy; on failure undo its `changes` and pass the error to their callers through `done`."""
        try:
            await self._write(before_replace=self._check_not_edited)
        except (OSError, StoreUnavailableError) as error:
            logger.error("Failed to write %s, so %d changes were undone: %s", self.path, changes, error)
            if isinstance(error, OSError):
                error = StoreUnavailableError(
                    f"Could not save to {self.path}: {error.strerror or error}; nothing was changed"
                )
            self._fail_batch(done, error)
        except BaseException as error:
            self._fail_batch(done, error)
            raise
        else:
            self.changes_written += changes
            done.set_result(None)

    def _fail_batch(self, done: asyncio.Future, error: BaseException) -> None:
        """Reset the working copy to the saved copy, undoing every pending change, and fail their callers."""
        # The saved copy is the state before the batch, because a batch
        # takes all pending changes and none can start during its write.
        self._users = dict(self._saved_users)
        self._autos = dict(self._saved_autos)
        if not done.done():
            done.set_exception(error)
            # Retrieved here too, in case every caller has gone.
            done.exception()

    def _check_not_edited(self) -> None:
        """Raise StoreUnavailableError if the file was edited after the pending changes began."""
        try:
            signature = _signature(os.stat(self.path))
        except FileNotFoundError:
            return
        if signature != self._disk_signature:
            raise StoreUnavailableError(
                f"{self.path} was edited while the change was being saved; nothing was changed, try again"
            )

    async def _write(self, before_replace: Callable[[], None] | None = None) -> None:
        data = serialize_document(self._users, self._autos)
        stat = await write_atomic(self.path, data, before_replace)
        self._disk_signature = _signature(stat)
        self._publish()
        self.flushes += 1

    def _publish(self) -> None:
        """Show the working copy to reads; called once it is what the file holds."""
        self._saved_users = dict(self._users)
        self._saved_autos = dict(self._autos)
        self._autos_json = None

    # Hand edits

    async def _load(self) -> None:
        """Replace memory with the file's content, hashing plaintext passwords seeded by hand."""
        try:
            async with aiofiles.open(self.path, "rb") as file:
                # Taken before reading: an edit saved during the read then
                # differs from it, and the next check loads the file again.
                signature = _signature(os.fstat(file.fileno()))
                raw = await file.read()
        except OSError as error:
            raise DatabaseFileError(f"{self.path}: cannot read: {error.strerror}") from None
        users, autos, plaintext = parse_document(raw, self.path)

        for username in plaintext:
            users[username] = await self._hasher.hash(users[username])

        self._users, self._autos = users, autos
        self._disk_signature = signature
        self._publish()
        if plaintext:
            try:
                await self._write()
            except OSError:
                # The file still contains plaintext passwords: load it again,
                # and so retry the rewrite, at the next check.
                self._disk_signature = None
                raise
            logger.warning(
                "Hashed the plaintext passwords of %d users seeded by hand (%s) and rewrote %s",
                len(plaintext),
                ", ".join(sorted(plaintext)),
                self.path,
            )

    async def _sync_with_disk(self) -> None:
        """Reload the file if it changed since this process last wrote or read it.

        Raise StoreUnavailableError while the file contains an edit that cannot
        be loaded; memory then keeps the last good data for reads.
        """
        try:
            signature = _signature(os.stat(self.path))
        except FileNotFoundError:
            if self._disk_signature is not None:
                logger.warning("%s was deleted; the next change writes it again from memory", self.path)
                self._disk_signature = None
            return
        except OSError as error:
            raise StoreUnavailableError(f"Cannot read {self.path}: {error.strerror}") from None

        if signature == self._disk_signature:
            return
        if signature == self._rejected_signature:
            raise self._edit_unavailable(self._rejected_error)

        try:
            await self._load()
        except DatabaseFileError as error:
            self._rejected_signature, self._rejected_error = signature, error
            logger.error("Failed to load the hand edit, so changes are rejected until it is fixed: %s", error)
            raise self._edit_unavailable(error) from None
        except OSError as error:
            message = f"Could not save to {self.path}: {error.strerror or error}"
            if message != self._last_rewrite_error:
                # Logged once per cause, although the watcher retries every second.
                logger.error("Failed to rewrite the hand edit with hashed passwords. %s", message)
                self._last_rewrite_error = message
            raise StoreUnavailableError(message) from None

        self._rejected_signature = self._rejected_error = None
        self._last_rewrite_error = None
        logger.info(
            "Reloaded %s after a hand edit: %d users and %d autos", self.path, len(self._users), len(self._autos)
        )

    @staticmethod
    def _edit_unavailable(error: DatabaseFileError | None) -> StoreUnavailableError:
        return StoreUnavailableError(f"{error}; fix the file, then retry the change")

    async def _watch(self) -> None:
        """Pick up hand edits for readers while no change is pending."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            async with self._lock:
                if self._pending_changes:
                    continue
                try:
                    await self._sync_with_disk()
                except StoreUnavailableError:
                    pass  # Logged when first seen; changes report it to their clients.
                except Exception:
                    logger.exception("Failed to check %s for hand edits", self.path)
