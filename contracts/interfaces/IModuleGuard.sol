// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {IERC165} from "./IERC165.sol";

/// @title IModuleGuard
/// @notice The module guard hooks a Safe 1.5.0 calls around `execTransactionFromModule*`.
/// @dev EIP-165 interface id 0x58401ed8.
interface IModuleGuard is IERC165 {
    /// @notice Called by the Safe before a module transaction runs.
    /// @param to Destination of the module transaction.
    /// @param value Native value of the module transaction.
    /// @param data Calldata of the module transaction.
    /// @param operation 0 for a call, 1 for a delegatecall.
    /// @param module The module that asked the Safe to execute.
    /// @return moduleTxHash A value the Safe hands back to `checkAfterModuleExecution`.
    function checkModuleTransaction(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        address module
    ) external returns (bytes32 moduleTxHash);

    /// @notice Called by the Safe after a module transaction ran.
    /// @param txHash The value returned by `checkModuleTransaction`.
    /// @param success Whether the module transaction succeeded.
    function checkAfterModuleExecution(bytes32 txHash, bool success) external;
}
