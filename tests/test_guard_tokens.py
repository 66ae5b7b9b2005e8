"""TreasuryGuard v2 token rules, attacked with raw execTransactions signed by a threshold of owners.

The standard token calls (ERC-20 approvals, ERC-721, ERC-1155, Permit2's approve) are decoded
strictly: the recipient, spender or operator must be allowlisted, the amount is charged (1 per NFT),
a new approval is refused while an older one to the same spender is unspent, and any encoding the
guard would have to guess about (dirty words, bool 2, odd offsets, trailing bytes) is refused.
Argument rules bound the arguments of other allowlisted calls. The happy paths run too, and the
tokens move. Every refusal goes through GuardedSafe.attack (nothing may move); every test starts
two days after the previous one's clock, so all budgets are full again (they refill within 1.5 days).
"""

from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import encode
from guard_helpers import *
from hexbytes import HexBytes

from treasury.policy.model import AllowedCall, ArgumentRule, Policy, TokenCap

SPENDER_INDEX = 6  # a funded test account, allowlisted as a recipient: it pulls what the Safe approves
NFT_CAP = 3
MULTI_CAP = 100
MAX_UINT = 2**256 - 1

SAFE_TRANSFER_FROM = selector("safeTransferFrom(address,address,uint256)")
SAFE_TRANSFER_FROM_DATA = selector("safeTransferFrom(address,address,uint256,bytes)")
SAFE_TRANSFER_FROM_1155 = selector("safeTransferFrom(address,address,uint256,uint256,bytes)")
SAFE_BATCH_TRANSFER_FROM = selector("safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)")
SET_APPROVAL_FOR_ALL = selector("setApprovalForAll(address,bool)")
INCREASE_ALLOWANCE = selector("increaseAllowance(address,uint256)")
DECREASE_ALLOWANCE = selector("decreaseAllowance(address,uint256)")
PERMIT2_APPROVE = selector("approve(address,address,uint160,uint48)")
MINT = selector("mint(address,uint256)")


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def addr(address: str) -> int:
    return int(address, 16)


@dataclass
class Tokens:
    """A guarded Safe (tests/guard_helpers.py) plus the v2 token contracts and their policy."""

    g: GuardedSafe
    nft: Any  # TestNFT, NFT-kind cap of NFT_CAP per day; the Safe holds ids 1..20
    multi: Any  # TestMultiToken, cap MULTI_CAP per day; the Safe holds 1000 of ids 1 and 2
    permit2: Any  # TestPermit2
    atoken: Any  # TestAllowanceToken, cap 1000 per day, 500 per transaction, delay above 100
    spender: Any

    def fresh_window(self) -> int:
        """Two days on: every budget is full again. Returns the new time."""
        now = head_timestamp() + 2 * DAY
        wait_until(now)
        return now

    def budget(self, token) -> int:
        return self.g.guard.budgetLeft(token.address)

    def allowance(self, spender: str) -> int:
        return view(self.atoken.address, "allowance(address,address)", ["address", "address"], [self.g.address, spender])


