"""Two SQLite connections, each on its own thread: every operation is a plain function run on
one of them.

Running a whole transaction as one synchronous function on the connection's own thread makes it
atomic with respect to this process (nothing interleaves) and costs one thread hop per
operation, not one per statement. ``BEGIN IMMEDIATE`` takes the file's write lock up front, so
transactions from several processes serialise instead of failing half-way.

Reads (:meth:`Database.run`) go to a second, read-only connection: WAL lets them run beside
any writer, so a read never queues behind this process's writes waiting for the file's write
lock (with busy workers that wait can last seconds, and an API read would have sat behind it).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs

from genqueue.errors import BackendUnavailableError, ConfigError

T = TypeVar("T")

BUSY_TIMEOUT_MS = 15_000

# Columns added to schema.sql after files were created with it: CREATE TABLE IF NOT EXISTS
# leaves an existing table as it was, so connecting adds each one that is missing.
ADDED_COLUMNS = (
    ("workers", "reason", "TEXT"),
    ("tasks", "resource", "TEXT"),
    ("tasks", "waiting_for", "TEXT"),
    ("tasks", "start_by", "REAL"),
    ("tasks", "cancel_after_s", "REAL"),
    ("tasks", "weight", "REAL NOT NULL DEFAULT 1"),
    ("tasks", "fair_tag", "INTEGER"),
    ("tasks", "ready", "INTEGER NOT NULL DEFAULT 0"),
    ("tasks", "batch_size", "INTEGER"),
    ("tasks", "model", "TEXT"),
    ("workers", "models", "TEXT NOT NULL DEFAULT '[]'"),
    ("tasks", "cache_key", "TEXT"),  # the result cache (expiry.py, genqueue/result_cache.py)
    ("tasks", "webhook", "TEXT"),  # JSON WebhookTarget (webhooks.py)
    ("batches", "webhook", "TEXT"),
    ("api_keys", "tasks_per_minute", "INTEGER"),
    ("api_keys", "in_flight", "INTEGER"),
)
# Indexes on added columns, made once they exist.
ADDED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS tasks_permits ON tasks (resource, lease_expires_at)"
    " WHERE status = 'running' AND resource IS NOT NULL",
    # The line of each queue (fair.py): all of it, the part claim_next walks, parked tasks
    # per resource in the same order, and tasks not in line yet by due time.
    "CREATE INDEX IF NOT EXISTS tasks_line ON tasks (queue, priority DESC, fair_tag, seq)"
    " WHERE status = 'queued' AND ready = 1",
    "CREATE INDEX IF NOT EXISTS tasks_next ON tasks (queue, priority DESC, fair_tag, seq)"
    " WHERE status = 'queued' AND ready = 1 AND waiting_for IS NULL",
    "CREATE INDEX IF NOT EXISTS tasks_parked ON tasks"
    " (waiting_for, queue, priority DESC, fair_tag, seq)"
    " WHERE status = 'queued' AND waiting_for IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS tasks_due ON tasks (queue, not_before)"
    " WHERE status = 'queued' AND ready = 0",
    "DROP INDEX IF EXISTS tasks_waiting",  # parked tasks in age order: tasks_parked now
    "CREATE INDEX IF NOT EXISTS tasks_start_by ON tasks (start_by)"
    " WHERE status = 'queued' AND start_by IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS tasks_cache ON tasks (cache_key, finished_at)"
    " WHERE status = 'succeeded' AND cache_key IS NOT NULL",
)


def path_from_url(url: str) -> Path:
    """``sqlite:///relative/x.db`` or ``sqlite:////absolute/x.db`` -> a Path."""
    prefix = "sqlite:///"
    path = url.partition("?")[0]
    if not path.startswith(prefix) or len(path) == len(prefix):
        raise ConfigError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/file.db)")
    return Path(path[len(prefix) :])


def busy_timeout_s(url: str) -> float:
    """How long a call waits for another process's write lock before the file counts as
    unreachable: ``?busy_timeout_s=`` in the URL, else ``BUSY_TIMEOUT_MS``."""
    values = parse_qs(url.partition("?")[2]).get("busy_timeout_s")
    if not values:
        return BUSY_TIMEOUT_MS / 1000
    try:
        seconds = float(values[-1])
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 600:
        raise ConfigError(f"busy_timeout_s in {url!r} must be a number of seconds in (0, 600]")
    return seconds


class _Connection:
    """One connection and the one thread that uses it."""

    def __init__(self, name: str) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self.conn: sqlite3.Connection | None = None

    def call(self, fn: Callable[[sqlite3.Connection], T], path: Path) -> T:
        if self.conn is None:
            raise BackendUnavailableError(f"SQLite {path} is closed")
        return fn(self.conn)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Database:
    """A SQLite file opened in WAL mode: a writing and a read-only connection, each reached
    through its own single-thread executor."""

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._writer = _Connection(f"sqlite-w:{path.name}")
        self._reader = _Connection(f"sqlite-r:{path.name}")

    @classmethod
    async def open(cls, url: str) -> Database:
        db = cls(path_from_url(url), busy_timeout_s(url))
        db.path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(db._writer.executor, db._connect_writer)
        await loop.run_in_executor(db._reader.executor, db._connect_reader)
        return db

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_s)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout_s * 1000)}")
        return conn

    def _connect_writer(self) -> None:
        conn = self._open()
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives any process crash; only an OS crash or power
        # loss can drop the last commits. FULL would fsync every commit.
        conn.execute("PRAGMA synchronous=NORMAL")
        schema = files("genqueue.backends.sqlite").joinpath("schema.sql").read_text()
        # Under the write lock, so that processes starting together create it once.
        conn.executescript(f"BEGIN IMMEDIATE;\n{schema}\nCOMMIT;")
        transaction(conn, add_columns)
        self._writer.conn = conn

    def _connect_reader(self) -> None:
        conn = self._open()
        conn.execute("PRAGMA query_only=ON")  # a write sent here by mistake fails loudly
        self._reader.conn = conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)``, which only reads, on the reading thread: one consistent
        snapshot per statement, none waiting for the write lock."""
        return await self._on(self._reader, fn)

    async def ping(self) -> None:
        """Answer through the writing thread: the file is reachable for this process when that
        thread gets through, not merely when it can be read (a held write lock reads fine),
        so an outage's prober does not call it back while writes still queue up behind it."""
        await self._on(self._writer, lambda conn: conn.execute("SELECT 1").fetchone())

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` inside one ``BEGIN IMMEDIATE`` transaction."""
        return await self._on(self._writer, lambda conn: transaction(conn, fn))

    async def _on(self, where: _Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(where.executor, where.call, fn, self.path)
        except sqlite3.OperationalError as exc:
            raise BackendUnavailableError(f"SQLite {self.path}: {exc}") from exc

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        for where in (self._reader, self._writer):
            await loop.run_in_executor(where.executor, where.close)
            where.executor.shutdown(wait=True)


def add_columns(conn: sqlite3.Connection) -> None:
    """Bring a file made by an older schema.sql up to date (checked under the write lock)."""
    for table, column, declaration in ADDED_COLUMNS:
        names = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in names:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    for statement in ADDED_INDEXES:
        conn.execute(statement)


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
