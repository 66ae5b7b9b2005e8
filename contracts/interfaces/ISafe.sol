// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title ISafe
/// @notice The few Safe functions TreasuryGuard uses. All exist with these signatures on Safe 1.3.0, 1.4.1 and 1.5.0.
interface ISafe {
    /// @notice Revert unless `signatures` are valid owner signatures of `dataHash` under the Safe's threshold.
    /// @dev On 1.3.0 and 1.4.1 `data` must be the preimage of `dataHash` (used for EIP-1271 contract owners);
    ///      1.5.0 ignores it. Approved hashes (v = 1) work when each owner called `approveHash(dataHash)`.
    /// @param dataHash The signed hash.
    /// @param data The preimage of `dataHash`.
    /// @param signatures Concatenated owner signatures, sorted by owner address.
    function checkSignatures(bytes32 dataHash, bytes calldata data, bytes calldata signatures) external view;

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