@pytest.fixture(scope="module", params=VERSIONS)
def tokens(request, make_safe, owners, safe_deployer, relayer, project, accounts):
    spender = accounts[SPENDER_INDEX]
    nft = safe_deployer.deploy(project.TestNFT)
    multi = safe_deployer.deploy(project.TestMultiToken)
    permit2 = safe_deployer.deploy(project.TestPermit2)
    atoken = safe_deployer.deploy(project.TestAllowanceToken, "Allowance Token", "AT", 18)

    def policy(token, empty_token, callback):
        base = standard_policy(token, empty_token, callback)
        per_token = dict(amount=1000 * UNIT, period=DAY, max_per_tx=500 * UNIT, delay_threshold=100 * UNIT)
        calls = [
            AllowedCall(target=atoken.address, selector=s)
            for s in ("transfer(address,uint256)", "approve(address,uint256)", "increaseAllowance(address,uint256)",
                      "decreaseAllowance(address,uint256)")
        ]
        calls += [
            AllowedCall(target=nft.address, selector=s)
            for s in ("transferFrom(address,address,uint256)", "approve(address,uint256)",
                      "safeTransferFrom(address,address,uint256)", "safeTransferFrom(address,address,uint256,bytes)",
                      "setApprovalForAll(address,bool)")
        ]
        calls += [
            AllowedCall(target=multi.address, selector=s)
            for s in ("safeTransferFrom(address,address,uint256,uint256,bytes)",
                      "safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)", "setApprovalForAll(address,bool)")
        ]
        calls += [
            AllowedCall(target=permit2.address, selector="approve(address,address,uint160,uint48)"),
            # an ordinary call with argument rules: mint(to, amount) with to a recipient and amount <= 50
            AllowedCall(target=empty_token, selector="mint(address,uint256)", arguments=(
                ArgumentRule(index=0, kind="recipient"), ArgumentRule(index=1, kind="max", bound=50 * UNIT),
            )),
        ]
        return Policy(
            recipients=(*base.recipients, spender.address, permit2.address),
            calls=(*base.calls, *calls),
            caps=(
                *base.caps,
                TokenCap(token=atoken.address, **per_token),
                TokenCap(token=nft.address, amount=NFT_CAP, period=DAY, nft=True),
                TokenCap(token=multi.address, amount=MULTI_CAP, period=DAY),
            ),
            delay=DELAY,
            window=WINDOW,
        )

    g = build_guarded_safe(
        version=request.param, salt_nonce=module_salt(request), make_safe=make_safe, owners=owners,
        deployer=safe_deployer, relayer=relayer, project=project, policy_for=policy,
    )
    for token_id in range(1, 21):
        nft.mint(g.address, token_id, sender=safe_deployer)
    for token_id in (1, 2):
        multi.mint(g.address, token_id, 1000, sender=safe_deployer)
    atoken.mint(g.address, 10**6 * UNIT, sender=safe_deployer)
    return Tokens(g, nft, multi, permit2, atoken, spender)


def nft_owner(t: Tokens, token_id: int) -> str:
    return view(t.nft.address, "ownerOf(uint256)", ["uint256"], [token_id], ["address"])


def multi_balance(t: Tokens, holder: str, token_id: int) -> int:
    return view(t.multi.address, "balanceOf(uint256,address)", ["uint256", "address"], [token_id, holder])


def safe_transfer_721(source: str, to: str, token_id: int, data: bytes | None = None) -> bytes:
    if data is None:
        return SAFE_TRANSFER_FROM + encode(["address", "address", "uint256"], [source, to, token_id])
    return SAFE_TRANSFER_FROM_DATA + encode(["address", "address", "uint256", "bytes"], [source, to, token_id, data])


def transfer_1155(source: str, to: str, token_id: int, amount: int, data: bytes = b"") -> bytes:
    return SAFE_TRANSFER_FROM_1155 + encode(["address", "address", "uint256", "uint256", "bytes"], [source, to, token_id, amount, data])


def batch_1155(source: str, to: str, ids: list[int], amounts: list[int], data: bytes = b"") -> bytes:
    return SAFE_BATCH_TRANSFER_FROM + encode(
        ["address", "address", "uint256[]", "uint256[]", "bytes"], [source, to, ids, amounts, data]
    )


def approval_for_all(operator: str, approved: bool) -> bytes:
    return SET_APPROVAL_FOR_ALL + encode(["address", "bool"], [operator, approved])


def allowance_change(sel: bytes, spender: str, amount: int) -> bytes:
    return sel + encode(["address", "uint256"], [spender, amount])


def permit2_approve(token: str, spender: str, amount: int, expiration: int) -> bytes:
    return PERMIT2_APPROVE + encode(["address", "address", "uint160", "uint48"], [token, spender, amount, expiration])


def mint(to: str, amount: int) -> bytes:
    return MINT + encode(["address", "uint256"], [to, amount])


# --- ERC-721 -----------------------------------------------------------------------------------------


