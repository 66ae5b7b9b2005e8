// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {ISafe, ISafe150} from "../interfaces/ISafe.sol";
import {SafeBound} from "./SafeBound.sol";

/// @title SignatureTiers
/// @notice Tiered thresholds: a transaction whose total of a token exceeds that token's tier amount needs at least
///         the tier's number of valid owner signatures, more than the Safe's threshold if the tier says so.
/// @dev The Safe itself verifies the signatures: the guard rebuilds the SafeTx hash through the Safe (nonce() - 1,
///      the nonce the Safe has just used) and asks its `checkNSignatures` for the required count, so every signature
///      kind the Safe accepts (ECDSA, eth_sign, approved hash, EIP-1271) counts, sorted and distinct by the Safe's
///      own rules, and nothing counts twice. Module transactions carry no signatures: over a tier they are refused.
///      On Safe 1.3.0 and 1.4.1 the executor's own approved-hash signature (v = 1 without `approveHash`) is not
///      counted beyond the threshold (those versions take the caller, this guard, as executor): the executor must
///      call `approveHash` first. Safe 1.5.0 takes the executor explicitly and counts it.
abstract contract SignatureTiers is SafeBound {
    // Byte offsets of checkTransaction's head in msg.data (selector, then one word per parameter): to, value, the
    // offset of data, operation, safeTxGas, baseGas, gasPrice, gasToken, refundReceiver, the offset of signatures,
    // msgSender.
    uint256 private constant ARG_OPERATION = 100;
    uint256 private constant ARG_SIGNATURES = 292;
    uint256 private constant ARG_MSG_SENDER = 324;
    // The head of getTransactionHash / encodeTransactionData: ten words, data right after it.
    uint256 private constant SAFE_TX_DATA_OFFSET = 0x140;

    /// @notice The transaction exceeds a tier and does not carry `required` valid owner signatures (or is a module
    ///         transaction, which carries none).
    error NotEnoughSignatures(uint256 required);

    /// @dev Reverts NotEnoughSignatures(required) unless the Safe transaction being checked carries `required` valid
    ///      owner signatures. Must only run inside `checkTransaction` (it reads that call's arguments from msg.data,
    ///      which avoids a stack of eleven parameters); `data` is its `data` argument. Nothing to do when `required`
    ///      is within the Safe's threshold: the Safe has verified that many before calling the guard.
    function _checkTierSignatures(uint256 required, bytes calldata data) internal view {
        if (required <= ISafe(SAFE).getThreshold()) return;
        bytes calldata signatures = _signaturesArgument();
        address executor = address(uint160(uint256(bytes32(msg.data[ARG_MSG_SENDER:ARG_MSG_SENDER + 32]))));
        (bytes32 txHash, bytes memory txData) = _safeTxHash(data);
        (bool ok,) = _safeCheckNSignatures(executor, txHash, txData, signatures, required);
        if (!ok) revert NotEnoughSignatures(required);
    }

    /// @dev checkTransaction's `signatures` argument, located through its offset word (slicing reverts if out of
    ///      bounds).
    function _signaturesArgument() private pure returns (bytes calldata) {
        uint256 start = 4 + uint256(bytes32(msg.data[ARG_SIGNATURES:ARG_SIGNATURES + 32]));
        uint256 length = uint256(bytes32(msg.data[start:start + 32]));
        return msg.data[start + 32:start + 32 + length];
    }

    /// @dev The SafeTx hash of the transaction being checked, computed by the Safe with the nonce it just used, and
    ///      on 1.3.0 / 1.4.1 its preimage (which those versions hand to EIP-1271 owners). getTransactionHash and
    ///      encodeTransactionData take the same parameters: checkTransaction's first nine, then the nonce.
    function _safeTxHash(bytes calldata data) private view returns (bytes32 txHash, bytes memory txData) {
        bytes memory head = abi.encodePacked(
            IS_SAFE_150 ? ISafe150.getTransactionHash.selector : ISafe.encodeTransactionData.selector,
            msg.data[4:68], // to, value
            SAFE_TX_DATA_OFFSET,
            msg.data[ARG_OPERATION:ARG_SIGNATURES], // operation, safeTxGas, baseGas, gasPrice, gasToken, refundReceiver
            ISafe(SAFE).nonce() - 1
        );
        bytes memory call = abi.encodePacked(head, data.length, data, new bytes((32 - data.length % 32) % 32));
        (bool ok, bytes memory result) = SAFE.staticcall(call);
        if (!ok) _bubble(result);
        if (IS_SAFE_150) {
            txHash = abi.decode(result, (bytes32));
        } else {
            txData = abi.decode(result, (bytes));
            txHash = keccak256(txData);
        }
    }
}
