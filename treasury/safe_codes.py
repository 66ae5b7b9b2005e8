"""The Safe's revert codes (GS000...) in words.

The Safe reverts with bare five-character codes to save gas; every surface that shows an error
(the CLI's one line, rehearsals, the server's answers) adds these meanings. Data only: this module
imports nothing, so the error module and the revert decoder can both use it.
"""

from __future__ import annotations

# Safe 1.3.0 to 1.5.0 use the same codes; GS013 and GS027 exist up to 1.4.1, GS301 from 1.5.0 on.
SAFE_CODES: dict[str, str] = {
    "GS000": "the setup call made while creating the Safe failed",
    "GS001": "the Safe has no threshold yet, so it cannot check signatures (not set up)",
    "GS002": "the setup target given when creating the Safe is not a contract",
    "GS010": "not enough gas left to run the transaction with its safeTxGas; send it with a higher gas limit",
    "GS011": "the gas refund in the native currency could not be paid",
    "GS012": "the gas refund in the gas token could not be paid",
    "GS013": "the inner call failed, and with safeTxGas and gasPrice both 0 the whole transaction reverts",
    "GS020": "not enough signatures for the threshold (the signature data is too short)",
    "GS021": "a contract signature points into the fixed-size part of the signature data",
    "GS022": "a contract signature points past the end of the signature data",
    "GS023": "a contract signature's bytes run past the end of the signature data",
    "GS024": "a contract owner (EIP-1271) did not accept its signature",
    "GS025": "an approved-hash signature is for an owner who has not approved this hash and is not the sender",
    "GS026": "a signature is not from an owner (or is over another hash), or signatures repeat or are not "
             "sorted by owner address",
    "GS027": "the data given with a contract signature does not hash to the signed hash",
    "GS030": "only an owner can approve a hash",
    "GS031": "only the Safe itself may call this function, through a Safe transaction",
    "GS100": "the Safe's modules were already initialised",
    "GS101": "the module address is invalid (zero or the list's sentinel)",
    "GS102": "the module is already enabled",
    "GS103": "the given previous module does not point to this module",
    "GS104": "only an enabled module may call this function",
    "GS105": "the page start is neither the sentinel nor an enabled module",
    "GS106": "the page size must be at least 1",
    "GS200": "the Safe's owners were already set up",
    "GS201": "the threshold would exceed the number of owners",
    "GS202": "the threshold must be at least 1",
    "GS203": "the owner address is invalid (zero, the sentinel, the Safe itself, or a duplicate)",
    "GS204": "the address is already an owner",
    "GS205": "the given previous owner does not point to this owner",
    "GS300": "the new guard does not declare the transaction guard interface (ERC-165)",
    "GS301": "the new module guard does not declare the module guard interface (ERC-165)",
    "GS400": "the Safe cannot be its own fallback handler",
}