def test_nft_transfers_charge_one_each_and_the_cap_holds_across_a_batch(tokens):
    t, g = tokens, tokens.g
    t.fresh_window()
    assert t.budget(t.nft) == NFT_CAP
    four = [
        Call(t.nft.address, 0, transfer_from(g.address, PAYEE, 1)),
        Call(t.nft.address, 0, safe_transfer_721(g.address, PAYEE, 2)),
        Call(t.nft.address, 0, safe_transfer_721(g.address, PAYEE2, 3, b"memo")),
        Call(t.nft.address, 0, safe_transfer_721(g.address, PAYEE2, 4)),
    ]
    # token ids are not amounts: four NFTs are 4 > the cap of 3, whatever their ids
    assert g.attack_batch(*four) == "ExceedsPerTxLimit"
    target, data = g.batch(*four[:3])
    g.execute(target, 0, data, 1)
    assert [nft_owner(t, i) for i in (1, 2, 3)] == [PAYEE, PAYEE, PAYEE2]
    assert t.budget(t.nft) == 0
    assert g.attack(t.nft.address, 0, safe_transfer_721(g.address, PAYEE, 4)) == "ExceedsBudget"
    assert nft_owner(t, 4) == g.address


@pytest.mark.parametrize("case", ["transferFrom", "safeTransferFrom", "safeTransferFrom with data", "approve",
                                  "setApprovalForAll", "in a batch"])
def test_nft_to_a_stranger_is_refused(tokens, case):
    t, g = tokens, tokens.g
    t.fresh_window()
    data = {
        "transferFrom": transfer_from(g.address, ATTACKER, 5),
        "safeTransferFrom": safe_transfer_721(g.address, ATTACKER, 5),
        "safeTransferFrom with data": safe_transfer_721(g.address, ATTACKER, 5, b"\x01"),
        "approve": approve(ATTACKER, 5),
        "setApprovalForAll": approval_for_all(ATTACKER, True),
    }.get(case)
    if data is None:
        name = g.attack_batch(Call(t.nft.address, 0, transfer_from(g.address, PAYEE, 6)),
                              Call(t.nft.address, 0, safe_transfer_721(g.address, ATTACKER, 5)))
    else:
        name = g.attack(t.nft.address, 0, data)
    assert name == "RecipientNotAllowed"
    assert nft_owner(t, 5) == g.address


def test_nft_approve_charges_one_and_its_revocation_is_free(tokens):
    t, g = tokens, tokens.g
    t.fresh_window()
    g.execute(t.nft.address, 0, approve(PAYEE, 7))
    assert view(t.nft.address, "getApproved(uint256)", ["uint256"], [7], ["address"]) == PAYEE
    assert t.budget(t.nft) == NFT_CAP - 1
    g.execute(t.nft.address, 0, approve(ZERO_ADDRESS, 7))  # revocation: no recipient check, no charge
    assert view(t.nft.address, "getApproved(uint256)", ["uint256"], [7], ["address"]) == ZERO_ADDRESS
    assert t.budget(t.nft) == NFT_CAP - 1


@pytest.mark.parametrize("collection", ["nft", "multi"])
def test_set_approval_for_all_needs_the_delay(tokens, collection):
    t, g = tokens, tokens.g
    t.fresh_window()
    token = getattr(t, collection)
    grant = approval_for_all(PAYEE, True)
    assert g.attack(token.address, 0, grant) == "NotScheduled"
    assert g.attack_batch(Call(t.nft.address, 0, transfer_from(g.address, PAYEE, 8)), Call(token.address, 0, grant)) == "NotScheduled"
    entry = g.schedule(token.address, 0, grant)
    g.wait_until_due(entry)
    g.execute(token.address, 0, grant)
    is_approved = ["address", "address"], [g.address, PAYEE], ["bool"]
    assert view(token.address, "isApprovedForAll(address,address)", *is_approved) is True
    g.execute(token.address, 0, approval_for_all(PAYEE, False))  # withdrawing it: at once
    assert view(token.address, "isApprovedForAll(address,address)", *is_approved) is False


# --- ERC-1155 -----------------------------------------------------------------------------------------


