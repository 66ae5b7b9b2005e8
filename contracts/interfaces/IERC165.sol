// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title IERC165
/// @notice Standard interface detection (EIP-165).
interface IERC165 {
    /// @notice Tell whether this contract implements the interface `interfaceId`.
    /// @param interfaceId The EIP-165 interface identifier.
    /// @return True if the interface is supported.
    function supportsInterface(bytes4 interfaceId) external view returns (bool);
}
