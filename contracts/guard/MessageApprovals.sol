// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {SafeBound} from "./SafeBound.sol";

/// @title MessageApprovals
/// @notice Messages the Safe approved as signed by itself (EIP-1271), answered to TreasuryFallbackHandler.
/// @dev Approving is a Safe transaction to this guard, so it goes through the delay queue like every setting
///      (scheduled, due, not cancelled); revoking is allowed at once because it only takes power away.
abstract contract MessageApprovals is SafeBound {
    mapping(bytes32 hash => bool) private _approvedMessages;
    mapping(bytes32 domainSeparator => mapping(bytes32 typeHash => bool)) private _allowedTypedData;

    /// @notice `hash` was approved as signed by the Safe.
    event MessageApproved(bytes32 indexed hash);
    /// @notice The approval of `hash` was withdrawn.
    event MessageRevoked(bytes32 indexed hash);
    /// @notice Owners may (or may no longer) sign typed data of `typeHash` under `domainSeparator` for the Safe.
    event TypedDataAllowedSet(bytes32 indexed domainSeparator, bytes32 indexed typeHash, bool allowed);

    /// @notice Approve `hash` as signed by the Safe. Only the Safe (through the delay queue).
    /// @param hash The message hash a verifier will pass to `isValidSignature` (e.g. an EIP-712 digest).
    function approveMessage(bytes32 hash) external onlySafe {
        _approvedMessages[hash] = true;
        emit MessageApproved(hash);
    }

    /// @notice Withdraw the approval of `hash`. Only the Safe (at once, no delay).
    /// @param hash The message hash.
    function revokeMessage(bytes32 hash) external onlySafe {
        delete _approvedMessages[hash];
        emit MessageRevoked(hash);
    }

    /// @notice Whether the Safe approved `hash` through the delay queue.
    /// @param hash The message hash.
    /// @return Whether it is approved.
    function isMessageApproved(bytes32 hash) external view returns (bool) {
        return _approvedMessages[hash];
    }

    /// @notice Let a threshold of owners sign typed data of `typeHash` under `domainSeparator` as the Safe (EIP-1271
    ///         through TreasuryFallbackHandler), or stop it. Only the Safe (through the delay queue).
    /// @dev For messages that cannot move funds (e.g. votes of one governance domain): allowing a token's permit
    ///      type would hand the token to whoever the owners sign for, outside every cap.
    /// @param domainSeparator The EIP-712 domain separator of the verifying contract.
    /// @param typeHash The EIP-712 type hash of the primary type.
    /// @param allowed Whether owners may sign it.
    function setTypedDataAllowed(bytes32 domainSeparator, bytes32 typeHash, bool allowed) external onlySafe {
        _allowedTypedData[domainSeparator][typeHash] = allowed;
        emit TypedDataAllowedSet(domainSeparator, typeHash, allowed);
    }

    /// @notice Whether owners may sign typed data of `typeHash` under `domainSeparator` as the Safe.
    /// @param domainSeparator The EIP-712 domain separator.
    /// @param typeHash The EIP-712 type hash of the primary type.
    /// @return Whether it is allowed.
    function isTypedDataAllowed(bytes32 domainSeparator, bytes32 typeHash) external view returns (bool) {
        return _allowedTypedData[domainSeparator][typeHash];
    }
}
