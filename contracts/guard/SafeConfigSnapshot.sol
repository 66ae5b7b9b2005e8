// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {ISafe} from "../interfaces/ISafe.sol";
import {SafeBound} from "./SafeBound.sol";

/// @title SafeConfigSnapshot
/// @notice A digest of the Safe's critical configuration, compared before and after a batch run through a
///         MULTISEND_CALL_ONLY that is not a published MultiSendCallOnly.
/// @dev Every setter of the Safe's configuration is `authorized` (msg.sender must be the Safe) and the canonical
///      singletons (1.3.0, 1.4.1, 1.5.0) have no other path that writes it, so only code running in the Safe's
///      context can change it: a call or delegatecall the Safe executes for the transaction, or a module through
///      `execTransactionFromModule`. The guard checks every call, and a delegatecall is only allowed to
///      MULTISEND_CALL_ONLY; if that is a published MultiSendCallOnly it can only make the calls the guard checked. A
///      module acting during the transaction could make the same change in a transaction of its own that no
///      transaction guard sees (and with this contract as 1.5.0 module guard it cannot act inside a guarded
///      transaction at all). So for plain calls and for batches through a published MultiSendCallOnly the
///      configuration cannot change and no snapshot is needed. For a batch through any other MULTISEND_CALL_ONLY, a
///      digest of singleton, guard, fallback handler, module guard, owner count, threshold and the full owner and
///      module lists is taken before execution (read inside the Safe through `simulateAndRevert`) and must be equal
///      afterwards, the singleton being re-read through the proxy itself.
abstract contract SafeConfigSnapshot is SafeBound {
    // Upper bound on the list walk of the configuration digest (a well-formed list is far shorter).
    uint256 private constant MAX_LIST_WALK = 256;

    // Runtime code hashes of the published MultiSendCallOnly 1.3.0, 1.4.1 and 1.5.0 (safe-deployments `codeHash`,
    // identical to the npm build artifacts).
    bytes32 private constant MULTISEND_CALL_ONLY_130 =
        0xa9865ac2d9c7a1591619b188c4d88167b50df6cc0c5327fcbd1c8c75f7c066ad;
    bytes32 private constant MULTISEND_CALL_ONLY_141 =
        0xecd5bd14a08c5d2122379900b2f272bdf107a7e92423c10dd5fe3254386c9939;
    bytes32 private constant MULTISEND_CALL_ONLY_150 =
        0xcdbdcec38d2f1c7d961b0029ff8416b7e86e9974d6f0e9c9580c7d17fcfb6663;

    /// @notice Whether MULTISEND_CALL_ONLY's code is a published MultiSendCallOnly (1.3.0, 1.4.1 or 1.5.0). If so a
    ///         batch can only make the calls the guard checked and is treated like a plain call; if not, every batch
    ///         pays for a digest of the Safe's configuration before and after execution.
    bool public immutable MULTISEND_IS_CANONICAL;

    address internal transient _snapshotSingleton;
    bytes32 internal transient _snapshotDigest;

    /// @notice The Safe's configuration changed in a transaction that was not a scheduled configuration change.
    error SafeConfigChanged();
    /// @notice The Safe did not answer the configuration read as a Safe does.
    error SnapshotFailed();

    constructor() {
        bytes32 codeHash = MULTISEND_CALL_ONLY.codehash;
        MULTISEND_IS_CANONICAL = codeHash == MULTISEND_CALL_ONLY_130 || codeHash == MULTISEND_CALL_ONLY_141
            || codeHash == MULTISEND_CALL_ONLY_150;
    }

    /// @dev Takes the digest compared by `_verifySnapshot` after execution.
    function _takeSnapshot() internal {
        (address singleton, bytes32 digest) = _readSafeConfig();
        _snapshotSingleton = singleton;
        _snapshotDigest = digest;
    }

    /// @notice Digest of the Safe's critical configuration, computed in the storage context it runs in.
    /// @dev The guard runs this inside the Safe through `simulateAndRevert` (a delegatecall the Safe always
    ///      reverts), so it reads the Safe's storage: singleton, guard, fallback handler, module guard, owner count,
    ///      threshold, and the owner and module linked lists walked from the sentinel. Called directly it digests
    ///      this contract's own, meaningless, storage. It never writes.
    /// @return singleton Storage slot 0.
    /// @return digest keccak256 over all of the above.
    function readSafeConfig() external view returns (address singleton, bytes32 digest) {
        assembly ("memory-safe") {
            let start := mload(0x40)
            singleton := sload(0)
            mstore(start, singleton)
            mstore(add(start, 0x20), sload(SAFE_GUARD_SLOT))
            mstore(add(start, 0x40), sload(SAFE_FALLBACK_HANDLER_SLOT))
            mstore(add(start, 0x60), sload(SAFE_MODULE_GUARD_SLOT))
            mstore(add(start, 0x80), sload(SAFE_OWNER_COUNT_SLOT))
            mstore(add(start, 0xa0), sload(SAFE_THRESHOLD_SLOT))
            // Appends the linked list stored in the mapping at `mappingSlot`, walked from the sentinel, including
            // the value that ends it (the sentinel, or 0 if the list is broken).
            function walk(mappingSlot, ptr) -> end {
                let node := SENTINEL
                for { let i := 0 } lt(i, MAX_LIST_WALK) { i := add(i, 1) } {
                    mstore(0x00, node)
                    mstore(0x20, mappingSlot)
                    node := sload(keccak256(0x00, 0x40))
                    mstore(ptr, node)
                    ptr := add(ptr, 0x20)
                    if lt(node, 2) { break }
                }
                end := ptr
            }
            let end := walk(SAFE_MODULES_MAPPING_SLOT, walk(SAFE_OWNERS_MAPPING_SLOT, add(start, 0xc0)))
            digest := keccak256(start, sub(end, start))
        }
    }

    /// @dev After execution: the singleton is read through the proxy itself (`masterCopy()` never reaches the
    ///      singleton's code), so a replaced singleton cannot answer the digest read in the old one's place.
    function _verifySnapshot() internal view {
        if (ISafe(SAFE).masterCopy() != _snapshotSingleton) revert SafeConfigChanged();
        (, bytes32 digest) = _readSafeConfig();
        if (digest != _snapshotDigest) revert SafeConfigChanged();
    }

    function _readSafeConfig() internal view returns (address singleton, bytes32 digest) {
        (bool ok, bytes memory result) = SAFE.staticcall(
            abi.encodeCall(ISafe.simulateAndRevert, (address(this), abi.encodeCall(this.readSafeConfig, ())))
        );
        // simulateAndRevert reverts with abi.encodePacked(success, returnDataSize, returnData).
        if (ok || result.length != 128) revert SnapshotFailed();
        bool success;
        uint256 size;
        (success, size, singleton, digest) = abi.decode(result, (bool, uint256, address, bytes32));
        if (!success || size != 64) revert SnapshotFailed();
    }
}
