"""The per-chain manifest records what was deployed and forgets a chain that was restarted."""

import json

from treasury.chain.manifest import load_manifest, manifest_path, record_infrastructure, record_safe, save_manifest


def test_manifest_records_infrastructure_and_safes(safe_infrastructure, make_safe, owners, chain, tmp_path):
    record_infrastructure(tmp_path, chain.provider, safe_infrastructure)
    created = make_safe(owners, 2, salt_nonce=77)
    path = record_safe(tmp_path, chain.provider, created)
    manifest = json.loads(path.read_text())
    assert path == manifest_path(tmp_path, chain.chain_id)
    factory = manifest["infrastructure"]["1.4.1"]["proxy_factory"]
    assert factory["address"] == "0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67" and factory["canonical"]
    safe = manifest["safes"][created.address]
    assert safe["owners"] == [o.address for o in owners] and safe["threshold"] == 2 and safe["salt_nonce"] == 77
    assert safe["transaction"] == created.transaction and safe["code_hash"].startswith("0x")


def test_recording_an_existing_safe_keeps_its_creation_transaction(make_safe, owners, chain, tmp_path):
    created = make_safe(owners, 2, salt_nonce=78)
    record_safe(tmp_path, chain.provider, created)
    again = make_safe(owners, 2, salt_nonce=78)
    manifest = json.loads(record_safe(tmp_path, chain.provider, again).read_text())
    assert manifest["safes"][created.address]["transaction"] == created.transaction


def test_a_manifest_of_another_genesis_is_not_reused(chain, tmp_path):
    stale = load_manifest(tmp_path, chain.provider)
    stale["genesis_hash"] = "0x" + "00" * 32
    stale["safes"]["0x0000000000000000000000000000000000000bad"] = {}
    save_manifest(tmp_path, stale)
    assert load_manifest(tmp_path, chain.provider)["safes"] == {}