def test_erc1155_transfers_charge_their_amounts(tokens):
    t, g = tokens, tokens.g
    t.fresh_window()
    g.execute(t.multi.address, 0, transfer_1155(g.address, PAYEE, 1, 30))
    assert multi_balance(t, PAYEE, 1) == 30
    g.execute(t.multi.address, 0, batch_1155(g.address, PAYEE2, [1, 2], [20, 30], b"\x00\x01"))
    assert (multi_balance(t, PAYEE2, 1), multi_balance(t, PAYEE2, 2)) == (20, 30)
    assert t.budget(t.multi) == MULTI_CAP - 80
    assert g.attack(t.multi.address, 0, batch_1155(g.address, PAYEE, [1, 2], [15, 6])) == "ExceedsBudget"
    assert g.attack(t.multi.address, 0, transfer_1155(g.address, ATTACKER, 1, 1)) == "RecipientNotAllowed"
    assert g.attack(t.multi.address, 0, batch_1155(g.address, ATTACKER, [2], [1])) == "RecipientNotAllowed"
    # amounts that overflow when summed are refused as over the limit, not with a panic
    assert g.attack(t.multi.address, 0, batch_1155(g.address, PAYEE, [1, 2], [MAX_UINT, 2])) == "ExceedsPerTxLimit"


# --- strict decoding ---------------------------------------------------------------------------------------


def _malformed(t: Tokens, case: str) -> tuple[str, bytes]:
    g = t.g
    safe, dirty = addr(g.address), addr(PAYEE) | (1 << 200)
    good_721_data = safe_transfer_721(g.address, PAYEE, 9, b"abc")  # offset 0x80, length 3, 29 zero bytes
    return {
        "721 dirty to": (t.nft.address, SAFE_TRANSFER_FROM + word(safe) + word(dirty) + word(9)),
        "721 dirty from": (t.nft.address, SAFE_TRANSFER_FROM + word(safe | (1 << 170)) + word(addr(PAYEE)) + word(9)),
        "721 trailing byte": (t.nft.address, safe_transfer_721(g.address, PAYEE, 9) + b"\x00"),
        "721 short": (t.nft.address, safe_transfer_721(g.address, PAYEE, 9)[:-1]),
        "721 data: offset 0xa0": (t.nft.address, SAFE_TRANSFER_FROM_DATA + word(safe) + word(addr(PAYEE)) + word(9)
                                  + word(0xA0) + word(0) + word(3) + b"abc".ljust(32, b"\0")),
        "721 data: dirty padding": (t.nft.address, good_721_data[:-1] + b"\x01"),
        "721 data: length past the end": (t.nft.address, good_721_data[:4 + 128] + word(33) + b"abc".ljust(32, b"\0")),
        "721 data: trailing word": (t.nft.address, good_721_data + word(0)),
        "setApprovalForAll bool 2": (t.nft.address, SET_APPROVAL_FOR_ALL + word(addr(PAYEE)) + word(2)),
        "setApprovalForAll dirty operator": (t.multi.address, SET_APPROVAL_FOR_ALL + word(dirty) + word(0)),
        "1155 batch length mismatch": (t.multi.address, SAFE_BATCH_TRANSFER_FROM + word(safe) + word(addr(PAYEE))
                                       + word(0xA0) + word(0x100) + word(0x140) + word(2) + word(1) + word(2)
                                       + word(1) + word(1) + word(0)),
        "1155 batch trailing bytes": (t.multi.address, batch_1155(g.address, PAYEE, [1], [1]) + b"\0" * 32),
        # amounts aliasing ids: a token would read [1] for both
        "1155 batch amounts offset not canonical": (t.multi.address, SAFE_BATCH_TRANSFER_FROM + word(safe) + word(addr(PAYEE))
                                                    + word(0xA0) + word(0xA0) + word(0xE0) + word(1) + word(1) + word(0)),
        "1155 single data offset 0xc0": (t.multi.address, SAFE_TRANSFER_FROM_1155 + word(safe) + word(addr(PAYEE))
                                         + word(1) + word(1) + word(0xC0) + word(0) + word(0)),
        "1155 single dirty to": (t.multi.address, SAFE_TRANSFER_FROM_1155 + word(safe) + word(dirty) + word(1) + word(1)
                                 + word(0xA0) + word(0)),
        "increaseAllowance dirty spender": (t.atoken.address, INCREASE_ALLOWANCE + word(dirty) + word(1)),
        "decreaseAllowance trailing byte": (t.atoken.address, allowance_change(DECREASE_ALLOWANCE, PAYEE, 1) + b"\0"),
        "Permit2 amount above uint160": (t.permit2.address, PERMIT2_APPROVE + word(addr(t.atoken.address)) + word(addr(PAYEE))
                                         + word(1 << 160) + word(0)),
        "Permit2 expiration above uint48": (t.permit2.address, PERMIT2_APPROVE + word(addr(t.atoken.address))
                                            + word(addr(PAYEE)) + word(1) + word(1 << 48)),
        "Permit2 dirty token": (t.permit2.address, PERMIT2_APPROVE + word(addr(t.atoken.address) | (1 << 255))
                                + word(addr(PAYEE)) + word(1) + word(0)),
    }[case]


