// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {SpendingCaps} from "./SpendingCaps.sol";

/// @title CallRules
/// @notice Which calls the Safe may make: the (target, selector) allowlist, the recipient allowlist, and the strict
///         decoding of token calls so that their recipient or spender is checked and their amount charged.
/// @dev Rules applied to every call the Safe makes (the top-level call, or each inner call of a batch):
///      - A call to the Safe itself (owners, threshold, modules, guard, fallback handler, ...) or to this guard
///        (settings) is allowed only through the delay queue; it needs no allowlist entry and is not charged.
///        The one exception is a call to the Safe with empty calldata (it only reaches the Safe's receive()): the
///        no-op by which owners reject a pending transaction, allowed at once.
///      - Empty calldata: `to` must be an allowlisted recipient. Calldata of 1 to 3 bytes is rejected.
///      - Native value > 0: `to` must be an allowlisted recipient and the value is charged to the native cap
///        (token address(0)).
///      - Otherwise (target, selector) must be allowlisted. ERC-20 `transfer`, `approve` and `transferFrom` are
///        decoded strictly (exact length, clean address words); the recipient or spender must be an allowlisted
///        recipient and the amount is charged to the target token's cap (for `transferFrom` always, whoever `from`
///        is). ERC-721's `approve`/`transferFrom` share these selectors and are treated the same way.
abstract contract CallRules is SpendingCaps {
    /// @notice An allowlisted (target, selector) pair, for the constructor.
    struct CallPermission {
        address target;
        bytes4 selector;
    }


    bytes4 internal constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 internal constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 internal constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)
    uint256 internal constant TRANSFER_FLAG = 1;
    uint256 internal constant APPROVE_FLAG = 2;
    uint256 internal constant TRANSFER_FROM_FLAG = 4;

    // Allowlisted (target, selector) pairs, except the three ERC-20 selectors, kept in the token's Cap.erc20Calls.
    mapping(address target => mapping(bytes4 selector => bool)) internal _allowedCalls;
    /// @notice Whether an address may receive native value, ERC-20 transfers or approvals.
    mapping(address recipient => bool) public isRecipient;

    /// @notice (target, selector) was allowed or disallowed.
    event AllowedCallSet(address indexed target, bytes4 indexed selector, bool allowed);
    /// @notice `recipient` was allowed or disallowed as a recipient.
    event RecipientSet(address indexed recipient, bool allowed);

    /// @notice Calldata to `to` is malformed (1 to 3 bytes, or a wrong length or dirty address in an ERC-20 call).
    error MalformedCalldata(address to);
    /// @notice (target, selector) is not allowlisted.
    error CallNotAllowed(address target, bytes4 selector);
    /// @notice `recipient` is not an allowlisted recipient.
    error RecipientNotAllowed(address recipient);

    /// @notice Allow or disallow calls to `target` with `selector`. Only the Safe (through the delay queue).
    /// @param target The called contract.
    /// @param selector The function selector.
    /// @param allowed Whether the pair is allowed.
    function setAllowedCall(address target, bytes4 selector, bool allowed) external onlySafe {
        _setAllowedCall(target, selector, allowed);
    }

    /// @notice Allow or disallow `recipient` as a recipient. Only the Safe (through the delay queue).
    /// @param recipient The recipient or spender.
    /// @param allowed Whether it is allowed.
    function setRecipient(address recipient, bool allowed) external onlySafe {
        _setRecipient(recipient, allowed);
    }

    function _setAllowedCall(address target, bytes4 selector, bool allowed) internal {
        uint256 flag = _erc20Flag(selector);
        if (flag == 0) {
            _allowedCalls[target][selector] = allowed;
        } else {
            Cap storage cap = _caps[target];
            cap.erc20Calls = uint8(allowed ? cap.erc20Calls | flag : cap.erc20Calls & ~flag);
        }
        emit AllowedCallSet(target, selector, allowed);
    }

    function _setRecipient(address recipient, bool allowed) internal {
        isRecipient[recipient] = allowed;
        emit RecipientSet(recipient, allowed);
    }

    /// @dev Checks one call (top-level or inner) and adds its spending to the transaction's per-token totals.
    function _checkCall(Totals memory totals, address to, uint256 value, bytes calldata data)
        internal
        view
        returns (bool needsDelay, bool touchesSafe)
    {
        // A call to the Safe with empty calldata only reaches its receive(): a no-op, which is how a pending
        // transaction is rejected (the same nonce spent on nothing). Anything else to the Safe is configuration.
        if (to == SAFE) return data.length == 0 ? (false, false) : (true, true);
        if (to == address(this)) return (true, false);
        uint256 length = data.length;
        if (value != 0 || length == 0) {
            if (!isRecipient[to]) revert RecipientNotAllowed(to);
            _addToTotal(totals, address(0), value);
            if (length == 0) return (false, false);
        }
        if (length < 4) revert MalformedCalldata(to);
        bytes4 selector = bytes4(data);
        uint256 flag = _erc20Flag(selector);
        if (flag == 0) {
            if (!_allowedCalls[to][selector]) revert CallNotAllowed(to, selector);
            return (false, false);
        }
        if (_caps[to].erc20Calls & flag == 0) revert CallNotAllowed(to, selector);
        // transfer(to, amount) and approve(spender, amount): 4 + 2 * 32 bytes; transferFrom(from, to, amount):
        // 4 + 3 * 32 bytes. Every address word must be clean.
        uint256 recipient;
        uint256 amount;
        if (flag == TRANSFER_FROM_FLAG) {
            if (length != 100 || _word(data, 4) >> 160 != 0) revert MalformedCalldata(to);
            recipient = _word(data, 36);
            amount = _word(data, 68);
        } else {
            if (length != 68) revert MalformedCalldata(to);
            recipient = _word(data, 4);
            amount = _word(data, 36);
        }
        if (recipient >> 160 != 0) revert MalformedCalldata(to);
        if (!isRecipient[address(uint160(recipient))]) revert RecipientNotAllowed(address(uint160(recipient)));
        _addToTotal(totals, to, amount);
        return (false, false);
    }

    /// @notice Whether calls to `target` with `selector` are allowlisted.
    /// @param target The called contract.
    /// @param selector The function selector.
    /// @return Whether the pair is allowed.
    function isAllowedCall(address target, bytes4 selector) external view returns (bool) {
        uint256 flag = _erc20Flag(selector);
        if (flag == 0) return _allowedCalls[target][selector];
        return _caps[target].erc20Calls & flag != 0;
    }

    function _erc20Flag(bytes4 selector) internal pure returns (uint256) {
        if (selector == TRANSFER) return TRANSFER_FLAG;
        if (selector == APPROVE) return APPROVE_FLAG;
        if (selector == TRANSFER_FROM) return TRANSFER_FROM_FLAG;
        return 0;
    }
}
