"""From intent to Safe transaction: what the treasury wants, encoded as (to, value, data, operation).

Each builder validates its inputs (addresses, amounts through the token book) and returns an
`Intent`; `treasury.Treasury` then gives it a nonce, hashes it and stores it as a proposal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_abi.exceptions import EncodingError
from eth_utils import function_signature_to_4byte_selector

from treasury.addresses import SENTINEL_ADDRESS, ZERO_ADDRESS, parse_address
from treasury.amounts import TokenBook
from treasury.errors import InvalidInput
from treasury.proposal.arguments import parse_arguments, split_types
from treasury.proposal.multisend import Call, encode_batch
from treasury.types import CALL, DELEGATE_CALL, Operation

_SIGNATURE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")


@dataclass(frozen=True)
class Intent:
    """A Safe transaction without nonce: what will be signed, before it is numbered."""

    to: str
    value: int = 0
    data: bytes = b""
    operation: Operation = CALL
    summary: str = ""

    def as_call(self) -> Call:
        if self.operation != CALL:
            raise InvalidInput("a batch cannot contain a delegatecall")
        return Call(self.to, self.value, self.data)


def _recipient(safe: str, to: str) -> str:
    to = parse_address(to, "recipient")
    if to == parse_address(safe, "Safe"):
        raise InvalidInput(f"recipient {to} is the Safe itself: nothing would move")
    if to == ZERO_ADDRESS:
        raise InvalidInput("recipient is the zero address: the funds would be burned")
    return to


def encode_call(signature: str, args: Sequence[Any]) -> bytes:
    """Calldata from a function signature string, e.g. ('transfer(address,uint256)', [to, 5])."""
    match = _SIGNATURE.match(signature.replace(" ", ""))
    if not match:
        raise InvalidInput(f"{signature!r} is not a function signature like transfer(address,uint256)")
    types = split_types(match[2])
    args = parse_arguments(signature, args)  # every address (at any depth) through the one address parser
    try:
        return function_signature_to_4byte_selector(signature.replace(" ", "")) + encode(types, list(args))
    except (EncodingError, TypeError, ValueError) as error:
        raise InvalidInput(f"arguments do not fit {signature}: {str(error).splitlines()[0]}") from None


def native_transfer(safe: str, book: TokenBook, to: str, amount: str) -> Intent:
    token, units = book.parse(amount, default_symbol="ETH")
    if not token.is_native:
        raise InvalidInput(f"{amount} is not the native currency; use a token transfer")
    to = _recipient(safe, to)
    return Intent(to, units, b"", CALL, f"send {amount} to {to}")


def token_transfer(safe: str, book: TokenBook, to: str, amount: str) -> Intent:
    """ERC-20 transfer, or a native transfer when the amount is in ETH."""
    token, units = book.parse(amount)
    if token.is_native:
        return native_transfer(safe, book, to, amount)
    to = _recipient(safe, to)
    data = encode_call("transfer(address,uint256)", [to, units])
    return Intent(token.address, 0, data, CALL, f"send {amount} to {to}")


def nft_transfer(safe: str, collection: str, to: str, token_id: int) -> Intent:
    """ERC-721 safeTransferFrom from the Safe (the receiver must accept ERC-721 if it is a contract)."""
    if token_id < 0:
        raise InvalidInput(f"token id {token_id} is negative")
    to = _recipient(safe, to)
    data = encode_call("safeTransferFrom(address,address,uint256)", [parse_address(safe, "Safe"), to, token_id])
    return Intent(parse_address(collection, "collection"), 0, data, CALL, f"send NFT #{token_id} of {collection} to {to}")


def contract_call(target: str, signature: str, args: Sequence[Any] = (), value: int = 0) -> Intent:
    """Any call, from a function signature string and its arguments."""
    if value < 0:
        raise InvalidInput(f"value {value} is negative")
    target = parse_address(target, "call target")
    return Intent(target, value, encode_call(signature, args), CALL, f"call {signature} on {target}")


def method_call(method: Any, *args: Any, value: int = 0) -> Intent:
    """Any call, from an ape contract method (`contract.setFee`) and its arguments."""
    contract = method.contract
    return Intent(parse_address(contract.address, "call target"), value, bytes(method.encode_input(*args)), CALL,
                  f"call {method.abis[0].name} on {contract.address}")


def batch(intents: Sequence[Intent], version: str) -> Intent:
    """Several calls in one Safe transaction, through MultiSendCallOnly."""
    target, data = encode_batch([i.as_call() for i in intents], version)
    return Intent(target, 0, data, DELEGATE_CALL, f"batch of {len(intents)}: " + "; ".join(i.summary for i in intents))


def rejection(safe: str) -> Intent:
    """The no-op that spends a nonce: how owners reject what is pending at that nonce."""
    safe = parse_address(safe, "Safe")
    return Intent(safe, 0, b"", CALL, "reject: spend the nonce on nothing")


# --- Safe administration: calls from the Safe to itself -------------------------------------------


def _owner_checks(owners: Sequence[str], threshold: int, count_after: int) -> None:
    if not 1 <= threshold <= count_after:
        raise InvalidInput(f"threshold {threshold} must be between 1 and the number of owners ({count_after})")


def add_owner(safe: str, owners: Sequence[str], new_owner: str, threshold: int) -> Intent:
    new_owner = parse_address(new_owner, "owner")
    if new_owner in (ZERO_ADDRESS, SENTINEL_ADDRESS, parse_address(safe, "Safe")):
        raise InvalidInput(f"{new_owner} cannot be an owner of this Safe")
    if new_owner in owners:
        raise InvalidInput(f"{new_owner} is already an owner")
    _owner_checks(owners, threshold, len(owners) + 1)
    return Intent(safe, 0, encode_call("addOwnerWithThreshold(address,uint256)", [new_owner, threshold]), CALL,
                  f"add owner {new_owner}, threshold {threshold}")


def _previous(owners: Sequence[str], owner: str) -> str:
    if owner not in owners:
        raise InvalidInput(f"{owner} is not an owner")
    index = list(owners).index(owner)
    return SENTINEL_ADDRESS if index == 0 else owners[index - 1]


def remove_owner(safe: str, owners: Sequence[str], owner: str, threshold: int) -> Intent:
    owner = parse_address(owner, "owner")
    _owner_checks(owners, threshold, len(owners) - 1)
    data = encode_call("removeOwner(address,address,uint256)", [_previous(owners, owner), owner, threshold])
    return Intent(safe, 0, data, CALL, f"remove owner {owner}, threshold {threshold}")


def swap_owner(safe: str, owners: Sequence[str], old: str, new: str) -> Intent:
    old, new = parse_address(old, "owner"), parse_address(new, "owner")
    if new in owners or new in (ZERO_ADDRESS, SENTINEL_ADDRESS, parse_address(safe, "Safe")):
        raise InvalidInput(f"{new} cannot replace {old}")
    data = encode_call("swapOwner(address,address,address)", [_previous(owners, old), old, new])
    return Intent(safe, 0, data, CALL, f"replace owner {old} by {new}")


def change_threshold(safe: str, owners: Sequence[str], threshold: int) -> Intent:
    _owner_checks(owners, threshold, len(owners))
    return Intent(safe, 0, encode_call("changeThreshold(uint256)", [threshold]), CALL, f"threshold {threshold}")


def guard_setting(guard: str, signature: str, args: Sequence[Any]) -> Intent:
    """A TreasuryGuard setting (setCap, setRecipient, setAllowedCall, setDelay, ...): needs the delay."""
    known = {"setAllowedCall(address,bytes4,bool)", "setRecipient(address,bool)", "setCap(address,uint256,uint256,uint256,uint256)",
             "removeCap(address)", "setDelay(uint256,uint256)", "setAllowRefunds(bool)"}
    if signature.replace(" ", "") not in known:
        raise InvalidInput(f"{signature} is not a TreasuryGuard setting ({', '.join(sorted(known))})")
    return Intent(parse_address(guard, "guard"), 0, encode_call(signature, args), CALL, f"guard setting {signature}")


def fallback_handler_change(safe: str, handler: str) -> Intent:
    """The Safe's setFallbackHandler(handler): a configuration change (on a guarded Safe it waits the delay).

    How a guarded Safe moves to TreasuryFallbackHandler (treasury.chain.handler): the handler it has
    may sign, as the Safe, whatever a threshold of owners signs.
    """
    safe = parse_address(safe, "Safe")
    handler = parse_address(handler, "fallback handler")
    if handler == safe:
        raise InvalidInput("the Safe cannot be its own fallback handler")
    return Intent(safe, 0, encode_call("setFallbackHandler(address)", [handler]), CALL, f"set fallback handler {handler}")


def guard_installation(
    safe: str, version: str, guard: str, *, current_guard: str, current_handler: str, handler: str
) -> Intent:
    """Install `guard` as one Safe transaction the owners sign like any other (no keys in one process).

    A MultiSendCallOnly batch of calls from the Safe to itself: setFallbackHandler(handler) unless the
    Safe already has it, setModuleGuard(guard) on 1.5.0 (module transactions are checked only while
    the guard is the module guard too), then setGuard(guard) last. Only for a Safe without a guard:
    replacing a guard is a change the installed guard must let through its delay queue.
    """
    safe, guard = parse_address(safe, "Safe"), parse_address(guard, "guard")
    if parse_address(current_guard, "guard") != ZERO_ADDRESS:
        raise InvalidInput(f"the Safe already has guard {current_guard}; a new guard must be scheduled through it")
    if guard in (ZERO_ADDRESS, safe):
        raise InvalidInput(f"{guard} cannot be the Safe's guard")
    calls = []
    if parse_address(current_handler, "fallback handler") != parse_address(handler, "fallback handler"):
        calls.append(fallback_handler_change(safe, handler))
    if version == "1.5.0":
        calls.append(Intent(safe, 0, encode_call("setModuleGuard(address)", [guard]), CALL, f"set module guard {guard}"))
    calls.append(Intent(safe, 0, encode_call("setGuard(address)", [guard]), CALL, f"set guard {guard}"))
    installation = batch(calls, version)
    return Intent(installation.to, 0, installation.data, installation.operation,
                  f"install guard {guard}: " + "; ".join(c.summary for c in calls))
