"""Where a store lives: turning a path or URL into a configured SQLAlchemy engine, per backend.

The store runs on any SQLAlchemy URL; two backends are tested and tuned:
- SQLite (the embedded default): a file path or `sqlite:///...`. Every connection gets WAL (readers
  proceed while one writer writes), a busy timeout (a blocked writer waits instead of failing at
  once), foreign keys and synchronous=FULL (a commit survives power loss, not just a killed
  process). Writers start with `BEGIN IMMEDIATE`, taking the write lock before they read the audit
  head, so two writers can never append after the same entry.
- PostgreSQL (a team's shared store): `postgresql://...` runs on psycopg 3. Writers serialize on a
  row lock of the audit head (READ COMMITTED: after the lock every statement sees the last commit);
  `lock_timeout` bounds the wait like SQLite's busy timeout. Reads run REPEATABLE READ, READ ONLY,
  so a multi-query read (verify_audit_log) sees one snapshot even while others write.
A URL's password never appears in an error message or a repr: see `redact`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from treasury.errors import InvalidInput

# Errors that mean "another writer is busy, try again": SQLite's lock messages and PostgreSQL's
# serialization_failure, deadlock_detected and lock_not_available.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@]*):(?P<password>[^@]*)@")


def redact(text: str, secret: str | None = None) -> str:
    """`text` without any URL password (user:password@ becomes user:***@) and without `secret`."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    if secret:
        text = text.replace(secret, "***")
    return text


def store_url(url_or_path: str | Path) -> URL:
    """Parse where the store lives: a SQLite file path, ':memory:', or any SQLAlchemy URL.

    A plain `postgresql://` (or `postgres://`) URL is given the psycopg 3 driver. A SQLite file's
    folder is created if missing, so a new project's first command just works.
    """
    if isinstance(url_or_path, Path):
        return _sqlite_file(url_or_path)
    if not isinstance(url_or_path, str) or not url_or_path.strip():
        raise InvalidInput(f"store location must be a database URL or a file path, got {url_or_path!r}")
    text = url_or_path.strip()
    if text == ":memory:":
        return make_url("sqlite://")
    if "://" not in text:
        return _sqlite_file(Path(text))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise InvalidInput(f"store URL {redact(text)!r} is not a valid SQLAlchemy URL") from None
    if url.drivername in _DRIVERS:
        url = url.set(drivername=_DRIVERS[url.drivername])
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        _make_parent(Path(url.database))
    return url


def _sqlite_file(path: Path) -> URL:
    resolved = path.expanduser().resolve()
    _make_parent(resolved)
    return make_url("sqlite:///" + str(resolved))


def _make_parent(database: Path) -> None:
    parent = database.parent
    if parent.is_dir():
        return
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create the store {database}: cannot create folder {parent} ({exc.strerror})") from None


def create_store_engine(url: URL, busy_timeout: float) -> Engine:
    """An engine for `url`, set up for the store's locking on SQLite and PostgreSQL."""
    try:
        # A server may drop an idle connection (a long `execute` waiting for confirmations, a console):
        # test each pooled connection before use rather than fail the write that follows.
        engine = create_engine(url, pool_pre_ping=url.get_backend_name() != "sqlite")
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        hint = " (pip install 'ape-treasury[postgres]')" if url.get_backend_name() == "postgresql" else ""
        shown = url.render_as_string(hide_password=True)
        raise InvalidInput(f"store URL {shown!r} needs a database driver that is not installed{hint}: {exc}") from None
    except ArgumentError as exc:
        raise InvalidInput(f"store URL {url.render_as_string(hide_password=True)!r}: {redact(str(exc), url.password)}") from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout)
    elif engine.dialect.name == "postgresql":
        _configure_postgresql(engine, busy_timeout)
    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    """WAL, busy timeout, foreign keys and synchronous=FULL on every connection; explicit BEGINs.

    pysqlite's own transaction handling is switched off (isolation_level=None) so the begin event
    can issue `BEGIN IMMEDIATE` for writes: the write lock is taken before the audit head is read.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("treasury_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")


def _configure_postgresql(engine: Engine, busy_timeout: float) -> None:
    """A lock wait longer than the busy timeout fails with lock_not_available (retried, then StoreBusy)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET lock_timeout = {max(1, int(busy_timeout * 1000))}")
        finally:
            cursor.close()
        dbapi_connection.commit()


def transaction_options(dialect: str, *, write: bool) -> dict[str, Any]:
    """Execution options for one store transaction on this dialect (see the module docstring)."""
    if dialect == "postgresql":
        if write:
            return {"treasury_write": True, "isolation_level": "READ COMMITTED"}
        return {"treasury_write": False, "isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    return {"treasury_write": write}


def is_transient(exc: BaseException) -> bool:
    """Whether a database error means "another writer is busy, try again"."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).lower()
    if any(busy in text for busy in _SQLITE_BUSY):
        return True
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code in _TRANSIENT_SQLSTATES
