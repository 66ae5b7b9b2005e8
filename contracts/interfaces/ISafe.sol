// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title ISafe
/// @notice The Safe functions TreasuryGuard uses. All exist with these signatures on Safe 1.3.0, 1.4.1 and 1.5.0,
///         except `encodeTransactionData` (1.3.0 and 1.4.1 only).
interface ISafe {
    /// @notice Revert unless `signatures` are valid owner signatures of `dataHash` under the Safe's threshold.
    /// @dev On 1.3.0 and 1.4.1 `data` must be the preimage of `dataHash` (used for EIP-1271 contract owners);
    ///      1.5.0 ignores it. Approved hashes (v = 1) work when each owner called `approveHash(dataHash)`.
    /// @param dataHash The signed hash.
    /// @param data The preimage of `dataHash`.
    /// @param signatures Concatenated owner signatures, sorted by owner address.
    function checkSignatures(bytes32 dataHash, bytes calldata data, bytes calldata signatures) external view;

    /// @notice Revert unless the first `requiredSignatures` of `signatures` are valid signatures of `dataHash` by
    ///         distinct owners (sorted by owner address).
    /// @dev On 1.3.0 and 1.4.1 `data` must be the preimage of `dataHash` (for EIP-1271 contract owners) and an
    ///      approved-hash signature (v = 1) counts when its owner called `approveHash` or is msg.sender (the guard,
    ///      never an owner). 1.5.0 keeps this deprecated form: it ignores `data` and uses msg.sender as executor.
    /// @param dataHash The signed hash.
    /// @param data The preimage of `dataHash`.
    /// @param signatures Concatenated owner signatures, sorted by owner address.
    /// @param requiredSignatures How many signatures must be valid.
    function checkNSignatures(bytes32 dataHash, bytes calldata data, bytes calldata signatures, uint256 requiredSignatures)
        external
        view;

    /// @notice The Safe's threshold.
    /// @return The number of owner signatures a Safe transaction needs.
    function getThreshold() external view returns (uint256);

    /// @notice The nonce of the next Safe transaction (already incremented while a transaction is checked).
    /// @return The nonce.
    function nonce() external view returns (uint256);

    /// @notice The EIP-712 preimage of a Safe transaction hash (1.3.0 and 1.4.1; internal on 1.5.0).
    /// @return The bytes whose keccak256 is the SafeTx hash.
    function encodeTransactionData(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address refundReceiver,
        uint256 nonce_
    ) external view returns (bytes memory);

    /// @notice The version string of the Safe singleton, e.g. "1.5.0".
    /// @return The version.
    function VERSION() external view returns (string memory);

    /// @notice Read `length` consecutive storage words of the Safe, starting at slot `offset`.
    /// @param offset The first storage slot.
    /// @param length The number of words.
    /// @return The words, concatenated.
    function getStorageAt(uint256 offset, uint256 length) external view returns (bytes memory);

    /// @notice Delegatecall `targetContract` in the Safe's context, then revert with
    ///         `abi.encodePacked(bool success, uint256 returnDataSize, bytes returnData)`.
    /// @param targetContract The contract whose code runs in the Safe's context.
    /// @param calldataPayload The calldata for that code.
    function simulateAndRevert(address targetContract, bytes calldata calldataPayload) external;

    /// @notice Set the transaction guard (only callable by the Safe itself).
    /// @param guard The new guard, or address(0) to remove it.
    function setGuard(address guard) external;

    /// @notice The singleton (implementation) of a Safe proxy.
    /// @dev Answered by the proxy itself from its storage slot 0, never by the singleton's code.
    /// @return The singleton address.
    function masterCopy() external view returns (address);
}

/// @title ISafe150
/// @notice Safe 1.5.0 functions that take the executor explicitly.
interface ISafe150 {
    /// @notice Revert unless the first `requiredSignatures` of `signatures` are valid signatures of `dataHash` by
    ///         distinct owners; an approved-hash signature (v = 1) of `executor` needs no `approveHash`.
    /// @param executor The account on whose behalf the signatures are checked (the transaction's sender).
    /// @param dataHash The signed hash.
    /// @param signatures Concatenated owner signatures, sorted by owner address.
    /// @param requiredSignatures How many signatures must be valid.
    function checkNSignatures(address executor, bytes32 dataHash, bytes calldata signatures, uint256 requiredSignatures)
        external
        view;

    /// @notice The SafeTx hash of a transaction with `nonce_`.
    /// @return The EIP-712 hash the owners sign.
    function getTransactionHash(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address refundReceiver,
        uint256 nonce_
    ) external view returns (bytes32);
}
