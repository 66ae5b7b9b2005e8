// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {CallRules} from "./CallRules.sol";

/// @title MultiSendUnwrapper
/// @notice Strict unwrapping of a batch delegatecalled to MultiSendCallOnly, every entry checked as a call.
/// @dev Delegatecall only to MULTISEND_CALL_ONLY's `multiSend(bytes)`, value 0, canonical ABI encoding, at least one
///      entry, every entry a call (operation 0) to a non-zero address, no truncation, no trailing bytes.
abstract contract MultiSendUnwrapper is CallRules {
    bytes4 internal constant MULTI_SEND = 0x8d80ff0a; // multiSend(bytes)

    /// @notice The delegatecall is not a canonical `multiSend(bytes)` call with value 0.
    error InvalidMultiSend();
    /// @notice The batch has no entry.
    error EmptyBatch();
    /// @notice Batch entry at byte `offset` (of the packed transactions) is truncated, not a call, or targets
    ///         address(0).
    error InvalidBatchEntry(uint256 offset);

    /// @dev Unwraps `multiSend(bytes)` strictly and checks every entry as a call.
    ///      Layout: selector | offset (0x20) | length n | n bytes of packed entries | 0..31 zero bytes of padding.
    ///      Entry: uint8 operation | address to | uint256 value | uint256 dataLength | bytes data.
    function _checkBatch(Totals memory totals, bytes calldata data)
        internal
        view
        returns (bool needsDelay, bool touchesSafe)
    {
        uint256 size = data.length;
        if (size < 68 || bytes4(data) != MULTI_SEND || _word(data, 4) != 0x20) revert InvalidMultiSend();
        uint256 n = _word(data, 36);
        uint256 end;
        // Offsets below are bounded by the calldata size, so they cannot overflow.
        unchecked {
            if (n > size - 68 || size - 68 - n > 31) revert InvalidMultiSend();
            end = 68 + n;
            // Padding must be zero. The word read may run past `data`; only its first size - end bytes are kept.
            if (end < size && _word(data, end) >> ((32 - (size - end)) * 8) != 0) revert InvalidMultiSend();
        }
        if (n == 0) revert EmptyBatch();
        for (uint256 i = 68; i < end;) {
            bool delayed;
            bool self;
            (i, delayed, self) = _checkEntry(totals, data, i, end);
            if (delayed) needsDelay = true;
            if (self) touchesSafe = true;
        }
    }

    /// @dev Checks the batch entry at `i` (< end); returns where the next one starts.
    function _checkEntry(Totals memory totals, bytes calldata data, uint256 i, uint256 end)
        internal
        view
        returns (uint256 next, bool needsDelay, bool touchesSafe)
    {
        address to;
        uint256 value;
        unchecked {
            // i < end <= data.length; dataLength is only added once it is known to fit before `end`.
            if (end - i < 85) revert InvalidBatchEntry(i - 68);
            uint256 head = _word(data, i); // operation (1 byte) | to (20 bytes) | first 11 bytes of value
            to = address(uint160(head >> 88));
            uint256 dataLength = _word(data, i + 53);
            // MultiSendCallOnly 1.5.0 sends calls to address(0) to the Safe itself; reject them outright.
            if (head >> 248 != 0 || to == address(0) || dataLength > end - i - 85) revert InvalidBatchEntry(i - 68);
            value = _word(data, i + 21);
            i += 85;
            next = i + dataLength;
        }
        (needsDelay, touchesSafe) = _checkCall(totals, to, value, data[i:next]);
    }
}
