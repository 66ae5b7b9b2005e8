// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {SafeBound} from "./SafeBound.sol";

/// @title SpendingCaps
/// @notice Per-token spending caps of TreasuryGuard: a refilling budget per period, a per-transaction limit, a
///         delay threshold and a tier (more owner signatures above an amount); charged while a transaction is
///         checked, given back if it fails. A token can be NFT-kind: each token moved or approved counts 1.
/// @dev Spending cap scheme (exact sliding window). Each period is split into SUBSLOTS = 2 sub-slots of length
///      L = ceil(period / 2), aligned to multiples of L since the epoch. The guard keeps what was spent in the
///      current sub-slot and in the two before it and charges only if the sum of the three stays <= amount.
///      Any window of length `period` (open or closed) lies within three consecutive sub-slots, so the total
///      charged in any such window never exceeds `amount`. Spent budget comes back on its own between `period`
///      and 3 * L (1.5 * `period`, rounded up for an odd period) after it was spent; there is no window edge at
///      which the budget resets.
///      Bookkeeping: each sub-slot starts with roomStart = max(0, amount - prev1 - prev2) (prev1, prev2: spent in
///      the two sub-slots before it) and the budget left counts down from there, so a charge needs `left` only,
///      and the first charge of a new sub-slot needs `left`, `roomStart` and prev1 only (the spending of the new
///      prev1 and prev2 is known then): prev2 is never stored on the charging path. While the cap is unchanged
///      roomStart + prev1 + prev2 == amount, which gives prev2 to the views; only when that sum exceeds the
///      amount (after the cap was lowered below what was spent) is prev2 written down, in the rare word.
///      Storage, four words per token (a charge in the current sub-slot touches word 0 only; a total above the
///      power-of-two fast bound also reads word 2, and word 3 if a tier is set; the first charge of a sub-slot
///      also reads and writes word 1):
///      word 0 (hot):    left (104) | prev1 (104) | slotEnd (32) | fastShift (8) | token flags (8)
///      word 1 (roll):   amount (104) | roomStart (104) | period (32) | prev2 written (8)
///      word 2 (limits): maxPerTx (104) | delayThreshold (104) | tierSigners (8)
///      word 3 (rare):   tierAmount (104) | prev2 (104, meaningful only when written)
///      fastShift is the largest k with 2**k - 1 <= min(maxPerTx, delayThreshold, tierAmount if a tier is set): a
///      total below 2**k needs no limit check. slotEnd as uint32 holds timestamps until 2106.
abstract contract SpendingCaps is SafeBound {
    struct CapInit {
        address token;
        uint256 amount;
        uint256 period;
        uint256 maxPerTx;
        uint256 delayThreshold;
        bool nft;
        uint256 tierAmount;
        uint256 tierSigners;
    }

    /// @dev Per-token cap state: four packed words, see the contract documentation.
    struct Cap {
        uint256 hot;
        uint256 roll;
        uint256 limits;
        uint256 rare;
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
    /// @notice Largest cap amount, per-transaction limit, delay threshold and tier amount (2**104 - 1).
    uint256 public constant MAX_AMOUNT = type(uint104).max;
    /// @notice Shortest cap period, in seconds.
    uint256 public constant MIN_PERIOD = 1 minutes;
    /// @notice Longest cap period, in seconds.
    uint256 public constant MAX_PERIOD = 365 days;
    // keccak256("TreasuryGuard.totals"): transient (token, total) pairs of the transaction being checked, kept
    // for the refund in the after-execution hook at TOTALS_SLOT + 2i (token) and TOTALS_SLOT + 2i + 1 (total).
    uint256 internal constant TOTALS_SLOT = 0x85fec8d72522c1aa3f1f39988950d2d75430ae45234498c4b971148c5d701e2d;

    // Token flags (top byte of word 0): ERC-20 selectors allowlisted on the token (CallRules) and the NFT kind.
    uint256 internal constant NFT_FLAG = 0x80;

    uint256 private constant M104 = (1 << 104) - 1;
    uint256 private constant M32 = (1 << 32) - 1;
    // word 0
    uint256 private constant PREV1_SHIFT = 104;
    uint256 private constant SLOT_END_SHIFT = 208;
    uint256 private constant FAST_SHIFT_SHIFT = 240;
    uint256 private constant FLAGS_SHIFT = 248;
    // word 1
    uint256 private constant ROOM_START_SHIFT = 104;
    uint256 private constant PERIOD_SHIFT = 208;
    uint256 private constant PREV2_WRITTEN_SHIFT = 240;
    // word 2
    uint256 private constant DELAY_THRESHOLD_SHIFT = 104;
    uint256 private constant TIER_SIGNERS_SHIFT = 208;
    // word 3
    uint256 private constant PREV2_SHIFT = 104;

    mapping(address token => Cap) internal _caps;

    /// @notice The cap of `token` was set.
    event CapSet(address indexed token, uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold);
    /// @notice The cap of `token` was removed (zero budget from now on).
    event CapRemoved(address indexed token);
    /// @notice `token` was marked as an NFT collection (each token moved or approved counts 1) or not.
    event NftSet(address indexed token, bool nft);
    /// @notice The tier of `token` was set: a total above `amount` needs `signers` owner signatures (0: none).
    event TierSet(address indexed token, uint256 amount, uint256 signers);
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
    /// @notice Tier signers above 255.
    error InvalidTier(uint256 signers);

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
        uint256 period = (_caps[token].roll >> PERIOD_SHIFT) & M32;
        if (period != 0) _writeCap(token, 0, period, 0, 0);
        emit CapRemoved(token);
    }

    /// @notice Mark `token` as an NFT collection or not. Only the Safe (through the delay queue).
    /// @dev An NFT-kind token's transfer, transferFrom and approve carry a token id, not an amount: each counts 1
    ///      against the cap, and approve(address(0), id) is the revocation.
    /// @param token The token contract.
    /// @param nft Whether it is an NFT collection.
    function setNft(address token, bool nft) external onlySafe {
        _setNft(token, nft);
    }

    /// @notice Set the tier of `token`: a transaction whose total of it exceeds `amount` needs at least `signers`
    ///         valid owner signatures. Only the Safe (through the delay queue).
    /// @param token The token (address(0): native).
    /// @param amount Totals above this need the tier's signatures; at most MAX_AMOUNT.
    /// @param signers Owner signatures required, at most 255; 0 removes the tier.
    function setTier(address token, uint256 amount, uint256 signers) external onlySafe {
        _setTier(token, amount, signers);
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
        uint256 slotEnd = (block.timestamp / length + 1) * length;
        // roomStart - left == spent; prev1 = prev2 = 0. If spent > amount, roomStart + prev1 + prev2 != amount:
        // prev2 (0) is written down.
        uint256 limits = (cap.limits & ~((1 << TIER_SIGNERS_SHIFT) - 1)) | maxPerTx
            | (delayThreshold << DELAY_THRESHOLD_SHIFT);
        cap.limits = limits;
        cap.roll = amount | ((spent + room) << ROOM_START_SHIFT) | (period << PERIOD_SHIFT)
            | ((spent > amount ? 1 : 0) << PREV2_WRITTEN_SHIFT);
        cap.rare = cap.rare & M104;
        cap.hot = room | (slotEnd << SLOT_END_SHIFT) | (_fastShift(limits, cap.rare) << FAST_SHIFT_SHIFT)
            | ((cap.hot >> FLAGS_SHIFT) << FLAGS_SHIFT);
    }

    function _setNft(address token, bool nft) internal {
        _setTokenFlag(token, NFT_FLAG, nft);
        emit NftSet(token, nft);
    }

    function _setTier(address token, uint256 amount, uint256 signers) internal {
        if (signers > type(uint8).max) revert InvalidTier(signers);
        if (amount > MAX_AMOUNT) revert AmountTooLarge(amount);
        Cap storage cap = _caps[token];
        uint256 limits = (cap.limits & ((1 << TIER_SIGNERS_SHIFT) - 1)) | (signers << TIER_SIGNERS_SHIFT);
        uint256 rare = (cap.rare & ~M104) | amount;
        cap.limits = limits;
        cap.rare = rare;
        uint256 hot = cap.hot;
        cap.hot = (hot & ~(uint256(0xff) << FAST_SHIFT_SHIFT)) | (_fastShift(limits, rare) << FAST_SHIFT_SHIFT);
        emit TierSet(token, amount, signers);
    }

    /// @dev The token flags (ERC-20 selectors allowlisted, NFT kind): the top byte of the hot word, which the
    ///      charge reads anyway.
    function _tokenFlags(address token) internal view returns (uint256) {
        return _caps[token].hot >> FLAGS_SHIFT;
    }

    function _setTokenFlag(address token, uint256 flag, bool on) internal {
        Cap storage cap = _caps[token];
        uint256 hot = cap.hot;
        cap.hot = on ? hot | (flag << FLAGS_SHIFT) : hot & ~(flag << FLAGS_SHIFT);
    }

    /// @dev The largest k with 2**k - 1 <= min(maxPerTx, delayThreshold, tierAmount if a tier is set).
    function _fastShift(uint256 limits, uint256 rare) internal pure returns (uint256 k) {
        uint256 bound = limits & M104;
        uint256 threshold = (limits >> DELAY_THRESHOLD_SHIFT) & M104;
        if (threshold < bound) bound = threshold;
        if ((limits >> TIER_SIGNERS_SHIFT) & 0xff != 0 && rare & M104 < bound) bound = rare & M104;
        while ((bound + 1) >> (k + 1) != 0) ++k;
    }

    /// @dev Checks and charges every token total of the transaction. Returns whether one exceeds its delay
    ///      threshold and how many owner signatures the tiers require (0: no tier reached).
    function _chargeAll(Totals memory totals) internal returns (bool needsDelay, uint256 requiredSigners) {
        uint256 count = totals.count;
        uint256 slot = TOTALS_SLOT;
        for (uint256 i = 0; i < count;) {
            address token = totals.tokens[i];
            uint256 total = totals.amounts[i];
            (bool delayed, uint256 signers) = _charge(token, total);
            if (delayed) needsDelay = true;
            if (signers > requiredSigners) requiredSigners = signers;
            // Kept for the refund in the after-execution hook.
            _tstore(slot, uint256(uint160(token)));
            _tstore(slot + 1, total);
            unchecked {
                slot += 2;
                ++i;
            }
        }
    }

    /// @dev Charges `total` (> 0) of `token`. Fast path: the hot word alone, when the total is below the fast
    ///      bound and the current sub-slot has not ended. No event: the charge is what the Safe's own
    ///      ExecutionSuccess and the token's Transfer/Approval events already tell, and `budgetLeft` reads it.
    function _charge(address token, uint256 total) internal returns (bool needsDelay, uint256 requiredSigners) {
        Cap storage cap = _caps[token];
        uint256 hot = cap.hot;
        if (total >> ((hot >> FAST_SHIFT_SHIFT) & 0xff) != 0) {
            (needsDelay, requiredSigners) = _checkLimits(cap, token, total);
        }
        uint256 left = hot & M104;
        if (block.timestamp >= (hot >> SLOT_END_SHIFT) & M32) (left, hot) = _rollOver(cap, hot);
        if (total > left) revert ExceedsBudget(token, total, left);
        unchecked {
            cap.hot = (hot & ~M104) | (left - total);
        }
    }

    /// @dev The per-transaction limit, the delay threshold and the tier, for a total above the fast bound.
    function _checkLimits(Cap storage cap, address token, uint256 total)
        internal
        view
        returns (bool needsDelay, uint256 requiredSigners)
    {
        uint256 limits = cap.limits;
        uint256 maxPerTx = limits & M104;
        if (total > maxPerTx) {
            if ((cap.roll >> PERIOD_SHIFT) & M32 == 0) revert CapNotSet(token);
            revert ExceedsPerTxLimit(token, total, maxPerTx);
        }
        needsDelay = total > (limits >> DELAY_THRESHOLD_SHIFT) & M104;
        uint256 signers = (limits >> TIER_SIGNERS_SHIFT) & 0xff;
        if (signers != 0 && total > cap.rare & M104) requiredSigners = signers;
    }

    /// @dev Moves the cap to the current sub-slot: the new prev1 and prev2 are what was spent in the sub-slots
    ///      before it, roomStart = max(0, amount - prev1 - prev2). Returns the new budget left and the new hot word
    ///      (with that budget left).
    function _rollOver(Cap storage cap, uint256 hot) internal returns (uint256 room, uint256 newHot) {
        uint256 roll = cap.roll;
        uint256 amount = roll & M104;
        // Unchecked: a cap that is charged is configured (period in [MIN_PERIOD, MAX_PERIOD], slotEnd a positive
        // multiple of the sub-slot length, at most the current time), left <= roomStart, and every amount is below
        // 2**104: nothing below can overflow or underflow.
        unchecked {
            uint256 length = (((roll >> PERIOD_SHIFT) & M32) + SUBSLOTS - 1) / SUBSLOTS;
            uint256 current = block.timestamp / length;
            uint256 elapsed = current - (((hot >> SLOT_END_SHIFT) & M32) / length - 1);
            uint256 spentLast = ((roll >> ROOM_START_SHIFT) & M104) - (hot & M104);
            uint256 prev1;
            uint256 prev2;
            if (elapsed == 1) {
                (prev1, prev2) = (spentLast, (hot >> PREV1_SHIFT) & M104);
            } else if (elapsed == 2) {
                prev2 = spentLast;
            }
            uint256 prev2Written;
            if (amount >= prev1 + prev2) {
                room = amount - prev1 - prev2;
            } else {
                // Only after the cap was lowered below what was spent: prev2 is not amount - prev1 - roomStart.
                prev2Written = 1;
                cap.rare = (cap.rare & M104) | (prev2 << PREV2_SHIFT);
            }
            cap.roll = (roll & ~(M104 << ROOM_START_SHIFT) & ~(uint256(0xff) << PREV2_WRITTEN_SHIFT))
                | (room << ROOM_START_SHIFT) | (prev2Written << PREV2_WRITTEN_SHIFT);
            newHot = room | (prev1 << PREV1_SHIFT) | ((current + 1) * length << SLOT_END_SHIFT)
                | ((hot >> FAST_SHIFT_SHIFT) << FAST_SHIFT_SHIFT);
        }
    }

    /// @dev Gives back the `count` charges of the transaction being checked (its inner call failed). Same
    ///      transaction, same block: still the sub-slot the charges went to, and left + total fits where left was.
    function _refundAll(uint256 count) internal {
        for (uint256 slot = TOTALS_SLOT; slot < _totalsEnd(count); slot += 2) {
            address token = address(uint160(_tload(slot)));
            uint256 total = _tload(slot + 1);
            _caps[token].hot += total;
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
        (uint256 roll, uint256 limits) = (cap.roll, cap.limits);
        return (roll & M104, (roll >> PERIOD_SHIFT) & M32, limits & M104, (limits >> DELAY_THRESHOLD_SHIFT) & M104);
    }

    /// @notice Whether `token` is an NFT collection (each token moved or approved counts 1).
    /// @param token The token contract.
    /// @return Whether it is NFT-kind.
    function isNft(address token) external view returns (bool) {
        return _tokenFlags(token) & NFT_FLAG != 0;
    }

    /// @notice The tier of `token`: totals above `amount` need `signers` owner signatures (signers 0: no tier).
    /// @param token The token (address(0): native).
    /// @return amount The tier's amount.
    /// @return signers Owner signatures required above it.
    function tierConfig(address token) external view returns (uint256 amount, uint256 signers) {
        Cap storage cap = _caps[token];
        return (cap.rare & M104, (cap.limits >> TIER_SIGNERS_SHIFT) & 0xff);
    }

    /// @notice What a transaction could spend of `token` now (the per-transaction limit aside).
    /// @param token The token (address(0): native).
    /// @return The budget left.
    function budgetLeft(address token) external view returns (uint256) {
        Cap storage cap = _caps[token];
        uint256 hot = cap.hot;
        if (block.timestamp < (hot >> SLOT_END_SHIFT) & M32) return hot & M104;
        uint256 amount = cap.roll & M104;
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
        uint256 roll = cap.roll;
        uint256 period = (roll >> PERIOD_SHIFT) & M32;
        if (period == 0) return 0;
        uint256 hot = cap.hot;
        uint256 slotEnd = (hot >> SLOT_END_SHIFT) & M32;
        uint256 roomStart = (roll >> ROOM_START_SHIFT) & M104;
        uint256 prev1 = (hot >> PREV1_SHIFT) & M104;
        uint256 spentLast = roomStart - (hot & M104);
        if (block.timestamp < slotEnd) {
            uint256 prev2 = (roll >> PREV2_WRITTEN_SHIFT) & 1 != 0
                ? (cap.rare >> PREV2_SHIFT) & M104
                : (roll & M104) - prev1 - roomStart;
            return spentLast + prev1 + prev2;
        }
        uint256 length = _subSlotLength(period);
        uint256 elapsed = block.timestamp / length - (slotEnd / length - 1);
        if (elapsed == 1) return spentLast + prev1;
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
        address[] memory tokens = totals.tokens;
        // i < count <= capacity, and count + 1 cannot overflow: no checked arithmetic in this loop.
        unchecked {
            for (uint256 i = 0; i < count; ++i) {
                if (tokens[i] == token) {
                    totals.amounts[i] = _saturatingAdd(totals.amounts[i], amount);
                    return;
                }
            }
            tokens[count] = token;
            totals.amounts[count] = amount;
            totals.count = count + 1;
        }
    }

    /// @dev a + b, or type(uint256).max if that overflows: a total that large exceeds every per-transaction limit
    ///      (at most MAX_AMOUNT) and is refused as such rather than with a panic.
    function _saturatingAdd(uint256 a, uint256 b) internal pure returns (uint256) {
        unchecked {
            uint256 sum = a + b;
            return sum < a ? type(uint256).max : sum;
        }
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