MALFORMED = [
    "721 dirty to", "721 dirty from", "721 trailing byte", "721 short", "721 data: offset 0xa0", "721 data: dirty padding",
    "721 data: length past the end", "721 data: trailing word", "setApprovalForAll bool 2", "setApprovalForAll dirty operator",
    "1155 batch length mismatch", "1155 batch trailing bytes", "1155 batch amounts offset not canonical",
    "1155 single data offset 0xc0", "1155 single dirty to", "increaseAllowance dirty spender",
    "decreaseAllowance trailing byte", "Permit2 amount above uint160", "Permit2 expiration above uint48", "Permit2 dirty token",
]


@pytest.mark.parametrize("case", MALFORMED)
def test_non_canonical_token_calldata_is_refused(tokens, case):
    to, data = _malformed(tokens, case)
    assert tokens.g.attack(to, 0, data) == "MalformedCalldata"


@pytest.mark.parametrize("case", ["721 data: dirty padding", "1155 batch length mismatch", "setApprovalForAll bool 2"])
def test_non_canonical_token_calldata_is_refused_in_a_batch(tokens, case):
    to, data = _malformed(tokens, case)
    ok = Call(tokens.g.token.address, 0, transfer(PAYEE, UNIT))
    assert tokens.g.attack_batch(ok, Call(to, 0, data)) == "MalformedCalldata"


def test_the_canonical_encodings_go_through(tokens):
    """The same calls, encoded canonically (by eth_abi), are accepted and the tokens move."""
    t, g = tokens, tokens.g
    t.fresh_window()
    before = (multi_balance(t, PAYEE, 1), multi_balance(t, PAYEE2, 2))
    target, data = g.batch(
        Call(t.nft.address, 0, safe_transfer_721(g.address, PAYEE, 10, b"abc")),
        Call(t.multi.address, 0, batch_1155(g.address, PAYEE, [1, 2], [1, 1], b"x" * 33)),
        Call(t.multi.address, 0, transfer_1155(g.address, PAYEE2, 2, 3, b"")),
    )
    g.execute(target, 0, data, 1)
    assert nft_owner(t, 10) == PAYEE
    assert (multi_balance(t, PAYEE, 1), multi_balance(t, PAYEE2, 2)) == (before[0] + 1, before[1] + 3)


# --- the approvals rule ----------------------------------------------------------------------------------------


