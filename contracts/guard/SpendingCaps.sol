// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {SafeBound} from "./SafeBound.sol";

/// @title SpendingCaps
/// @notice Per-token spending caps of TreasuryGuard: a refilling budget per period, a per-transaction limit and a
///         delay threshold; charged while a transaction is checked, given back if it fails.
/// @dev Spending cap scheme (exact sliding window). Each period is split into SUBSLOTS = 2 sub-slots of length
///      L = ceil(period / 2), aligned to multiples of L since the epoch. The guard keeps what was spent in the
///      current sub-slot and in the two before it and charges only if the sum of the three stays <= amount.
///      Any window of length `period` (open or closed) lies within three consecutive sub-slots, so the total
///      charged in any such window never exceeds `amount`. Spent budget comes back on its own between `period`
///      and 3 * L (1.5 * `period`, rounded up for an odd period) after it was spent; there is no window edge at
///      which the budget resets.
///      Storage: one hot word per token (budget left in the current sub-slot, min(maxPerTx, delayThreshold), end
///      of the current sub-slot, and which ERC-20 selectors are allowlisted on the token) is all that a charge in
///      the current sub-slot reads and writes; the first charge in a new sub-slot also reads and rolls the
///      configuration and history words.
abstract contract SpendingCaps is SafeBound {
    struct CapInit {
        address token;
        uint256 amount;
        uint256 period;
        uint256 maxPerTx;
        uint256 delayThreshold;
    }


    /// @dev Per-token cap state, four storage words, grouped by use: a charge in the current sub-slot touches word 0
    ///      only; a total above fastBound also reads word 2; the first charge of a new sub-slot also rolls words 1
    ///      and 3. Word 0 also holds the token's ERC-20 selector allowlist.
    ///      Invariants: roomStart - left is what was spent in the current sub-slot; while the cap is unchanged,
    ///      spent(current) + spentPrev1 + spentPrev2 <= amount.
    struct Cap {
        // word 0 (hot)
        uint104 left; // budget left in the current sub-slot
        uint104 fastBound; // min(maxPerTx, delayThreshold): a total up to this needs no further check
        uint40 slotEnd; // end (exclusive) of the current sub-slot
        uint8 erc20Calls; // which of transfer (1), approve (2), transferFrom (4) are allowlisted on this token
        // word 1
        uint104 amount;
        uint104 roomStart; // budget the current sub-slot started with
        uint40 period;
        // word 2
        uint104 maxPerTx;
        uint104 delayThreshold;
        // word 3: spending history
        uint104 spentPrev1; // spent in the sub-slot before the current one
        uint104 spentPrev2; // spent two sub-slots before the current one
        bool nonZero; // always true once configured: rewriting a non-zero word costs 2,900 gas, a zero one 20,000
    }

    /// @dev Per-token totals of the transaction being checked, accumulated in memory; persisted to transient storage
    ///      once the check is done, for the refund in the after-execution hook.
    struct Totals {
        uint256 count;
        address[] tokens;
        uint256[] amounts;
    }


    /// @notice Number of sub-slots a cap period is split into.
    uint256 public constant SUBSLOTS = 2;
    /// @notice Largest cap amount, per-transaction limit and delay threshold (2**104 - 1).
    uint256 public constant MAX_AMOUNT = type(uint104).max;
    /// @notice Shortest cap period, in seconds.
    uint256 public constant MIN_PERIOD = 1 minutes;
    /// @notice Longest cap period, in seconds.
    uint256 public constant MAX_PERIOD = 365 days;
    // keccak256("TreasuryGuard.totals"): transient (token, total) pairs of the transaction being checked, kept
    // for the refund in the after-execution hook at TOTALS_SLOT + 2i (token) and TOTALS_SLOT + 2i + 1 (total).
    uint256 internal constant TOTALS_SLOT = 0x85fec8d72522c1aa3f1f39988950d2d75430ae45234498c4b971148c5d701e2d;

    mapping(address token => Cap) internal _caps;

    /// @notice The cap of `token` was set.
    event CapSet(address indexed token, uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold);
    /// @notice The cap of `token` was removed (zero budget from now on).
    event CapRemoved(address indexed token);
    /// @notice `amount` of `token` (address(0): native) was charged to its cap.
    event Charged(address indexed token, uint256 amount);
    /// @notice A charge of `amount` of `token` was given back because the inner call failed.
    event Refunded(address indexed token, uint256 amount);

    /// @notice `token` has no cap configured: zero budget.
    error CapNotSet(address token);
    /// @notice The transaction's total of `token` exceeds its per-transaction limit.
    error ExceedsPerTxLimit(address token, uint256 total, uint256 limit);
    /// @notice The transaction's total of `token` exceeds the budget left.
    error ExceedsBudget(address token, uint256 total, uint256 left);
    /// @notice Cap period outside [MIN_PERIOD, MAX_PERIOD].
    error InvalidPeriod(uint256 period);
    /// @notice Amount above MAX_AMOUNT.
    error AmountTooLarge(uint256 amount);

    /// @notice Set the cap of `token` (address(0): native). Only the Safe (through the delay queue).
    /// @dev Everything spent within the current window so far is counted, from now on, as spent in the current
    ///      sub-slot (conservative: it comes back at the latest 3 * L seconds after this change, L being the new
    ///      sub-slot length, instead of 3 * L after it was spent).
    /// @param token The token.
    /// @param amount Budget per `period`, at most MAX_AMOUNT.
    /// @param period Length of the sliding window, in [MIN_PERIOD, MAX_PERIOD] seconds.
    /// @param maxPerTx Largest total of `token` in one transaction, at most MAX_AMOUNT.
    /// @param delayThreshold A transaction whose total of `token` exceeds this must be scheduled; at most
    ///        MAX_AMOUNT.
    function setCap(address token, uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold)
        external
        onlySafe
    {
        _setCap(token, amount, period, maxPerTx, delayThreshold);
    }

    /// @notice Remove the cap of `token`: its budget becomes zero. Only the Safe (through the delay queue).
    /// @dev The spending history is kept, so a later `setCap` still counts what was spent recently.
    /// @param token The token.
    function removeCap(address token) external onlySafe {
        uint256 period = _caps[token].period;
        if (period != 0) _writeCap(token, 0, period, 0, 0);
        emit CapRemoved(token);
    }

    function _setCap(address token, uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold)
        internal
    {
        if (period < MIN_PERIOD || period > MAX_PERIOD) revert InvalidPeriod(period);
        if (amount > MAX_AMOUNT) revert AmountTooLarge(amount);
        if (maxPerTx > MAX_AMOUNT) revert AmountTooLarge(maxPerTx);
        if (delayThreshold > MAX_AMOUNT) revert AmountTooLarge(delayThreshold);
        _writeCap(token, amount, period, maxPerTx, delayThreshold);
        emit CapSet(token, amount, period, maxPerTx, delayThreshold);
    }

    /// @dev Writes a validated cap. What is still inside the window is carried into the new current sub-slot.
    function _writeCap(address token, uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold)
        internal
    {
        Cap storage cap = _caps[token];
        uint256 spent = _spentInWindow(cap);
        uint256 room = amount > spent ? amount - spent : 0;
        uint256 length = _subSlotLength(period);
        cap.left = uint104(room);
        cap.fastBound = uint104(maxPerTx < delayThreshold ? maxPerTx : delayThreshold);
        cap.slotEnd = uint40((block.timestamp / length + 1) * length);
        cap.amount = uint104(amount);
        cap.maxPerTx = uint104(maxPerTx);
        cap.period = uint40(period);
        cap.delayThreshold = uint104(delayThreshold);
        cap.roomStart = uint104(spent + room); // roomStart - left == spent
        cap.spentPrev1 = 0;
        cap.spentPrev2 = 0;
        cap.nonZero = true;
    }

    /// @dev Checks and charges every token total of the transaction. Returns whether one exceeds its delay
    ///      threshold.
    function _chargeAll(Totals memory totals) internal returns (bool needsDelay) {
        uint256 count = totals.count;
        uint256 slot = TOTALS_SLOT;
        for (uint256 i = 0; i < count; ++i) {
            address token = totals.tokens[i];
            uint256 total = totals.amounts[i];
            if (_charge(token, total)) needsDelay = true;
            // Kept for the refund in the after-execution hook.
            _tstore(slot, uint256(uint160(token)));
            _tstore(slot + 1, total);
            unchecked {
                slot += 2;
            }
        }
    }

    /// @dev Charges `total` (> 0) of `token`. Fast path: the hot word alone, when the total is within both the
    ///      per-transaction limit and the delay threshold and the current sub-slot has not ended.
    function _charge(address token, uint256 total) internal returns (bool needsDelay) {
        Cap storage cap = _caps[token];
        (uint256 left, uint256 fastBound, uint256 slotEnd) = (cap.left, cap.fastBound, cap.slotEnd);
        if (total > fastBound) {
            uint256 maxPerTx = cap.maxPerTx;
            if (total > maxPerTx) {
                if (cap.period == 0) revert CapNotSet(token);
                revert ExceedsPerTxLimit(token, total, maxPerTx);
            }
            needsDelay = total > cap.delayThreshold;
        }
        if (block.timestamp >= slotEnd) left = _rollOver(cap);
        if (total > left) revert ExceedsBudget(token, total, left);
        cap.left = uint104(left - total);
        emit Charged(token, total);
    }

    /// @dev Moves the cap to the current sub-slot: shifts the history, recomputes the starting budget.
    ///      Returns the budget left (all of the new sub-slot's budget).
    function _rollOver(Cap storage cap) internal returns (uint256 room) {
        uint256 length = _subSlotLength(cap.period);
        uint256 current = block.timestamp / length;
        uint256 elapsed = current - (cap.slotEnd / length - 1);
        uint256 spentLast = cap.roomStart - cap.left;
        uint256 prev1;
        uint256 prev2;
        if (elapsed == 1) {
            (prev1, prev2) = (spentLast, cap.spentPrev1);
        } else if (elapsed == 2) {
            prev2 = spentLast;
        }
        uint256 amount = cap.amount;
        room = amount > prev1 + prev2 ? amount - prev1 - prev2 : 0;
        cap.slotEnd = uint40((current + 1) * length);
        cap.roomStart = uint104(room);
        cap.spentPrev1 = uint104(prev1);
        cap.spentPrev2 = uint104(prev2);
    }

    /// @dev Gives back the `count` charges of the transaction being checked (its inner call failed). Same
    ///      transaction, same block: still the sub-slot the charges went to.
    function _refundAll(uint256 count) internal {
        for (uint256 slot = TOTALS_SLOT; slot < _totalsEnd(count); slot += 2) {
            address token = address(uint160(_tload(slot)));
            uint256 total = _tload(slot + 1);
            _caps[token].left += uint104(total);
            emit Refunded(token, total);
        }
    }

    /// @notice The cap of `token` (all zero: none; amount zero after `removeCap`).
    /// @param token The token (address(0): native).
    /// @return amount Budget per period.
    /// @return period Window length in seconds.
    /// @return maxPerTx Per-transaction limit.
    /// @return delayThreshold Totals above this need the delay.
    function capConfig(address token)
        external
        view
        returns (uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold)
    {
        Cap storage cap = _caps[token];
        return (cap.amount, cap.period, cap.maxPerTx, cap.delayThreshold);
    }

    /// @notice What a transaction could spend of `token` now (the per-transaction limit aside).
    /// @param token The token (address(0): native).
    /// @return The budget left.
    function budgetLeft(address token) external view returns (uint256) {
        Cap storage cap = _caps[token];
        if (block.timestamp < cap.slotEnd) return cap.left;
        uint256 amount = cap.amount;
        uint256 spent = _spentInWindow(cap);
        return amount > spent ? amount - spent : 0;
    }

    /// @notice What counts as spent of `token` now: spending in the current and the two previous sub-slots.
    /// @param token The token (address(0): native).
    /// @return The amount counted against the cap.
    function spentInWindow(address token) external view returns (uint256) {
        return _spentInWindow(_caps[token]);
    }

    function _subSlotLength(uint256 period) internal pure returns (uint256) {
        return (period + SUBSLOTS - 1) / SUBSLOTS;
    }

    /// @dev Spending that still counts now: current sub-slot and the two before it.
    function _spentInWindow(Cap storage cap) internal view returns (uint256) {
        uint256 period = cap.period;
        if (period == 0) return 0;
        uint256 slotEnd = cap.slotEnd;
        uint256 spentLast = cap.roomStart - cap.left;
        if (block.timestamp < slotEnd) return spentLast + cap.spentPrev1 + cap.spentPrev2;
        uint256 length = _subSlotLength(period);
        uint256 elapsed = block.timestamp / length - (slotEnd / length - 1);
        if (elapsed == 1) return spentLast + cap.spentPrev1;
        if (elapsed == 2) return spentLast;
        return 0;
    }

    function _newTotals(uint256 capacity) internal pure returns (Totals memory) {
        return Totals(0, new address[](capacity), new uint256[](capacity));
    }

    /// @dev Adds `amount` of `token` to the transaction's totals.
    function _addToTotal(Totals memory totals, address token, uint256 amount) internal pure {
        if (amount == 0) return;
        uint256 count = totals.count;
        for (uint256 i = 0; i < count; ++i) {
            if (totals.tokens[i] == token) {
                totals.amounts[i] += amount;
                return;
            }
        }
        totals.tokens[count] = token;
        totals.amounts[count] = amount;
        totals.count = count + 1;
    }

    /// @dev First transient slot after `count` (token, total) pairs. TOTALS_SLOT + 2 * count cannot overflow: count
    ///      is bounded by the number of calls in one transaction.
    function _totalsEnd(uint256 count) internal pure returns (uint256) {
        unchecked {
            return TOTALS_SLOT + 2 * count;
        }
    }

    function _tload(uint256 slot) internal view returns (uint256 value) {
        assembly ("memory-safe") {
            value := tload(slot)
        }
    }

    function _tstore(uint256 slot, uint256 value) internal {
        assembly ("memory-safe") {
            tstore(slot, value)
        }
    }
}
