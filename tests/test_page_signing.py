"""The typed data the signing page hands the wallet (treasury.server.pages.signing), server side.

For Safe 1.3.0, 1.4.1 and 1.5.0 the SafeTx typed data hashes (eth_account's EIP-712 encoding) to
the proposal's safeTxHash, and a signature over it by an owner recovers to that owner. When the
verdict needs the guard's delay, the Schedule typed data hashes to the guard's own scheduleHash;
once queued, the Cancel typed data to its cancelHash. Signatures are then POSTed exactly as the
page's sign.js posts them and stored; one set is made by anvil itself (`eth_signTypedData_v4` for
its dev account: what the browser test wallet forwards to), the others by ape test accounts.
"""

from __future__ import annotations

import json

import pytest
import requests
from builders import tusd_policy
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from server_helpers import running_server

from treasury.proposal.safe_tx import build_safe_tx
from treasury.server.pages.signing import safe_tx_typed_data, signing_data

VERSIONS = ("1.3.0", "1.4.1", "1.5.0")
SALTS = {"1.3.0": 13_201, "1.4.1": 13_202, "1.5.0": 13_203}


def policy_for(vendor: str) -> dict:
    return tusd_policy(vendor, amount="100000", delay_threshold="5000", cancel_threshold=1)


def typed_hash(typed: dict) -> str:
    """The EIP-712 digest of `typed` after a JSON round trip (what the page embeds and the wallet parses)."""
    return "0x" + _hash_eip191_message(encode_typed_data(full_message=json.loads(json.dumps(typed)))).hex()


def ape_signature(account, typed: dict) -> str:
    """An ape test account's signature over the typed data, as 0x-hex r||s||v (v 27/28)."""
    signed = account.sign_message(encode_typed_data(full_message=json.loads(json.dumps(typed))))
    v = int(signed.v)
    return "0x" + bytes(signed.r).rjust(32, b"\0").hex() + bytes(signed.s).rjust(32, b"\0").hex() + f"{v if v >= 27 else v + 27:02x}"


def anvil_signature(chain, address: str, typed: dict) -> str:
    """anvil's own eth_signTypedData_v4 for its unlocked dev account (the browser test wallet's path)."""
    return chain.provider.make_request("eth_signTypedData_v4", [address.lower(), json.dumps(typed)])


def recovered(typed: dict, signature: str) -> str:
    return Account.recover_message(encode_typed_data(full_message=json.loads(json.dumps(typed))), signature=signature)


def confirm(url: str, safe_tx_hash: str, signature: str) -> requests.Response:
    """The SafeTx confirmation, as sign.js posts it."""
    return requests.post(f"{url}/api/v1/multisig-transactions/{safe_tx_hash}/confirmations/",
                         json={"signature": signature}, timeout=30)


def post_guard(url: str, proposal_id: str, guard_signing, signature: str) -> requests.Response:
    """A schedule or cancel signature, as sign.js posts it (its fields read from the typed data and the block's hash)."""
    typed = json.loads(json.dumps(guard_signing.typed_data))
    body = {"purpose": guard_signing.purpose, "signedHash": guard_signing.signed_hash, "signature": signature}
    if guard_signing.purpose == "schedule":
        body["intentNonce"] = typed["message"]["nonce"]  # a decimal string, as the page sends it
    else:
        body["entryId"] = typed["message"]["entryId"]
    fields = guard_signing.post_fields()
    assert set(body) == {*fields, "signature"} and all(str(fields[k]) == str(body[k]) for k in fields)
    return requests.post(f"{url}/api/treasury/v1/proposals/{proposal_id}/guard-signatures/", json=body, timeout=30)


def test_the_typed_data_is_wallet_json_and_hashes_like_the_safe_for_every_version(accounts):
    """No chain needed: a SafeTx of each version, with a value above 2**53 (a float in JavaScript)."""
    for version in VERSIONS:
        safe_tx = build_safe_tx(accounts[7].address, accounts[8].address, 2**200 + 1, b"\x01\x02", 0, nonce=2**60,
                                chain_id=31337, version=version, safe_tx_gas=7, base_gas=8, gas_price=9)
        typed = safe_tx_typed_data(safe_tx)
        assert typed_hash(typed) == safe_tx.safe_tx_hash.to_0x_hex()
        message = typed["message"]
        assert set(message) == {f["name"] for f in typed["types"]["SafeTx"]}  # no legacy dataGas key
        assert message["value"] == str(2**200 + 1) and message["nonce"] == str(2**60) and message["data"] == "0x0102"
        assert typed["domain"] == {"chainId": 31337, "verifyingContract": accounts[7].address}
        assert [f["name"] for f in typed["types"]["EIP712Domain"]] == ["chainId", "verifyingContract"]
        assert recovered(typed, ape_signature(accounts[3], typed)) == accounts[3].address