def test_a_new_approval_waits_until_the_older_one_is_spent_or_revoked(tokens):
    t, g, spender = tokens, tokens.g, tokens.spender.address
    t.fresh_window()
    token = t.atoken.address
    g.execute(token, 0, approve(spender, 50 * UNIT))
    assert t.allowance(spender) == 50 * UNIT
    assert t.budget(t.atoken) == 950 * UNIT  # charged in full when made
    # stacking a second approval on the unspent one: refused, however it is phrased
    assert g.attack(token, 0, approve(spender, 10 * UNIT)) == "ApprovalOutstanding"
    assert g.attack(token, 0, allowance_change(INCREASE_ALLOWANCE, spender, UNIT)) == "ApprovalOutstanding"
    assert g.attack_batch(Call(token, 0, transfer(PAYEE, UNIT)), Call(token, 0, approve(spender, UNIT))) == "ApprovalOutstanding"
    # another spender is charged on top: the budget bounds what all spenders together can pull
    g.execute(token, 0, approve(PAYEE, 40 * UNIT))
    assert t.budget(t.atoken) == 910 * UNIT
    # spent: a new approval to the same spender is allowed again
    t.atoken.transferFrom(g.address, spender, 50 * UNIT, sender=t.spender)
    assert t.allowance(spender) == 0
    g.execute(token, 0, allowance_change(INCREASE_ALLOWANCE, spender, 20 * UNIT))
    assert t.allowance(spender) == 20 * UNIT and t.budget(t.atoken) == 890 * UNIT
    # decreases and revocations are always allowed and never charged, whoever the spender is
    g.execute(token, 0, allowance_change(DECREASE_ALLOWANCE, spender, 5 * UNIT))
    g.execute(token, 0, approve(spender, 0))
    g.execute(token, 0, approve(ATTACKER, 0))
    g.execute(token, 0, allowance_change(DECREASE_ALLOWANCE, ATTACKER, 0))
    assert t.allowance(spender) == 0 and t.budget(t.atoken) == 890 * UNIT
    # revoked: allowed again
    g.execute(token, 0, approve(spender, 30 * UNIT))
    assert t.allowance(spender) == 30 * UNIT
    g.execute(token, 0, approve(spender, 0))
    g.execute(token, 0, approve(PAYEE, 0))


@pytest.mark.parametrize("case, error", [
    ("approve a stranger", "RecipientNotAllowed"),
    ("increaseAllowance to a stranger", "RecipientNotAllowed"),
    ("unlimited approval", "ExceedsPerTxLimit"),
    ("unlimited increaseAllowance", "ExceedsPerTxLimit"),
    ("approval above the delay threshold", "NotScheduled"),
])
def test_approvals_to_strangers_or_above_the_limits_are_refused(tokens, case, error):
    t, g = tokens, tokens.g
    t.fresh_window()
    data = {
        "approve a stranger": approve(ATTACKER, 1),
        "increaseAllowance to a stranger": allowance_change(INCREASE_ALLOWANCE, ATTACKER, 1),
        "unlimited approval": approve(t.spender.address, MAX_UINT),
        "unlimited increaseAllowance": allowance_change(INCREASE_ALLOWANCE, t.spender.address, MAX_UINT),
        "approval above the delay threshold": approve(t.spender.address, 100 * UNIT + 1),
    }[case]
    assert g.attack(t.atoken.address, 0, data) == error


def test_permit2_approvals_follow_the_approvals_rule(tokens):
    t, g, spender = tokens, tokens.g, tokens.spender.address
    now = t.fresh_window()
    token, permit2 = t.atoken.address, t.permit2.address
    expiration = now + DAY
    assert g.attack(permit2, 0, permit2_approve(token, ATTACKER, UNIT, expiration)) == "RecipientNotAllowed"
    assert g.attack(permit2, 0, permit2_approve(token, spender, 2**160 - 1, expiration)) == "ExceedsPerTxLimit"
    # the token approves Permit2 (charged), Permit2 approves the spender (charged to the token's cap)
    target, data = g.batch(
        Call(token, 0, approve(permit2, 60 * UNIT)),
        Call(permit2, 0, permit2_approve(token, spender, 30 * UNIT, expiration)),
    )
    g.execute(target, 0, data, 1)
    assert t.budget(t.atoken) == 910 * UNIT
    # live: a new Permit2 approval to the same spender is refused; amount 0 (revocation) is always allowed
    assert g.attack(permit2, 0, permit2_approve(token, spender, UNIT, expiration)) == "ApprovalOutstanding"
    t.permit2.transferFrom(g.address, spender, 30 * UNIT, token, sender=t.spender)  # the tokens move
    assert view(token, "balanceOf(address)", ["address"], [spender]) >= 30 * UNIT
    g.execute(permit2, 0, permit2_approve(token, spender, 10 * UNIT, expiration))  # spent: allowed again
    g.execute(permit2, 0, permit2_approve(token, spender, 0, 0))
    assert t.budget(t.atoken) == 900 * UNIT
    # expired is not live either
    g.execute(permit2, 0, permit2_approve(token, spender, 5 * UNIT, now + HOUR))
    assert g.attack(permit2, 0, permit2_approve(token, spender, UNIT, expiration)) == "ApprovalOutstanding"
    wait_until(now + 2 * HOUR)
    g.execute(permit2, 0, permit2_approve(token, spender, UNIT, expiration))
    g.execute(permit2, 0, permit2_approve(token, spender, 0, 0))
    g.execute(token, 0, approve(permit2, 0))


