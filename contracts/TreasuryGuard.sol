// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {IERC165} from "./interfaces/IERC165.sol";
import {IModuleGuard} from "./interfaces/IModuleGuard.sol";
import {ISafe} from "./interfaces/ISafe.sol";
import {ITransactionGuard} from "./interfaces/ITransactionGuard.sol";
import {DelayQueue} from "./guard/DelayQueue.sol";
import {MessageApprovals} from "./guard/MessageApprovals.sol";
import {MultiSendUnwrapper} from "./guard/MultiSendUnwrapper.sol";
import {SafeBound} from "./guard/SafeBound.sol";
import {SafeConfigSnapshot} from "./guard/SafeConfigSnapshot.sol";
import {SignatureTiers} from "./guard/SignatureTiers.sol";

/// @title TreasuryGuard
/// @notice On-chain policy for one Safe (1.3.0, 1.4.1 or 1.5.0): allowlists, spending caps, a delay queue and a
///         post-execution check of the Safe's configuration. It is the backstop that holds when the off-chain
///         tooling is bypassed.
/// @dev The units, one concern per file under guard/: CallRules (allowlists, token decoding), SpendingCaps,
///      MultiSendUnwrapper, DelayQueue (with the minority veto), SignatureTiers, SafeConfigSnapshot,
///      MessageApprovals. This contract composes them into the
///      Safe's transaction guard (and, on Safe 1.5.0, module guard).
///      Amounts are summed per token over the whole transaction; the sum is checked once against the token's
///      per-transaction limit, delay threshold and budget. A transaction must be scheduled if any token sum
///      exceeds its delay threshold or if any call targets the Safe or this guard.
///      Module transactions (Safe 1.5.0 with this contract set as module guard) follow exactly the same rules and
///      the same delay queue: a module transaction that needs the delay runs only if its intent is scheduled and
///      due, and it consumes the entry. Guard checks never nest: a module transaction started while a Safe
///      transaction is being checked (or the reverse) reverts.
contract TreasuryGuard is
    ITransactionGuard,
    IModuleGuard,
    MultiSendUnwrapper,
    SafeConfigSnapshot,
    DelayQueue,
    SignatureTiers,
    MessageApprovals
{
    // Transient bookkeeping of the transaction being checked, in `_txState`: bits 0-1 the kind of check in
    // progress, bit 2 whether a configuration digest must be compared afterwards, bits 8 and up the number of
    // (token, total) pairs charged (see SpendingCaps.TOTALS_SLOT).
    uint256 private constant IN_TX = 1; // inside checkTransaction .. checkAfterExecution
    uint256 private constant IN_MODULE_TX = 2; // inside checkModuleTransaction .. checkAfterModuleExecution
    uint256 private constant KIND_MASK = 3;
    uint256 private constant VERIFY_SNAPSHOT = 4;
    uint256 private constant COUNT_SHIFT = 8;

    /// @notice Whether Safe transactions with gasPrice > 0 (refunds the caps cannot see) are allowed.
    bool public allowRefunds;

    uint256 private transient _txState;

    /// @notice Refunds (gasPrice > 0) were allowed or disallowed.
    event AllowRefundsSet(bool allowed);

    /// @notice A guard check is already in progress (nested transaction).
    error CheckInProgress();
    /// @notice An after-execution hook without the matching check.
    error NoCheckInProgress();
    /// @notice gasPrice > 0 while refunds are not allowed.
    error RefundsNotAllowed();
    /// @notice Delegatecall to something else than MULTISEND_CALL_ONLY.
    error DelegateCallNotAllowed(address to);

    /// @notice Deploy a guard for `safe`, fully configured before it is installed with `setGuard`.
    /// @param safe The Safe proxy to protect.
    /// @param multiSendCallOnly The MultiSendCallOnly the Safe may delegatecall for batches.
    /// @param queue Delay, execution window, cancel threshold and guardians of the delay queue.
    /// @param allowedCalls Initial (target, selector) allowlist.
    /// @param argumentRules Argument rules of allowlisted calls.
    /// @param recipients Initial recipient allowlist.
    /// @param caps Initial spending caps.
    constructor(
        address safe,
        address multiSendCallOnly,
        QueueInit memory queue,
        CallPermission[] memory allowedCalls,
        ArgumentRuleInit[] memory argumentRules,
        address[] memory recipients,
        CapInit[] memory caps
    ) SafeBound(safe, multiSendCallOnly) {
        _initQueue(queue);
        for (uint256 i = 0; i < allowedCalls.length; ++i) {
            _setAllowedCall(allowedCalls[i].target, allowedCalls[i].selector, true);
        }
        for (uint256 i = 0; i < argumentRules.length; ++i) {
            ArgumentRuleInit memory r = argumentRules[i];
            _setArgumentRules(r.target, r.selector, r.rules);
        }
        for (uint256 i = 0; i < recipients.length; ++i) {
            _setRecipient(recipients[i], true);
        }
        for (uint256 i = 0; i < caps.length; ++i) {
            CapInit memory c = caps[i];
            _setCap(c.token, c.amount, c.period, c.maxPerTx, c.delayThreshold);
            if (c.nft) _setNft(c.token, true);
            if (c.tierSigners != 0) _setTier(c.token, c.tierAmount, c.tierSigners);
        }
    }

    /// @notice Allow or disallow Safe transactions with gasPrice > 0. Only the Safe (through the delay queue).
    /// @param allowed Whether refunds are allowed.
    function setAllowRefunds(bool allowed) external onlySafe {
        allowRefunds = allowed;
        emit AllowRefundsSet(allowed);
    }


    // ------------------------------------------------------------------------------------------------------------
    // Guard hooks
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Check a Safe transaction against the policy and charge its spending. Only the Safe.
    /// @dev Reverts (denying the transaction) on any rule violation. Signatures are checked by the Safe before.
    /// @param to Destination of the Safe transaction.
    /// @param value Native value.
    /// @param data Calldata.
    /// @param operation 0 call, 1 delegatecall.
    /// @param gasPrice Refund gas price; must be 0 unless `allowRefunds`.
    function checkTransaction(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256, // safeTxGas
        uint256, // baseGas
        uint256 gasPrice,
        address, // gasToken
        address, // refundReceiver
        bytes memory, // signatures, read from msg.data by SignatureTiers when a tier applies
        address // msgSender
    ) external override {
        _enter(IN_TX);
        // Before the guard-removal escape: a refund is a payment the caps cannot see, even on the way out.
        if (gasPrice != 0 && !allowRefunds) revert RefundsNotAllowed();
        if (_isScheduledGuardRemoval(to, value, data, operation)) return;
        _check(to, value, data, operation, IN_TX);
    }

    /// @notice Verify the Safe's configuration is unchanged and give back the charges if the call failed. Only the
    ///         Safe.
    /// @param success Whether the inner call succeeded.
    function checkAfterExecution(bytes32, bool success) external override {
        _exit(IN_TX, success);
    }

    /// @notice Check a module transaction (Safe 1.5.0 module guard) with the same rules as a Safe transaction.
    ///         Only the Safe.
    /// @param to Destination.
    /// @param value Native value.
    /// @param data Calldata.
    /// @param operation 0 call, 1 delegatecall.
    /// @return moduleTxHash The intent id of the module transaction.
    function checkModuleTransaction(address to, uint256 value, bytes calldata data, uint8 operation, address)
        external
        override
        returns (bytes32 moduleTxHash)
    {
        _enter(IN_MODULE_TX);
        moduleTxHash = intentId(to, value, data, operation);
        if (_isScheduledGuardRemoval(to, value, data, operation)) return moduleTxHash;
        _check(to, value, data, operation, IN_MODULE_TX);
    }

    /// @notice After a module transaction: same as `checkAfterExecution`. Only the Safe.
    /// @param success Whether the module transaction succeeded.
    function checkAfterModuleExecution(bytes32, bool success) external override {
        _exit(IN_MODULE_TX, success);
    }

    /// @notice EIP-165: the transaction guard (0xe6d7a83a), the module guard (0x58401ed8) and EIP-165 itself.
    /// @param interfaceId The interface id.
    /// @return Whether it is supported.
    function supportsInterface(bytes4 interfaceId) external pure override returns (bool) {
        return interfaceId == type(ITransactionGuard).interfaceId || interfaceId == type(IModuleGuard).interfaceId
            || interfaceId == type(IERC165).interfaceId;
    }

    /// @notice Accept (and ignore) calls to functions this guard does not have, so a Safe version calling a hook
    ///         the guard does not know is not bricked. Rejects native value.
    fallback() external {}

    function _enter(uint256 kind) internal {
        if (msg.sender != SAFE) revert NotSafe(msg.sender);
        if (_txState != 0) revert CheckInProgress();
        _txState = kind;
    }

    /// @dev A scheduled, due `setGuard(address(0))` call on the Safe is allowed whatever the allowlists and caps
    ///      say, so the guard can never brick the Safe (refunds still need `allowRefunds`: a transaction without
    ///      one is always possible). Returns false (and changes nothing) for any other transaction.
    function _isScheduledGuardRemoval(address to, uint256 value, bytes calldata data, uint8 operation)
        internal
        returns (bool)
    {
        if (to != SAFE || operation != 0 || data.length != 36 || bytes4(data) != ISafe.setGuard.selector) {
            return false;
        }
        if (uint256(bytes32(data[4:36])) != 0) return false;
        _consumeEntry(intentId(to, value, data, operation));
        return true;
    }

    function _check(address to, uint256 value, bytes calldata data, uint8 operation, uint256 kind) internal {
        bool needsDelay;
        bool touchesSafe;
        Totals memory totals;
        if (operation == 0) {
            totals = _newTotals(2); // native value and one token at most
            (needsDelay, touchesSafe) = _checkCall(totals, to, value, data);
        } else if (operation == 1) {
            if (to != MULTISEND_CALL_ONLY) revert DelegateCallNotAllowed(to);
            if (value != 0) revert InvalidMultiSend();
            // An entry takes at least 85 bytes and adds at most two totals.
            totals = _newTotals(2 * (data.length / 85 + 1));
            (needsDelay, touchesSafe) = _checkBatch(totals, data);
        } else {
            revert InvalidOperation(operation);
        }
        (bool overThreshold, uint256 requiredSigners) = _chargeAll(totals);
        if (overThreshold) needsDelay = true;
        if (needsDelay) _consumeEntry(intentId(to, value, data, operation));
        if (requiredSigners != 0) {
            // Module transactions carry no signatures.
            if (kind != IN_TX) revert NotEnoughSignatures(requiredSigners);
            _checkTierSignatures(requiredSigners, data);
        }
        uint256 state = kind | (totals.count << COUNT_SHIFT);
        // A scheduled call to the Safe is a configuration change: the configuration may change, no snapshot.
        // Otherwise only code the guard did not check could change it, i.e. a MULTISEND_CALL_ONLY that is not a
        // published MultiSendCallOnly (see the contract documentation).
        if (!touchesSafe && operation == 1 && !MULTISEND_IS_CANONICAL) {
            _takeSnapshot();
            state |= VERIFY_SNAPSHOT;
        }
        _txState = state;
    }

    function _exit(uint256 kind, bool success) internal {
        if (msg.sender != SAFE) revert NotSafe(msg.sender);
        uint256 state = _txState;
        if (state & KIND_MASK != kind) revert NoCheckInProgress();
        if (!success) _refundAll(state >> COUNT_SHIFT);
        _txState = 0;
        if (state & VERIFY_SNAPSHOT != 0) _verifySnapshot();
    }
}
