// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {IERC165} from "./IERC165.sol";

/// @title ITransactionGuard
/// @notice The transaction guard hooks a Safe (1.3.0, 1.4.1, 1.5.0) calls around `execTransaction`.
/// @dev EIP-165 interface id 0xe6d7a83a. `operation` is the Safe's `Enum.Operation` (0 call, 1 delegatecall),
///      which the ABI encodes as uint8.
interface ITransactionGuard is IERC165 {
    /// @notice Called by the Safe after the signatures were checked and before the transaction runs.
    /// @param to Destination of the Safe transaction.
    /// @param value Native value of the Safe transaction.
    /// @param data Calldata of the Safe transaction.
    /// @param operation 0 for a call, 1 for a delegatecall.
    /// @param safeTxGas Gas given to the inner call (0: all available).
    /// @param baseGas Gas paid for independently of the inner call (refund accounting).
    /// @param gasPrice Gas price used for the refund (0: no refund).
    /// @param gasToken Token the refund is paid in (0: native).
    /// @param refundReceiver Receiver of the refund (0: tx.origin).
    /// @param signatures The owners' signatures of the Safe transaction.
    /// @param msgSender The account that called `execTransaction`.
    function checkTransaction(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address refundReceiver,
        bytes memory signatures,
        address msgSender
    ) external;

    /// @notice Called by the Safe after the transaction ran.
    /// @param txHash The Safe transaction hash.
    /// @param success Whether the inner call succeeded.
    function checkAfterExecution(bytes32 txHash, bool success) external;
}
