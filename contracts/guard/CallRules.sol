// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {SpendingCaps} from "./SpendingCaps.sol";

/// @title CallRules
/// @notice Which calls the Safe may make: the (target, selector) allowlist with optional argument rules, the
///         recipient allowlist, and the strict decoding of token calls so that their recipient, spender or operator
///         is checked and their amount charged.
/// @dev Rules applied to every call the Safe makes (the top-level call, or each inner call of a batch), in this
///      order:
///      1. To the Safe itself: empty calldata (the no-op by which owners reject a pending transaction) is allowed
///         at once; anything else is configuration and needs the delay queue.
///      2. To this guard: only its settings, and no native value; every setting needs the delay queue except
///         `revokeMessage`, which only takes power away. Anything else (the hooks, `schedule`, `cancel`, views,
///         unknown selectors, calldata under 4 bytes) is refused with GuardCallNotAllowed whether scheduled or
///         not: a batch calling `checkAfterExecution(..., false)` could otherwise erase its own charges.
///      3. Native value > 0 or empty calldata: `to` must be an allowlisted recipient and the value is charged to
///         the native cap (token address(0)). Calldata of 1 to 3 bytes is malformed.
///      4. Standard token selectors (ERC-20, ERC-721, ERC-1155, Permit2 `approve`) need (target, selector)
///         allowlisted and are decoded strictly: exact ABI length, clean address words, bools 0 or 1, canonical
///         offsets and zero padding of dynamic arguments; anything else is MalformedCalldata. Then the recipient,
///         spender or operator must be an allowlisted recipient and the amount is charged (1 per token moved or
///         approved for NFT-kind tokens). Approvals rule: an approval is charged in full when made, and a new
///         approval to a spender is refused (ApprovalOutstanding) while an older one to it is unspent, so the
///         budget bounds what spenders can pull; revocations and decreases are always allowed.
///         `setApprovalForAll(operator, true)` hands over a whole collection: it needs the delay queue.
///         Within one call the checks run in this order: allowlist (CallNotAllowed), the whole decoding
///         (MalformedCalldata), recipient / spender / operator (RecipientNotAllowed; skipped by revocations,
///         decreases and zero amounts), outstanding approval (ApprovalOutstanding); the amount is charged with the
///         transaction's totals afterwards (SpendingCaps).
///      5. Any other selector: (target, selector) must be allowlisted; its argument rules, if any, are checked in
///         storage order.
abstract contract CallRules is SpendingCaps {
    /// @notice An allowlisted (target, selector) pair, for the constructor.
    struct CallPermission {
        address target;
        bytes4 selector;
    }

    /// @notice The argument rules of an allowlisted (target, selector) pair, for the constructor.
    struct ArgumentRuleInit {
        address target;
        bytes4 selector;
        uint256[] rules;
    }

    // ERC-20 (the first three also ERC-721). Allowlisted per token in the token flags of its cap's hot word, so a
    // transfer reads one storage word for both its permission and its charge.
    bytes4 internal constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 internal constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 internal constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)
    uint256 internal constant TRANSFER_FLAG = 1;
    uint256 internal constant APPROVE_FLAG = 2;
    uint256 internal constant TRANSFER_FROM_FLAG = 4;
    // Other token selectors, allowlisted in _callPermissions like any call.
    bytes4 internal constant INCREASE_ALLOWANCE = 0x39509351; // increaseAllowance(address,uint256)
    bytes4 internal constant DECREASE_ALLOWANCE = 0xa457c2d7; // decreaseAllowance(address,uint256)
    bytes4 internal constant SAFE_TRANSFER_FROM = 0x42842e0e; // safeTransferFrom(address,address,uint256)
    bytes4 internal constant SAFE_TRANSFER_FROM_DATA = 0xb88d4fde; // safeTransferFrom(address,address,uint256,bytes)
    bytes4 internal constant SET_APPROVAL_FOR_ALL = 0xa22cb465; // setApprovalForAll(address,bool)
    // safeTransferFrom(address,address,uint256,uint256,bytes) (ERC-1155)
    bytes4 internal constant SAFE_TRANSFER_FROM_1155 = 0xf242432a;
    // safeBatchTransferFrom(address,address,uint256[],uint256[],bytes) (ERC-1155)
    bytes4 internal constant SAFE_BATCH_TRANSFER_FROM = 0x2eb2c2d6;
    bytes4 internal constant PERMIT2_APPROVE = 0x87517c45; // approve(address,address,uint160,uint48) (Permit2)

    // The guard's settings, the only calls the Safe may make to this guard (rule 2).
    bytes4 internal constant SET_ALLOWED_CALL = bytes4(keccak256("setAllowedCall(address,bytes4,bool)"));
    bytes4 internal constant SET_ARGUMENT_RULES = bytes4(keccak256("setArgumentRules(address,bytes4,uint256[])"));
    bytes4 internal constant SET_RECIPIENT = bytes4(keccak256("setRecipient(address,bool)"));
    bytes4 internal constant SET_CAP = bytes4(keccak256("setCap(address,uint256,uint256,uint256,uint256)"));
    bytes4 internal constant SET_NFT = bytes4(keccak256("setNft(address,bool)"));
    bytes4 internal constant SET_TIER = bytes4(keccak256("setTier(address,uint256,uint256)"));
    bytes4 internal constant REMOVE_CAP = bytes4(keccak256("removeCap(address)"));
    bytes4 internal constant SET_DELAY = bytes4(keccak256("setDelay(uint256,uint256)"));
    bytes4 internal constant SET_ALLOW_REFUNDS = bytes4(keccak256("setAllowRefunds(bool)"));
    bytes4 internal constant SET_CANCEL_THRESHOLD = bytes4(keccak256("setCancelThreshold(uint256)"));
    bytes4 internal constant SET_GUARDIAN = bytes4(keccak256("setGuardian(address,bool)"));
    bytes4 internal constant APPROVE_MESSAGE = bytes4(keccak256("approveMessage(bytes32)"));
    bytes4 internal constant REVOKE_MESSAGE = bytes4(keccak256("revokeMessage(bytes32)"));
    bytes4 internal constant SET_TYPED_DATA_ALLOWED =
        bytes4(keccak256("setTypedDataAllowed(bytes32,bytes32,bool)"));

    uint256 internal constant RULE_RECIPIENT = 1; // argument rule kind: the word is an allowlisted recipient
    uint256 internal constant RULE_MAX = 2; // argument rule kind: the word is at most the bound
    uint256 internal constant RULE_BOUND_MASK = (1 << 240) - 1;

    // Bits of a _callPermissions value.
    uint256 private constant CALL_ALLOWED = 1;
    uint256 private constant CALL_HAS_RULES = 2;

    // Allowlisted (target, selector) pairs (CALL_ALLOWED) and whether they have argument rules (CALL_HAS_RULES),
    // in one word so that a call without rules reads one slot. The ERC-20 selectors live in the token flags.
    mapping(address target => mapping(bytes4 selector => uint256)) internal _callPermissions;
    // Argument rules: kind (bits 255..248) | word index (bits 247..240) | bound (bits 239..0).
    mapping(address target => mapping(bytes4 selector => uint256[])) internal _argumentRules;
    /// @notice Whether an address may receive native value, tokens, approvals or operator rights.
    mapping(address recipient => bool) public isRecipient;

    /// @notice (target, selector) was allowed or disallowed.
    event AllowedCallSet(address indexed target, bytes4 indexed selector, bool allowed);
    /// @notice `recipient` was allowed or disallowed as a recipient.
    event RecipientSet(address indexed recipient, bool allowed);
    /// @notice The argument rules of (target, selector) were replaced (empty: none).
    event ArgumentRulesSet(address indexed target, bytes4 indexed selector, uint256[] rules);

    /// @notice Calldata to `to` is malformed (1 to 3 bytes, a non-canonical token call, or too short for an
    ///         argument rule).
    error MalformedCalldata(address to);
    /// @notice (target, selector) is not allowlisted.
    error CallNotAllowed(address target, bytes4 selector);
    /// @notice `recipient` is not an allowlisted recipient.
    error RecipientNotAllowed(address recipient);
    /// @notice The Safe may not call this guard with `selector` (0 for calldata under 4 bytes), or with value.
    error GuardCallNotAllowed(bytes4 selector);
    /// @notice Argument word `index` of a call to (target, selector) breaks its rule.
    error ArgumentNotAllowed(address target, bytes4 selector, uint256 index);
    /// @notice A new approval of `token` to `spender` while an older one (`outstanding`) is unspent.
    error ApprovalOutstanding(address token, address spender, uint256 outstanding);
    /// @notice An argument rule of unknown kind, or argument rules on a standard token selector (whose arguments
    ///         the guard already decodes).
    error InvalidArgumentRule(uint256 rule);

    /// @notice Allow or disallow calls to `target` with `selector`. Only the Safe (through the delay queue).
    /// @param target The called contract.
    /// @param selector The function selector.
    /// @param allowed Whether the pair is allowed.
    function setAllowedCall(address target, bytes4 selector, bool allowed) external onlySafe {
        _setAllowedCall(target, selector, allowed);
    }

    /// @notice Replace the argument rules of (target, selector); [] removes them. Only the Safe (through the delay
    ///         queue).
    /// @param target The called contract.
    /// @param selector The function selector (not a standard token selector).
    /// @param rules Each kind (bits 255..248: 1 recipient, 2 max) | word index (bits 247..240) | bound.
    function setArgumentRules(address target, bytes4 selector, uint256[] calldata rules) external onlySafe {
        _setArgumentRules(target, selector, rules);
    }

    /// @notice Allow or disallow `recipient` as a recipient. Only the Safe (through the delay queue).
    /// @param recipient The recipient, spender or operator.
    /// @param allowed Whether it is allowed.
    function setRecipient(address recipient, bool allowed) external onlySafe {
        _setRecipient(recipient, allowed);
    }

    function _setAllowedCall(address target, bytes4 selector, bool allowed) internal {
        uint256 flag = _erc20Flag(selector);
        if (flag == 0) {
            uint256 permission = _callPermissions[target][selector];
            _callPermissions[target][selector] = allowed ? permission | CALL_ALLOWED : permission & ~CALL_ALLOWED;
        } else {
            _setTokenFlag(target, flag, allowed);
        }
        emit AllowedCallSet(target, selector, allowed);
    }

    function _setArgumentRules(address target, bytes4 selector, uint256[] memory rules) internal {
        for (uint256 i = 0; i < rules.length; ++i) {
            uint256 kind = rules[i] >> 248;
            if (kind != RULE_RECIPIENT && kind != RULE_MAX) revert InvalidArgumentRule(rules[i]);
        }
        // The standard token calls have fixed rules (rule 4); rules set on them would never be checked.
        if (rules.length != 0 && _isTokenSelector(selector)) revert InvalidArgumentRule(rules[0]);
        _argumentRules[target][selector] = rules;
        uint256 permission = _callPermissions[target][selector];
        _callPermissions[target][selector] =
            rules.length != 0 ? permission | CALL_HAS_RULES : permission & ~CALL_HAS_RULES;
        emit ArgumentRulesSet(target, selector, rules);
    }

    function _setRecipient(address recipient, bool allowed) internal {
        isRecipient[recipient] = allowed;
        emit RecipientSet(recipient, allowed);
    }

    /// @dev Checks one call (top-level or inner) and adds its spending to the transaction's per-token totals.
    ///      Returns whether the call needs the delay queue and whether it calls the Safe itself.
    function _checkCall(Totals memory totals, address to, uint256 value, bytes calldata data)
        internal
        view
        returns (bool needsDelay, bool touchesSafe)
    {
        // A call to the Safe with empty calldata only reaches its receive(): a no-op, which is how a pending
        // transaction is rejected (the same nonce spent on nothing). Anything else to the Safe is configuration.
        if (to == SAFE) return data.length == 0 ? (false, false) : (true, true);
        if (to == address(this)) return (_checkGuardCall(value, data), false);
        uint256 length = data.length;
        if (value != 0 || length == 0) {
            _requireRecipient(to);
            _addToTotal(totals, address(0), value);
            if (length == 0) return (false, false);
        }
        if (length < 4) revert MalformedCalldata(to);
        bytes4 selector = bytes4(data);
        uint256 flag = _erc20Flag(selector);
        if (flag != 0) {
            _checkErc20Call(totals, to, selector, flag, data);
            return (false, false);
        }
        uint256 permission = _callPermissions[to][selector];
        if (permission & CALL_ALLOWED == 0) revert CallNotAllowed(to, selector);
        // Standard token selectors never have argument rules (refused when set): one branch or the other.
        if (permission & CALL_HAS_RULES != 0) {
            _checkArguments(to, selector, data);
        } else if (_isTokenSelector(selector)) {
            needsDelay = _checkTokenCall(totals, to, selector, data);
        }
    }

    /// @dev Rule 2: only the settings reach this guard, without value. Returns whether the call needs the delay.
    function _checkGuardCall(uint256 value, bytes calldata data) internal pure returns (bool) {
        bytes4 selector = data.length < 4 ? bytes4(0) : bytes4(data);
        if (value != 0) revert GuardCallNotAllowed(selector);
        if (selector == REVOKE_MESSAGE) return false;
        if (
            selector == SET_ALLOWED_CALL || selector == SET_ARGUMENT_RULES || selector == SET_RECIPIENT
                || selector == SET_CAP || selector == SET_NFT || selector == SET_TIER || selector == REMOVE_CAP
                || selector == SET_DELAY || selector == SET_ALLOW_REFUNDS || selector == SET_CANCEL_THRESHOLD
                || selector == SET_GUARDIAN || selector == APPROVE_MESSAGE || selector == SET_TYPED_DATA_ALLOWED
        ) return true;
        revert GuardCallNotAllowed(selector);
    }

    /// @dev ERC-20 (and ERC-721) transfer, approve and transferFrom, allowlisted in the token's hot cap word.
    function _checkErc20Call(Totals memory totals, address token, bytes4 selector, uint256 flag, bytes calldata data)
        internal
        view
    {
        uint256 flags = _tokenFlags(token);
        if (flags & flag == 0) revert CallNotAllowed(token, selector);
        bool nft = flags & NFT_FLAG != 0;
        // transfer(to, amount) and approve(spender, amount): 4 + 2 * 32 bytes; transferFrom(from, to, amount):
        // 4 + 3 * 32 bytes. Every address word must be clean.
        uint256 recipient;
        uint256 amount;
        if (flag == TRANSFER_FROM_FLAG) {
            if (data.length != 100 || _word(data, 4) >> 160 != 0) revert MalformedCalldata(token);
            recipient = _word(data, 36);
            amount = _word(data, 68);
        } else {
            if (data.length != 68) revert MalformedCalldata(token);
            recipient = _word(data, 4);
            amount = _word(data, 36);
        }
        if (recipient >> 160 != 0) revert MalformedCalldata(token);
        if (flag == APPROVE_FLAG) {
            // Revocation: approve(spender, 0) on a fungible token, approve(address(0), id) on an NFT.
            if (nft ? recipient == 0 : amount == 0) return;
            _requireRecipient(address(uint160(recipient)));
            if (!nft) _requireNoAllowance(token, address(uint160(recipient)));
        } else {
            _requireRecipient(address(uint160(recipient)));
        }
        // An NFT-kind token's amount word is a token id: one token moves.
        _addToTotal(totals, token, nft ? 1 : amount);
    }

    /// @dev The other standard token calls (rule 4). Returns whether the call needs the delay.
    function _checkTokenCall(Totals memory totals, address target, bytes4 selector, bytes calldata data)
        internal
        view
        returns (bool needsDelay)
    {
        bytes calldata args = data[4:];
        uint256 size = args.length;
        if (selector == INCREASE_ALLOWANCE || selector == DECREASE_ALLOWANCE) {
            if (size != 64 || _word(args, 0) >> 160 != 0) revert MalformedCalldata(target);
            uint256 amount = _word(args, 32);
            if (selector == DECREASE_ALLOWANCE || amount == 0) return false;
            address spender = address(uint160(_word(args, 0)));
            _requireRecipient(spender);
            _requireNoAllowance(target, spender);
            _addToTotal(totals, target, amount);
        } else if (selector == SET_APPROVAL_FOR_ALL) {
            if (size != 64 || _word(args, 0) >> 160 != 0 || _word(args, 32) > 1) revert MalformedCalldata(target);
            if (_word(args, 32) == 0) return false;
            _requireRecipient(address(uint160(_word(args, 0))));
            return true;
        } else if (selector == PERMIT2_APPROVE) {
            // approve(token, spender, uint160 amount, uint48 expiration)
            if (size != 128 || _word(args, 0) >> 160 != 0 || _word(args, 32) >> 160 != 0) {
                revert MalformedCalldata(target);
            }
            if (_word(args, 64) >> 160 != 0 || _word(args, 96) >> 48 != 0) revert MalformedCalldata(target);
            uint256 amount = _word(args, 64);
            if (amount == 0) return false;
            address token = address(uint160(_word(args, 0)));
            address spender = address(uint160(_word(args, 32)));
            _requireRecipient(spender);
            _requireNoPermit2Allowance(target, token, spender);
            _addToTotal(totals, token, amount);
        } else {
            // Transfers: from (any: the Safe may pull what others approved to it, charged all the same), to.
            if (size < 96 || _word(args, 0) >> 160 != 0 || _word(args, 32) >> 160 != 0) {
                revert MalformedCalldata(target);
            }
            uint256 amount = 1;
            uint256 end;
            if (selector == SAFE_TRANSFER_FROM) {
                end = 96;
            } else if (selector == SAFE_TRANSFER_FROM_DATA) {
                end = _canonicalBytes(target, args, 96, 128);
            } else if (selector == SAFE_TRANSFER_FROM_1155) {
                if (size < 160) revert MalformedCalldata(target);
                amount = _word(args, 96);
                end = _canonicalBytes(target, args, 128, 160);
            } else {
                // safeBatchTransferFrom(from, to, ids, amounts, data)
                if (size < 160) revert MalformedCalldata(target);
                (uint256 idsEnd, uint256 count) = _canonicalArray(target, args, 64, 160);
                uint256 amountsStart = idsEnd;
                uint256 amountsCount;
                (end, amountsCount) = _canonicalArray(target, args, 96, amountsStart);
                if (amountsCount != count) revert MalformedCalldata(target);
                end = _canonicalBytes(target, args, 128, end);
                amount = 0;
                for (uint256 i = 0; i < count; ++i) {
                    amount = _saturatingAdd(amount, _word(args, amountsStart + 32 + 32 * i));
                }
            }
            if (end != size) revert MalformedCalldata(target);
            _requireRecipient(address(uint160(_word(args, 32))));
            _addToTotal(totals, target, amount);
        }
    }

    /// @dev A canonical `bytes` argument of a call to `target`: its offset word is at `head` and must equal
    ///      `start` (> head, both relative to the arguments), then a length word, then the bytes, zero-padded to a
    ///      multiple of 32. Returns where it ends. Reads only inside `args`: a batch entry's calldata is followed by
    ///      the next entry's.
    function _canonicalBytes(address target, bytes calldata args, uint256 head, uint256 start)
        internal
        pure
        returns (uint256 end)
    {
        uint256 size = args.length;
        if (start > size || size - start < 32 || _word(args, head) != start) revert MalformedCalldata(target);
        uint256 n = _word(args, start);
        uint256 room = size - start - 32;
        if (n > room) revert MalformedCalldata(target);
        uint256 padded = (n + 31) & ~uint256(31);
        if (padded > room) revert MalformedCalldata(target);
        end = start + 32 + padded;
        // The last (padded - n) bytes of the last word are padding.
        if (padded != n && _word(args, end - 32) << (8 * (32 - (padded - n))) != 0) revert MalformedCalldata(target);
    }

    /// @dev A canonical uint256[] argument of a call to `target`: its offset word is at `head` and must equal
    ///      `start` (> head). Returns where it ends and its length.
    function _canonicalArray(address target, bytes calldata args, uint256 head, uint256 start)
        internal
        pure
        returns (uint256 end, uint256 count)
    {
        uint256 size = args.length;
        if (start > size || size - start < 32 || _word(args, head) != start) revert MalformedCalldata(target);
        count = _word(args, start);
        if (count > (size - start - 32) / 32) revert MalformedCalldata(target);
        end = start + 32 + 32 * count;
    }

    /// @dev Rule 5: each argument rule of (target, selector), in storage order.
    function _checkArguments(address target, bytes4 selector, bytes calldata data) internal view {
        uint256[] storage rules = _argumentRules[target][selector];
        uint256 count = rules.length;
        for (uint256 i = 0; i < count; ++i) {
            uint256 rule = rules[i];
            uint256 index = (rule >> 240) & 0xff;
            uint256 offset = 4 + 32 * index;
            if (data.length < offset + 32) revert MalformedCalldata(target);
            uint256 word = _word(data, offset);
            bool ok = rule >> 248 == RULE_RECIPIENT
                ? word >> 160 == 0 && isRecipient[address(uint160(word))]
                : word <= rule & RULE_BOUND_MASK;
            if (!ok) revert ArgumentNotAllowed(target, selector, index);
        }
    }

    function _requireRecipient(address recipient) internal view {
        if (!isRecipient[recipient]) revert RecipientNotAllowed(recipient);
    }

    /// @dev The Safe's ERC-20 allowance to `spender` must be zero; a call that fails or answers short counts as an
    ///      unlimited allowance outstanding.
    function _requireNoAllowance(address token, address spender) internal view {
        address safe = SAFE;
        uint256 current = type(uint256).max;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(224, 0xdd62ed3e)) // allowance(address,address)
            mstore(add(ptr, 4), safe)
            mstore(add(ptr, 36), spender)
            // Yul evaluates arguments right to left: the call first, then its return data size.
            let ok := staticcall(gas(), token, ptr, 68, ptr, 32)
            if and(ok, gt(returndatasize(), 31)) { current := mload(ptr) }
        }
        if (current != 0) revert ApprovalOutstanding(token, spender, current);
    }

    /// @dev The Safe's Permit2 allowance of `token` to `spender` must not be live (non-zero and not expired); a
    ///      call that fails or answers short counts as an unlimited allowance outstanding.
    function _requireNoPermit2Allowance(address permit2, address token, address spender) internal view {
        address safe = SAFE;
        uint256 amount = type(uint256).max;
        uint256 expiration = type(uint256).max;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(224, 0x927da105)) // allowance(address,address,address)
            mstore(add(ptr, 4), safe)
            mstore(add(ptr, 36), token)
            mstore(add(ptr, 68), spender)
            let ok := staticcall(gas(), permit2, ptr, 100, ptr, 64)
            if and(ok, gt(returndatasize(), 95)) {
                amount := mload(ptr)
                expiration := mload(add(ptr, 32))
            }
        }
        if (amount != 0 && expiration >= block.timestamp) revert ApprovalOutstanding(token, spender, amount);
    }

    /// @notice Whether calls to `target` with `selector` are allowlisted.
    /// @param target The called contract.
    /// @param selector The function selector.
    /// @return Whether the pair is allowed.
    function isAllowedCall(address target, bytes4 selector) external view returns (bool) {
        uint256 flag = _erc20Flag(selector);
        if (flag == 0) return _callPermissions[target][selector] & CALL_ALLOWED != 0;
        return _tokenFlags(target) & flag != 0;
    }

    /// @notice The argument rules of (target, selector), in the order they are checked.
    /// @param target The called contract.
    /// @param selector The function selector.
    /// @return The rules: kind (bits 255..248) | word index (bits 247..240) | bound (bits 239..0).
    function argumentRules(address target, bytes4 selector) external view returns (uint256[] memory) {
        return _argumentRules[target][selector];
    }

    function _erc20Flag(bytes4 selector) internal pure returns (uint256) {
        if (selector == TRANSFER) return TRANSFER_FLAG;
        if (selector == APPROVE) return APPROVE_FLAG;
        if (selector == TRANSFER_FROM) return TRANSFER_FROM_FLAG;
        return 0;
    }

    /// @dev The standard token selectors other than the ERC-20 three (rule 4).
    function _isTokenSelector(bytes4 selector) internal pure returns (bool) {
        return selector == INCREASE_ALLOWANCE || selector == DECREASE_ALLOWANCE || selector == SAFE_TRANSFER_FROM
            || selector == SAFE_TRANSFER_FROM_DATA || selector == SET_APPROVAL_FOR_ALL
            || selector == SAFE_TRANSFER_FROM_1155 || selector == SAFE_BATCH_TRANSFER_FROM
            || selector == PERMIT2_APPROVE || _erc20Flag(selector) != 0;
    }
}