@pytest.mark.parametrize("version", VERSIONS)
def test_a_signature_over_the_pages_safe_tx_typed_data_is_stored(make_treasury, accounts, owners, version):
    vendor = accounts[4]
    treasury, _token = make_treasury(policy_for(vendor.address), version=version, salt_nonce=SALTS[version])
    record = treasury.propose_transfer(vendor.address, "100 TUSD")
    data = signing_data(treasury, record)
    assert data.safe_tx_hash == record.safe_tx_hash.lower() == typed_hash(data.safe_tx)
    assert data.schedule is None and data.cancel is None  # below the delay threshold: nothing to queue
    preimage = bytes(treasury.safe_tx(record).safe_tx_hash_preimage)
    assert (data.domain_hash, data.message_hash) == ("0x" + preimage[2:34].hex(), "0x" + preimage[34:66].hex())
    assert data.domain_hash == "0x" + bytes(treasury._safe().domainSeparator()).hex()

    signature = ape_signature(owners[0], data.safe_tx)
    assert recovered(data.safe_tx, signature) == owners[0].address
    with running_server(treasury.store, config_path=treasury.config_path) as url:
        answer = confirm(url, record.safe_tx_hash, signature)
        assert answer.status_code == 201, answer.text
        shown = requests.get(f"{url}/api/v1/multisig-transactions/{record.safe_tx_hash}/", timeout=30).json()
    assert [c["owner"] for c in shown["confirmations"]] == [owners[0].address]
    assert [s.owner for s in treasury.store.signatures(record.id)] == [owners[0].address]


def test_schedule_and_cancel_typed_data_signed_by_anvil_and_stored(make_treasury, accounts, owners, chain):
    vendor = accounts[4]
    treasury, _token = make_treasury(policy_for(vendor.address), salt_nonce=13_210)
    record = treasury.propose_transfer(vendor.address, "6000 TUSD")  # above the delay threshold
    assert treasury.verdict(record.id).error == "NotScheduled"
    data = signing_data(treasury, record)
    assert data.cancel is None and data.schedule is not None
    schedule = data.schedule
    expected = treasury.schedule_message(record.id)  # checked by Treasury against the guard's scheduleHash
    assert schedule.signed_hash == expected.hash_hex == typed_hash(schedule.typed_data)
    assert schedule.intent_nonce == 0 and schedule.typed_data["message"]["nonce"] == "0"
    assert schedule.typed_data["domain"] == {"chainId": chain.chain_id, "verifyingContract": treasury.entry.guard}

    with running_server(treasury.store, config_path=treasury.config_path) as url:
        # Owner 0 signs in "the browser": anvil signs both typed data for its dev account.
        for typed, purpose in ((data.safe_tx, "safe_tx"), (schedule.typed_data, "schedule")):
            signature = anvil_signature(chain, owners[0].address, typed)
            assert recovered(typed, signature) == owners[0].address
            answer = (confirm(url, record.safe_tx_hash, signature) if purpose == "safe_tx"
                      else post_guard(url, record.id, schedule, signature))
            assert answer.status_code == 201, answer.text
        # Owner 1 with its ape test account, the same way.
        assert post_guard(url, record.id, schedule, ape_signature(owners[1], schedule.typed_data)).status_code == 201
        # A stranger's signature is refused in a body sign.js can show, and nothing is stored.
        refused = post_guard(url, record.id, schedule, ape_signature(accounts[5], schedule.typed_data))
        assert refused.status_code == 400 and "not an owner" in json.dumps(refused.json())
        assert sorted(s.owner for s in treasury.store.signatures(record.id, "schedule")) == sorted(
            [owners[0].address, owners[1].address])
        assert [s.owner for s in treasury.store.signatures(record.id, "safe_tx")] == [owners[0].address]

        entry = treasury.schedule(record.id, accounts[9])  # queued with the two stored schedule signatures
        queued = treasury.get(record.id)
        assert queued.status == "scheduled"
        data = signing_data(treasury, queued)
        assert data.schedule is None and data.cancel is not None
        cancel = data.cancel
        assert cancel.entry_id == entry.entry_id and cancel.typed_data["message"]["entryId"] == str(entry.entry_id)
        assert cancel.signed_hash == treasury.cancel_message(entry.entry_id).hash_hex == typed_hash(cancel.typed_data)
        signature = anvil_signature(chain, owners[2].address, cancel.typed_data)
        answer = post_guard(url, record.id, cancel, signature)
        assert answer.status_code == 201, answer.text
        assert answer.json()["owner"] == owners[2].address
    assert [s.owner for s in treasury.store.signatures(record.id, "cancel")] == [owners[2].address]


def test_sign_js_writes_text_only_and_runs_no_strings_as_code():
    """sign.js never turns server or wallet text into markup or code (CSP would stop eval; markup it would not)."""
    from pathlib import Path

    import treasury.server.pages.signing as signing

    source = (Path(signing.__file__).parent / "static" / "sign.js").read_text()
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                      "setTimeout(\"", "http://", "https://", "import("):
        assert forbidden not in source, forbidden
    assert "textContent" in source and "eth_signTypedData_v4" in source and "wallet_switchEthereumChain" in source