# --- argument rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case, error", [
    ("recipient rule: a stranger", "ArgumentNotAllowed"),
    ("recipient rule: dirty address word", "ArgumentNotAllowed"),
    ("max rule: above the bound", "ArgumentNotAllowed"),
    ("too short for the rule's word", "MalformedCalldata"),
    ("in a batch", "ArgumentNotAllowed"),
])
def test_argument_rules_are_enforced(tokens, case, error):
    g = tokens.g
    target = g.empty_token.address
    data = {
        "recipient rule: a stranger": mint(ATTACKER, UNIT),
        "recipient rule: dirty address word": MINT + word(addr(PAYEE) | (1 << 160)) + word(UNIT),
        "max rule: above the bound": mint(PAYEE, 50 * UNIT + 1),
        "too short for the rule's word": MINT + word(addr(PAYEE)),
    }.get(case)
    if data is None:
        name = g.attack_batch(Call(target, 0, mint(PAYEE, UNIT)), Call(target, 0, mint(PAYEE2, 51 * UNIT)))
    else:
        name = g.attack(target, 0, data)
    assert name == error


def test_argument_rules_let_the_allowed_calls_through(tokens):
    g = tokens.g
    target = g.empty_token.address
    before = g.token_balance(PAYEE, g.empty_token)
    assert list(g.guard.argumentRules(target, MINT)) == [(1 << 248) | 0, (2 << 248) | (1 << 240) | 50 * UNIT]
    batch_target, data = g.batch(Call(target, 0, mint(PAYEE, 50 * UNIT)), Call(target, 0, mint(PAYEE, UNIT)))
    g.execute(batch_target, 0, data, 1)
    assert g.token_balance(PAYEE, g.empty_token) == before + 51 * UNIT


# --- settings of the v2 units (sent as the Safe itself: the queue in front of them is tested elsewhere) -----------


def _as_safe(g: GuardedSafe, data: bytes, at: int | None = None) -> None:
    """Send `data` to the guard from the Safe's own address (anvil impersonation)."""
    from ape import chain

    w3 = chain.provider.web3
    w3.provider.make_request("anvil_impersonateAccount", [g.address])
    try:
        if at is not None:
            pin_next_block(at)
        tx = w3.eth.send_transaction({"from": g.address, "to": g.guard.address, "data": HexBytes(data), "gas": 1_000_000})
        assert w3.eth.wait_for_transaction_receipt(tx).status == 1
    finally:
        w3.provider.make_request("anvil_stopImpersonatingAccount", [g.address])


