"""Creating the schema and moving older stores forward, one registered function per version step.

`MIGRATIONS[n]` turns a version-n store into a version-(n+1) one. Store.open runs every step a
store needs in ONE write transaction (audit head locked, version re-read under the lock), bumping
`schema_version` and writing a `store.migrated` audit entry after each: DDL is transactional on
SQLite and PostgreSQL, so a crash part-way leaves the store wholly at its old version, and two
processes opening the same old store migrate it once. Adding a version is: bump SCHEMA_VERSION,
change the models, and register the step with `@migration(old_version)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from treasury.errors import TreasuryError
from treasury.store.errors import SchemaTooNew
from treasury.store.integrity import GENESIS_HASH
from treasury.store.schema import (
    SCHEMA_VERSION,
    AuditHeadRow,
    Base,
    BroadcastRow,
    DelegateProofRow,
    DelegateRow,
    DraftRow,
    DrillRow,
    MessageRow,
    MessageSignatureRow,
    MetaRow,
    OwnerProofRow,
    ProposalRow,
    RehearsalRow,
    SignatureRow,
    Uint256,
)
from treasury.store.transaction import WriteTx

MIGRATION_ACTOR = "ape-treasury"  # the audit actor of a migration: no user asked for it by name
# Any constant works: it names the advisory lock that serializes schema creation on PostgreSQL.
_CREATE_LOCK = 0x7472_6561_7375_7279  # "treasury"

Migration = Callable[[WriteTx], None]
MIGRATIONS: dict[int, Migration] = {}


def migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register `step` as the migration from `from_version` to `from_version + 1`."""

    def register(step: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise RuntimeError(f"two migrations from schema version {from_version}")
        MIGRATIONS[from_version] = step
        return step

    return register


@migration(1)
def add_broadcasts_and_rehearsals(tx: WriteTx) -> None:
    """Version 2 adds the `broadcasts` and `rehearsals` tables; no existing row changes.

    The tables are built from the current models. When a later version alters either table, this
    step must go on creating the version-2 shape and leave the change to the step after it.
    """
    tables = [Base.metadata.tables[BroadcastRow.__tablename__], Base.metadata.tables[RehearsalRow.__tablename__]]
    Base.metadata.create_all(tx.session.connection(), tables=tables)


_V2_SIGNATURE_COLUMNS = ("id", "proposal_id", "owner", "kind", "signature", "created_at", "content_hash")
_V3_SIGNATURE_COLUMNS = (*_V2_SIGNATURE_COLUMNS, "purpose", "signed_hash", "intent_nonce", "entry_id")


def _rebuild_signatures(tx: WriteTx, columns: tuple[str, ...], added: dict[str, Any]) -> None:
    """Rebuild the signatures table in the current model's shape, keeping every row's `columns`.

    SQLite cannot add a CHECK or drop a UNIQUE constraint in place, and a rebuilt table has
    exactly the DDL a fresh store has. The rows are read, the table dropped and created from the
    current model, and every row written back with its id, bytes and content hash unchanged plus
    the `added` values; on PostgreSQL the id sequence is then moved past the highest id.
    """
    conn = tx.session.connection()
    table = Base.metadata.tables[SignatureRow.__tablename__]
    # Read as the stored text and bound back through the model's types: a uint256 goes back as its number.
    uints = {c.name for c in table.columns if isinstance(c.type, Uint256)}
    rows = [
        {k: (int(v) if k in uints and v is not None else v) for k, v in row._mapping.items()}
        for row in conn.execute(text(f"SELECT {', '.join(columns)} FROM signatures ORDER BY id"))
    ]
    conn.execute(text("DROP TABLE signatures"))
    table.create(conn)
    if rows:
        conn.execute(table.insert(), [{**row, **added} for row in rows])
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT setval(pg_get_serial_sequence('signatures', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM signatures"))


@migration(2)
def add_signature_purposes(tx: WriteTx) -> None:
    """Version 3: a signature says what it is over (purpose, signed hash, intent nonce, entry id).

    Every version-2 row is kept as a "safe_tx" signature with no signed hash (the form
    signature/v1 hashes). The table is rebuilt from the current model; a later step that alters
    it rebuilds it again from the version-3 columns, so whatever this creates beyond them is
    replaced there.
    """
    _rebuild_signatures(tx, _V2_SIGNATURE_COLUMNS, {"purpose": "safe_tx", "signed_hash": None, "intent_nonce": None, "entry_id": None})


@migration(3)
def add_verifiers_delegates_and_messages(tx: WriteTx) -> None:
    """Version 4: signatures say how they were verified; delegates and signed messages (the server).

    Every version-3 signature was recovered against the chain's owners: it becomes "chain" (the
    column is outside the content hash, so no hash changes). Proposals get an index on their
    safeTxHash alone. The new tables are created from the current models; when a later version alters one of them, this step must go on
    creating the version-4 shape and leave the change to the step after it.
    """
    _rebuild_signatures(tx, _V3_SIGNATURE_COLUMNS, {"verified_by": "chain"})
    by_hash = next(i for i in Base.metadata.tables[ProposalRow.__tablename__].indexes if i.name == "ix_proposals_safe_tx_hash")
    by_hash.create(tx.session.connection(), checkfirst=True)
    tables = [Base.metadata.tables[row.__tablename__] for row in (DelegateRow, DelegateProofRow, MessageRow, MessageSignatureRow)]
    Base.metadata.create_all(tx.session.connection(), tables=tables)


@migration(4)
def add_drafts(tx: WriteTx) -> None:
    """Version 5 adds the `drafts` table (denied proposals kept without a nonce); no existing row changes.

    Created from the current model; when a later version alters the table, this step must go on
    creating the version-5 shape and leave the change to the step after it.
    """
    Base.metadata.create_all(tx.session.connection(), tables=[Base.metadata.tables[DraftRow.__tablename__]])


@migration(5)
def add_drills(tx: WriteTx) -> None:
    """Version 6 adds the `drills` and `owner_proofs` tables (recovery drills); no existing row changes.

    Created from the current models; when a later version alters either table, this step must go on
    creating the version-6 shape and leave the change to the step after it.
    """
    tables = [Base.metadata.tables[row.__tablename__] for row in (DrillRow, OwnerProofRow)]
    Base.metadata.create_all(tx.session.connection(), tables=tables)


def schema_version(session: Session, shown_url: str) -> int | None:
    """The stored schema version (None: no schema yet); refuses versions it cannot handle."""
    if not inspect(session.connection()).has_table(MetaRow.__tablename__):
        return None
    stored = session.get(MetaRow, "schema_version")
    if stored is None:
        return None
    try:
        version = int(stored.value)
    except ValueError:
        raise TreasuryError(f"store {shown_url} has an unreadable schema_version {stored.value!r}") from None
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"store {shown_url} has schema version {version}, newer than this ape-treasury "
            f"understands ({SCHEMA_VERSION}); upgrade ape-treasury"
        )
    if any(step not in MIGRATIONS for step in range(version, SCHEMA_VERSION)):
        raise TreasuryError(f"store {shown_url} has schema version {version}; no migration to {SCHEMA_VERSION} exists")
    return version


def complete_version(session: Session, shown_url: str) -> int | None:
    """The schema version of a fully created store (version row and audit head), None while there is none."""
    version = schema_version(session, shown_url)
    if version is None or session.get(AuditHeadRow, 1) is None:
        return None
    return version


def create_schema(session: Session, shown_url: str) -> None:
    """Create every table, the `schema_version` row and the audit head, inside the caller's write transaction.

    Re-checks under the lock, so of several processes creating one store at once, one does the work.
    On PostgreSQL that lock is a transaction-scoped advisory lock (there is no audit head to lock yet).
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
    if schema_version(session, shown_url) is None:
        Base.metadata.create_all(conn)
        session.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
    if session.get(AuditHeadRow, 1) is None:
        session.add(AuditHeadRow(id=1, seq=0, entry_hash=GENESIS_HASH))


def migrate(tx: WriteTx, shown_url: str) -> None:
    """Run every step from the stored version up to SCHEMA_VERSION, each audited as `store.migrated`."""
    version = schema_version(tx.session, shown_url)
    if version is None:  # pragma: no cover - a complete store does not lose its version row
        raise TreasuryError(f"store {shown_url} lost its schema_version while being migrated")
    meta = tx.session.get(MetaRow, "schema_version")
    assert meta is not None
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](tx)
        meta.value = str(version + 1)
        tx.session.flush()
        tx.audit(MIGRATION_ACTOR, "store.migrated", None, {"from": version, "to": version + 1})
        version += 1
