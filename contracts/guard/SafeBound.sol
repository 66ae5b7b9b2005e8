// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {ISafe, ISafe150} from "../interfaces/ISafe.sol";

/// @title SafeBound
/// @notice What every unit of TreasuryGuard shares: the Safe it protects, the MultiSendCallOnly that Safe may
///         delegatecall, and the rule that only that Safe changes the guard's settings.
abstract contract SafeBound {
    /// @notice The Safe (proxy) this guard protects.
    address public immutable SAFE;
    /// @notice The only contract the Safe may delegatecall: a MultiSendCallOnly.
    address public immutable MULTISEND_CALL_ONLY;
    /// @dev Whether the Safe's singleton reported VERSION() == "1.5.0" at deployment: its checkNSignatures takes the
    ///      executor explicitly. Any other answer (or none) selects the form 1.3.0 and 1.4.1 have, which 1.5.0 keeps
    ///      too (with the caller as executor), so a wrong guess can only refuse an executor's approved-hash signature.
    bool internal immutable IS_SAFE_150;
    // keccak256(abi.encode("1.5.0")): the exact return data of VERSION() on Safe 1.5.0.
    bytes32 private constant VERSION_150_RETURN = keccak256(abi.encode("1.5.0"));

    // Safe storage layout (identical in 1.3.0, 1.4.1 and 1.5.0).
    uint256 internal constant SENTINEL = 1;
    uint256 internal constant SAFE_MODULES_MAPPING_SLOT = 1;
    uint256 internal constant SAFE_OWNERS_MAPPING_SLOT = 2;
    uint256 internal constant SAFE_OWNER_COUNT_SLOT = 3;
    uint256 internal constant SAFE_THRESHOLD_SLOT = 4;
    // keccak256("guard_manager.guard.address")
    uint256 internal constant SAFE_GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;
    // keccak256("fallback_manager.handler.address")
    uint256 internal constant SAFE_FALLBACK_HANDLER_SLOT =
        0x6c9a6c4a39284e37ed1cf53d337577d14212a4870fb976a4366c693b939918d5;
    // keccak256("module_manager.module_guard.address") (Safe 1.5.0; always empty on older versions)
    uint256 internal constant SAFE_MODULE_GUARD_SLOT =
        0xb104e0b93118902c651344349b610029d694cfdec91c589c91ebafbcd0289947;

    /// @notice The caller is not the Safe.
    error NotSafe(address caller);
    /// @notice A zero or otherwise invalid address in the constructor.
    error InvalidAddress();
    /// @notice Operation other than 0 (call) or 1 (delegatecall).
    error InvalidOperation(uint8 operation);

    constructor(address safe, address multiSendCallOnly) {
        if (safe == address(0) || multiSendCallOnly == address(0) || multiSendCallOnly == safe) {
            revert InvalidAddress();
        }
        SAFE = safe;
        MULTISEND_CALL_ONLY = multiSendCallOnly;
        // A raw staticcall: a Safe without code or with a VERSION() of another shape must not make deployment
        // fail, it only selects the older checkNSignatures form.
        (bool ok, bytes memory version) = safe.staticcall(abi.encodeCall(ISafe.VERSION, ()));
        IS_SAFE_150 = ok && keccak256(version) == VERSION_150_RETURN;
    }

    modifier onlySafe() {
        if (msg.sender != SAFE) revert NotSafe(msg.sender);
        _;
    }

    /// @dev Asks the Safe whether the first `required` of `signatures` are valid signatures of `dataHash` by distinct
    ///      owners (the Safe's own rules: sorted, no duplicates, ECDSA, eth_sign, approved hash, EIP-1271). Returns
    ///      false and the Safe's revert data (e.g. "GS026") if not. `data` is the preimage of `dataHash`, which
    ///      1.3.0 and 1.4.1 hand to contract owners; `executor` is the account whose approved-hash signature counts
    ///      without `approveHash` (1.5.0 only; older Safes use the caller, this guard, which is never an owner).
    function _safeCheckNSignatures(
        address executor,
        bytes32 dataHash,
        bytes memory data,
        bytes calldata signatures,
        uint256 required
    ) internal view returns (bool ok, bytes memory revertData) {
        bytes memory call = IS_SAFE_150
            ? abi.encodeCall(ISafe150.checkNSignatures, (executor, dataHash, signatures, required))
            : abi.encodeCall(ISafe.checkNSignatures, (dataHash, data, signatures, required));
        (ok, revertData) = SAFE.staticcall(call);
    }

    /// @dev Reverts with `revertData` as is (the Safe's own error, e.g. Error("GS026")).
    function _bubble(bytes memory revertData) internal pure {
        assembly ("memory-safe") {
            revert(add(revertData, 0x20), mload(revertData))
        }
    }

    /// @dev The 32 bytes of `data` at `offset`. Callers check that the word is inside `data` where it matters.
    function _word(bytes calldata data, uint256 offset) internal pure returns (uint256 word) {
        assembly ("memory-safe") {
            word := calldataload(add(data.offset, offset))
        }
    }
}
