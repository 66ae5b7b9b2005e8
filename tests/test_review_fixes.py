"""Regressions found by reading the store/layout change: the Safe version a hash is computed for,
a PostgreSQL connection the server dropped, and a store path with a home folder in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from store_db import StoreDB
from test_store import propose

from treasury.decode.hashes import safe_tx_hashes
from treasury.errors import InvalidInput
from treasury.treasury import Treasury

SAFE = "0x" + "11" * 20
ZERO = "0x" + "00" * 20


@pytest.mark.parametrize("version", ["1.3", "1.0", "1.3.0+L2", "v1.4.1", "1.4.1.0", "\uff11.4.1"])
def test_offline_hashes_refuse_a_version_that_is_not_major_minor_patch(version: str):
    """"1.3" used to compare below (1, 3, 0) and silently give the pre-1.3 domain: another safeTxHash."""
    fields = dict(to=SAFE, value=0, data=b"", operation=0, safe_tx_gas=0, base_gas=0, gas_price=0,
                  gas_token=ZERO, refund_receiver=ZERO, nonce=0)
    with pytest.raises(InvalidInput, match=r"is not like 1\.4\.1"):
        safe_tx_hashes(safe=SAFE, chain_id=1, version=version, **fields)


def test_a_write_after_postgresql_dropped_the_connection_succeeds(postgres_db: StoreDB):
    """A long-lived process (execute waiting for confirmations, a console) keeps pooled connections;
    a server that ends one must not make the next write fail."""
    with postgres_db.open() as store:
        propose(store, 1)
        admin = create_engine(postgres_db.url, poolclass=NullPool)
        with admin.connect() as conn:
            ended = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND application_name NOT LIKE 'pg_%'"
            )).scalar()
        admin.dispose()
        assert ended >= 1  # the store's pooled connection was among them
        propose(store, 2)
        assert [p.nonce for p in store.list_proposals()] == [1, 2]


def test_a_store_path_under_home_is_expanded_not_created_literally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`store: ~/treasury/t.db` is a file in the home folder, never a folder named "~" in the project."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("APE_TREASURY_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "ape-config.yaml"
    config.write_text(f"treasury:\n  store: ~/treasury/t.db\n  treasuries:\n    ops: {{safe: '{SAFE}', chain_id: 1}}\n")
    treasury = Treasury.load("ops", config)
    treasury.store.close()
    assert (tmp_path / "home" / "treasury" / "t.db").is_file()
    assert not (tmp_path / "~").exists()
