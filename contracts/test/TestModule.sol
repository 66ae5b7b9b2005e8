// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

interface IModuleSafe {
    function execTransactionFromModule(address to, uint256 value, bytes calldata data, uint8 operation)
        external
        returns (bool success);
}

/// @title TestModule
/// @notice Test-only Safe module anyone can drive: `exec` asks `safe` to run a transaction through
///         `execTransactionFromModule`. A revert of the Safe (or of its module guard) bubbles up unchanged; a call
///         that merely fails makes `exec` revert with ModuleTransactionFailed. Never enable it on a real Safe.
contract TestModule {
    error ModuleTransactionFailed();

    /// @notice Run (to, value, data, operation) as a module transaction of `safe`.
    function exec(address safe, address to, uint256 value, bytes calldata data, uint8 operation) external {
        if (!IModuleSafe(safe).execTransactionFromModule(to, value, data, operation)) {
            revert ModuleTransactionFailed();
        }
    }
}