@pytest.mark.parametrize("setting, error", [
    (("setTier", 1, 256), "InvalidTier"),
    (("setTier", 2**104, 2), "AmountTooLarge"),
    (("setArgumentRules", "mint", [3 << 248]), "InvalidArgumentRule"),
    (("setArgumentRules", "mint", [(1 << 248), 0]), "InvalidArgumentRule"),
    (("setArgumentRules", "transfer", [1 << 248]), "InvalidArgumentRule"),
    (("setArgumentRules", "increaseAllowance", [2 << 248]), "InvalidArgumentRule"),
])
def test_invalid_settings_are_refused(tokens, setting, error):
    g = tokens.g
    name, *args = setting
    if name == "setTier":
        data = g.encode_guard("setTier", g.token.address, *args)
    else:
        sel = {"mint": MINT, "transfer": TRANSFER, "increaseAllowance": INCREASE_ALLOWANCE}[args[0]]
        data = g.encode_guard("setArgumentRules", g.empty_token.address, sel, args[1])
    assert call_error(g.address, g.guard.address, data) == error
    assert call_error(ATTACKER, g.guard.address, g.encode_guard("setNft", g.token.address, True)) == "NotSafe"


def test_nft_kind_and_tier_settings_and_views(tokens):
    t, g = tokens, tokens.g
    assert g.guard.isNft(t.nft.address) and not g.guard.isNft(t.atoken.address)
    assert tuple(g.guard.tierConfig(t.atoken.address)) == (0, 0)
    _as_safe(g, g.encode_guard("setTier", t.atoken.address, 40 * UNIT, 3))
    assert tuple(g.guard.tierConfig(t.atoken.address)) == (40 * UNIT, 3)
    _as_safe(g, g.encode_guard("setTier", t.atoken.address, 0, 0))
    assert tuple(g.guard.tierConfig(t.atoken.address)) == (0, 0)
    # the kind is a flag next to the allowlisted ERC-20 selectors: setting it keeps them
    _as_safe(g, g.encode_guard("setNft", t.atoken.address, True))
    assert g.guard.isNft(t.atoken.address) and g.guard.isAllowedCall(t.atoken.address, TRANSFER)
    _as_safe(g, g.encode_guard("setNft", t.atoken.address, False))
    assert not g.guard.isNft(t.atoken.address) and g.guard.isAllowedCall(t.atoken.address, APPROVE)


def test_lowering_a_cap_below_what_was_spent_then_raising_it_keeps_the_window_exact(tokens):
    """The rare bookkeeping path: spend 900 of 1000, lower the cap to 100, raise it back to 1000 two
    sub-slots later. What was spent still counts until it leaves the window: only 100 more fits."""
    t, g = tokens, tokens.g
    token = t.atoken.address
    start = (head_timestamp() // DAY + 2) * DAY + HOUR  # sub-slots are 12 h: [start - 1 h, start + 11 h) is one
    wait_until(start - 10)
    for i in range(9):
        g.execute(token, 0, transfer(PAYEE, 100 * UNIT), at=start + i)
    assert g.guard.spentInWindow(token) == 900 * UNIT
    _as_safe(g, g.encode_guard("setCap", token, 100 * UNIT, DAY, 500 * UNIT, 100 * UNIT), at=start + 100)
    assert g.guard.budgetLeft(token) == 0
    wait_until(start + 12 * HOUR)  # next sub-slot: the 900 is the previous one's
    assert (g.guard.budgetLeft(token), g.guard.spentInWindow(token)) == (0, 900 * UNIT)
    wait_until(start + 24 * HOUR)  # two sub-slots on: the 900 still counts (prev2), beyond the lowered amount
    assert (g.guard.budgetLeft(token), g.guard.spentInWindow(token)) == (0, 900 * UNIT)
    _as_safe(g, g.encode_guard("setCap", token, 1000 * UNIT, DAY, 500 * UNIT, 100 * UNIT), at=start + 24 * HOUR + 10)
    assert (g.guard.budgetLeft(token), g.guard.spentInWindow(token)) == (100 * UNIT, 900 * UNIT)
    assert g.attack(token, 0, transfer(PAYEE, 100 * UNIT + 1)) == "ExceedsBudget"
    g.execute(token, 0, transfer(PAYEE, 100 * UNIT))
    assert g.guard.budgetLeft(token) == 0
    wait_until(start + 24 * HOUR + 3 * 12 * HOUR)  # 1.5 days after the cap change: all of it back
    assert g.guard.budgetLeft(token) == 1000 * UNIT
