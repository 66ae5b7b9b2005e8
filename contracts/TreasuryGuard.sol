// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {IERC165} from "./interfaces/IERC165.sol";
import {IModuleGuard} from "./interfaces/IModuleGuard.sol";
import {ISafe} from "./interfaces/ISafe.sol";
import {ITransactionGuard} from "./interfaces/ITransactionGuard.sol";

/// @title TreasuryGuard
/// @notice On-chain policy for one Safe (1.3.0, 1.4.1 or 1.5.0): allowlists, spending caps, a delay queue and a
///         post-execution check of the Safe's configuration. It is the backstop that holds when the off-chain
///         tooling is bypassed.
/// @dev Rules applied to every call the Safe makes in a transaction (the top-level call, or each inner call of a
///      batch delegatecalled to MultiSendCallOnly):
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
///      - Delegatecall only to MULTISEND_CALL_ONLY's `multiSend(bytes)`, value 0, canonical ABI encoding, at least
///        one entry, every entry a call (operation 0) to a non-zero address, no truncation, no trailing bytes.
///      Amounts are summed per token over the whole transaction; the sum is checked once against the token's
///      per-transaction limit, delay threshold and budget. A transaction must be scheduled if any token sum
///      exceeds its delay threshold or if any call targets the Safe or this guard.
///
///      Spending cap scheme (exact sliding window). Each period is split into SUBSLOTS = 2 sub-slots of length
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
///
///      Post-execution check. Unless the transaction was a scheduled call to the Safe, the Safe's critical
///      configuration must be unchanged after execution. Every setter of that configuration is `authorized`
///      (msg.sender must be the Safe) and the canonical singletons (1.3.0, 1.4.1, 1.5.0) have no other path that
///      writes it, so only code running in the Safe's context can change it: a call or delegatecall the Safe
///      executes for the transaction, or a module through `execTransactionFromModule`. The guard checks every call,
///      and a delegatecall is only allowed to MULTISEND_CALL_ONLY; if that is a published MultiSendCallOnly it can
///      only make the calls the guard checked. A module acting during the transaction could make the same change in
///      a transaction of its own that no transaction guard sees (and with this contract as 1.5.0 module guard it
///      cannot act inside a guarded transaction at all). So for plain calls and for batches through a published
///      MultiSendCallOnly the configuration cannot change and no snapshot is needed. For a batch through any other
///      MULTISEND_CALL_ONLY, a digest of singleton, guard, fallback handler, module guard, owner count, threshold
///      and the full owner and module lists is taken before execution (read inside the Safe through
///      `simulateAndRevert`) and must be equal afterwards, the singleton being re-read through the proxy itself.
///
///      Module transactions (Safe 1.5.0 with this contract set as module guard) follow exactly the same rules and
///      the same delay queue: a module transaction that needs the delay runs only if its intent is scheduled and
///      due, and it consumes the entry. Guard checks never nest: a module transaction started while a Safe
///      transaction is being checked (or the reverse) reverts.
contract TreasuryGuard is ITransactionGuard, IModuleGuard {
    // ------------------------------------------------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------------------------------------------------

    /// @notice An allowlisted (target, selector) pair, for the constructor.
    struct CallPermission {
        address target;
        bytes4 selector;
    }

    /// @notice A spending cap, for the constructor.
    struct CapInit {
        address token;
        uint256 amount;
        uint256 period;
        uint256 maxPerTx;
        uint256 delayThreshold;
    }

    /// @notice Life cycle of a delay-queue entry. A pending entry past its expiry is expired (derived, not stored).
    enum EntryStatus {
        None,
        Pending,
        Executed,
        Cancelled
    }

    /// @dev A delay-queue entry; one storage word.
    struct Entry {
        bytes32 intentId;
        uint64 eta;
        uint64 expiry;
        EntryStatus status;
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

    // ------------------------------------------------------------------------------------------------------------
    // Constants
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Number of sub-slots a cap period is split into.
    uint256 public constant SUBSLOTS = 2;
    /// @notice Largest cap amount, per-transaction limit and delay threshold (2**104 - 1).
    uint256 public constant MAX_AMOUNT = type(uint104).max;
    /// @notice Shortest cap period, in seconds.
    uint256 public constant MIN_PERIOD = 1 minutes;
    /// @notice Longest cap period, in seconds.
    uint256 public constant MAX_PERIOD = 365 days;
    /// @notice Shortest delay, in seconds.
    uint256 public constant MIN_DELAY = 1 hours;
    /// @notice Longest delay, in seconds.
    uint256 public constant MAX_DELAY = 30 days;
    /// @notice Shortest execution window, in seconds.
    uint256 public constant MIN_WINDOW = 1 hours;
    /// @notice Longest execution window, in seconds.
    uint256 public constant MAX_WINDOW = 30 days;

    /// @notice EIP-712 type hash of the guard's domain.
    bytes32 public constant DOMAIN_TYPEHASH = keccak256("EIP712Domain(uint256 chainId,address verifyingContract)");
    /// @notice EIP-712 type hash of the message owners sign to schedule an intent.
    bytes32 public constant SCHEDULE_TYPEHASH =
        keccak256("Schedule(address safe,address to,uint256 value,bytes data,uint8 operation,uint256 entryId)");
    /// @notice EIP-712 type hash of the message owners sign to cancel an entry.
    bytes32 public constant CANCEL_TYPEHASH = keccak256("Cancel(address safe,uint256 entryId)");

    bytes4 private constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 private constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 private constant TRANSFER_FROM = 0x23b872dd; // transferFrom(address,address,uint256)
    bytes4 private constant MULTI_SEND = 0x8d80ff0a; // multiSend(bytes)
    uint256 private constant TRANSFER_FLAG = 1;
    uint256 private constant APPROVE_FLAG = 2;
    uint256 private constant TRANSFER_FROM_FLAG = 4;

    // Safe storage layout (identical in 1.3.0, 1.4.1 and 1.5.0).
    uint256 private constant SENTINEL = 1;
    uint256 private constant SAFE_MODULES_MAPPING_SLOT = 1;
    uint256 private constant SAFE_OWNERS_MAPPING_SLOT = 2;
    uint256 private constant SAFE_OWNER_COUNT_SLOT = 3;
    uint256 private constant SAFE_THRESHOLD_SLOT = 4;
    // keccak256("guard_manager.guard.address")
    uint256 private constant SAFE_GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;
    // keccak256("fallback_manager.handler.address")
    uint256 private constant SAFE_FALLBACK_HANDLER_SLOT =
        0x6c9a6c4a39284e37ed1cf53d337577d14212a4870fb976a4366c693b939918d5;
    // keccak256("module_manager.module_guard.address") (Safe 1.5.0; always empty on older versions)
    uint256 private constant SAFE_MODULE_GUARD_SLOT =
        0xb104e0b93118902c651344349b610029d694cfdec91c589c91ebafbcd0289947;
    // Upper bound on the list walk of the configuration digest (a well-formed list is far shorter).
    uint256 private constant MAX_LIST_WALK = 256;

    // Runtime code hashes of the published MultiSendCallOnly 1.3.0, 1.4.1 and 1.5.0 (safe-deployments `codeHash`,
    // identical to the npm build artifacts).
    bytes32 private constant MULTISEND_CALL_ONLY_130 =
        0xa9865ac2d9c7a1591619b188c4d88167b50df6cc0c5327fcbd1c8c75f7c066ad;
    bytes32 private constant MULTISEND_CALL_ONLY_141 =
        0xecd5bd14a08c5d2122379900b2f272bdf107a7e92423c10dd5fe3254386c9939;
    bytes32 private constant MULTISEND_CALL_ONLY_150 =
        0xcdbdcec38d2f1c7d961b0029ff8416b7e86e9974d6f0e9c9580c7d17fcfb6663;

    // Transient bookkeeping of the transaction being checked, in `_txState`: bits 0-1 the kind of check in
    // progress, bit 2 whether a configuration digest must be compared afterwards, bits 8 and up the number of
    // (token, total) pairs charged, kept for the refund at TOTALS_SLOT + 2i (token) and TOTALS_SLOT + 2i + 1 (total).
    uint256 private constant IN_TX = 1; // inside checkTransaction .. checkAfterExecution
    uint256 private constant IN_MODULE_TX = 2; // inside checkModuleTransaction .. checkAfterModuleExecution
    uint256 private constant KIND_MASK = 3;
    uint256 private constant VERIFY_SNAPSHOT = 4;
    uint256 private constant COUNT_SHIFT = 8;
    // keccak256("TreasuryGuard.totals")
    uint256 private constant TOTALS_SLOT = 0x85fec8d72522c1aa3f1f39988950d2d75430ae45234498c4b971148c5d701e2d;

    // ------------------------------------------------------------------------------------------------------------
    // Immutables and storage
    // ------------------------------------------------------------------------------------------------------------

    /// @notice The Safe (proxy) this guard protects.
    address public immutable SAFE;
    /// @notice The only contract the Safe may delegatecall: a MultiSendCallOnly.
    address public immutable MULTISEND_CALL_ONLY;
    /// @notice Whether MULTISEND_CALL_ONLY's code is a published MultiSendCallOnly (1.3.0, 1.4.1 or 1.5.0). If so a
    ///         batch can only make the calls the guard checked and is treated like a plain call; if not, every batch
    ///         pays for a digest of the Safe's configuration before and after execution.
    bool public immutable MULTISEND_IS_CANONICAL;

    // Allowlisted (target, selector) pairs, except the three ERC-20 selectors, kept in the token's Cap.erc20Calls.
    mapping(address target => mapping(bytes4 selector => bool)) private _allowedCalls;
    /// @notice Whether an address may receive native value, ERC-20 transfers or approvals.
    mapping(address recipient => bool) public isRecipient;
    mapping(address token => Cap) private _caps;

    /// @notice Delay between scheduling and the earliest execution, in seconds.
    uint64 public delay;
    /// @notice Length of the execution window after the eta, in seconds (expiry = eta + window).
    uint64 public window;
    /// @notice Whether Safe transactions with gasPrice > 0 (refunds the caps cannot see) are allowed.
    bool public allowRefunds;

    /// @notice The id the next scheduled entry will get (ids start at 1).
    uint256 public nextEntryId = 1;
    mapping(uint256 entryId => Entry) private _entries;
    /// @notice The pending entry of an intent, or 0.
    mapping(bytes32 intentId => uint256 entryId) public pendingEntryOf;

    uint256 private transient _txState;
    address private transient _snapshotSingleton;
    bytes32 private transient _snapshotDigest;

    // ------------------------------------------------------------------------------------------------------------
    // Events and errors
    // ------------------------------------------------------------------------------------------------------------

    /// @notice (target, selector) was allowed or disallowed.
    event AllowedCallSet(address indexed target, bytes4 indexed selector, bool allowed);
    /// @notice `recipient` was allowed or disallowed as a recipient.
    event RecipientSet(address indexed recipient, bool allowed);
    /// @notice The cap of `token` was set.
    event CapSet(address indexed token, uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold);
    /// @notice The cap of `token` was removed (zero budget from now on).
    event CapRemoved(address indexed token);
    /// @notice The delay and the execution window were set.
    event DelaySet(uint256 delay, uint256 window);
    /// @notice Refunds (gasPrice > 0) were allowed or disallowed.
    event AllowRefundsSet(bool allowed);
    /// @notice An intent was put in the delay queue.
    event Scheduled(
        uint256 indexed entryId,
        bytes32 indexed intentId,
        address to,
        uint256 value,
        bytes data,
        uint8 operation,
        uint256 eta,
        uint256 expiry
    );
    /// @notice A pending entry was cancelled by the owners.
    event Cancelled(uint256 indexed entryId, bytes32 indexed intentId);
    /// @notice A pending entry was consumed by the transaction being executed.
    event EntryExecuted(uint256 indexed entryId, bytes32 indexed intentId);
    /// @notice `amount` of `token` (address(0): native) was charged to its cap.
    event Charged(address indexed token, uint256 amount);
    /// @notice A charge of `amount` of `token` was given back because the inner call failed.
    event Refunded(address indexed token, uint256 amount);

    /// @notice The caller is not the Safe.
    error NotSafe(address caller);
    /// @notice A guard check is already in progress (nested transaction).
    error CheckInProgress();
    /// @notice An after-execution hook without the matching check.
    error NoCheckInProgress();
    /// @notice gasPrice > 0 while refunds are not allowed.
    error RefundsNotAllowed();
    /// @notice Operation other than 0 (call) or 1 (delegatecall).
    error InvalidOperation(uint8 operation);
    /// @notice Delegatecall to something else than MULTISEND_CALL_ONLY.
    error DelegateCallNotAllowed(address to);
    /// @notice The delegatecall is not a canonical `multiSend(bytes)` call with value 0.
    error InvalidMultiSend();
    /// @notice The batch has no entry.
    error EmptyBatch();
    /// @notice Batch entry at byte `offset` (of the packed transactions) is truncated, not a call, or targets
    ///         address(0).
    error InvalidBatchEntry(uint256 offset);
    /// @notice Calldata to `to` is malformed (1 to 3 bytes, or a wrong length or dirty address in an ERC-20 call).
    error MalformedCalldata(address to);
    /// @notice (target, selector) is not allowlisted.
    error CallNotAllowed(address target, bytes4 selector);
    /// @notice `recipient` is not an allowlisted recipient.
    error RecipientNotAllowed(address recipient);
    /// @notice `token` has no cap configured: zero budget.
    error CapNotSet(address token);
    /// @notice The transaction's total of `token` exceeds its per-transaction limit.
    error ExceedsPerTxLimit(address token, uint256 total, uint256 limit);
    /// @notice The transaction's total of `token` exceeds the budget left.
    error ExceedsBudget(address token, uint256 total, uint256 left);
    /// @notice The transaction needs the delay and its intent has no pending entry.
    error NotScheduled(bytes32 intentId);
    /// @notice The entry's eta has not been reached.
    error NotYetDue(uint256 entryId, uint256 eta);
    /// @notice The entry's execution window is over.
    error EntryExpired(uint256 entryId, uint256 expiry);
    /// @notice The intent already has a pending, unexpired entry.
    error AlreadyScheduled(uint256 entryId);
    /// @notice The entry is not pending (unknown, executed or cancelled).
    error EntryNotPending(uint256 entryId);
    /// @notice The Safe's configuration changed in a transaction that was not a scheduled configuration change.
    error SafeConfigChanged();
    /// @notice The Safe did not answer the configuration read as a Safe does.
    error SnapshotFailed();
    /// @notice A zero or otherwise invalid address in the constructor.
    error InvalidAddress();
    /// @notice Cap period outside [MIN_PERIOD, MAX_PERIOD].
    error InvalidPeriod(uint256 period);
    /// @notice Amount above MAX_AMOUNT.
    error AmountTooLarge(uint256 amount);
    /// @notice Delay outside [MIN_DELAY, MAX_DELAY].
    error InvalidDelay(uint256 delay);
    /// @notice Window outside [MIN_WINDOW, MAX_WINDOW].
    error InvalidWindow(uint256 window);

    // ------------------------------------------------------------------------------------------------------------
    // Construction and settings
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Deploy a guard for `safe`, fully configured before it is installed with `setGuard`.
    /// @param safe The Safe proxy to protect.
    /// @param multiSendCallOnly The MultiSendCallOnly the Safe may delegatecall for batches.
    /// @param delay_ Delay of the queue, in seconds.
    /// @param window_ Execution window after the eta, in seconds.
    /// @param allowedCalls Initial (target, selector) allowlist.
    /// @param recipients Initial recipient allowlist.
    /// @param caps Initial spending caps.
    constructor(
        address safe,
        address multiSendCallOnly,
        uint256 delay_,
        uint256 window_,
        CallPermission[] memory allowedCalls,
        address[] memory recipients,
        CapInit[] memory caps
    ) {
        if (safe == address(0) || multiSendCallOnly == address(0) || multiSendCallOnly == safe) {
            revert InvalidAddress();
        }
        SAFE = safe;
        MULTISEND_CALL_ONLY = multiSendCallOnly;
        bytes32 codeHash = multiSendCallOnly.codehash;
        MULTISEND_IS_CANONICAL = codeHash == MULTISEND_CALL_ONLY_130 || codeHash == MULTISEND_CALL_ONLY_141
            || codeHash == MULTISEND_CALL_ONLY_150;
        _setDelay(delay_, window_);
        for (uint256 i = 0; i < allowedCalls.length; ++i) {
            _setAllowedCall(allowedCalls[i].target, allowedCalls[i].selector, true);
        }
        for (uint256 i = 0; i < recipients.length; ++i) {
            _setRecipient(recipients[i], true);
        }
        for (uint256 i = 0; i < caps.length; ++i) {
            CapInit memory c = caps[i];
            _setCap(c.token, c.amount, c.period, c.maxPerTx, c.delayThreshold);
        }
    }

    modifier onlySafe() {
        if (msg.sender != SAFE) revert NotSafe(msg.sender);
        _;
    }

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

    /// @notice Set the delay and the execution window. Only the Safe (through the delay queue).
    /// @dev Entries already scheduled keep their eta and expiry.
    /// @param delay_ Delay in [MIN_DELAY, MAX_DELAY] seconds.
    /// @param window_ Window in [MIN_WINDOW, MAX_WINDOW] seconds.
    function setDelay(uint256 delay_, uint256 window_) external onlySafe {
        _setDelay(delay_, window_);
    }

    /// @notice Allow or disallow Safe transactions with gasPrice > 0. Only the Safe (through the delay queue).
    /// @param allowed Whether refunds are allowed.
    function setAllowRefunds(bool allowed) external onlySafe {
        allowRefunds = allowed;
        emit AllowRefundsSet(allowed);
    }

    function _setAllowedCall(address target, bytes4 selector, bool allowed) private {
        uint256 flag = _erc20Flag(selector);
        if (flag == 0) {
            _allowedCalls[target][selector] = allowed;
        } else {
            Cap storage cap = _caps[target];
            cap.erc20Calls = uint8(allowed ? cap.erc20Calls | flag : cap.erc20Calls & ~flag);
        }
        emit AllowedCallSet(target, selector, allowed);
    }

    function _setRecipient(address recipient, bool allowed) private {
        isRecipient[recipient] = allowed;
        emit RecipientSet(recipient, allowed);
    }

    function _setDelay(uint256 delay_, uint256 window_) private {
        if (delay_ < MIN_DELAY || delay_ > MAX_DELAY) revert InvalidDelay(delay_);
        if (window_ < MIN_WINDOW || window_ > MAX_WINDOW) revert InvalidWindow(window_);
        delay = uint64(delay_);
        window = uint64(window_);
        emit DelaySet(delay_, window_);
    }

    function _setCap(address token, uint256 amount, uint256 period, uint256 maxPerTx, uint256 delayThreshold)
        private
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
        private
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
        bytes memory, // signatures
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

    function _enter(uint256 kind) private {
        if (msg.sender != SAFE) revert NotSafe(msg.sender);
        if (_txState != 0) revert CheckInProgress();
        _txState = kind;
    }

    /// @dev A scheduled, due `setGuard(address(0))` call on the Safe is allowed whatever the allowlists and caps
    ///      say, so the guard can never brick the Safe (refunds still need `allowRefunds`: a transaction without
    ///      one is always possible). Returns false (and changes nothing) for any other transaction.
    function _isScheduledGuardRemoval(address to, uint256 value, bytes calldata data, uint8 operation)
        private
        returns (bool)
    {
        if (to != SAFE || operation != 0 || data.length != 36 || bytes4(data) != ISafe.setGuard.selector) {
            return false;
        }
        if (uint256(bytes32(data[4:36])) != 0) return false;
        _consumeEntry(intentId(to, value, data, operation));
        return true;
    }

    function _check(address to, uint256 value, bytes calldata data, uint8 operation, uint256 kind) private {
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
        if (_chargeAll(totals)) needsDelay = true;
        if (needsDelay) _consumeEntry(intentId(to, value, data, operation));
        uint256 state = kind | (totals.count << COUNT_SHIFT);
        // A scheduled call to the Safe is a configuration change: the configuration may change, no snapshot.
        // Otherwise only code the guard did not check could change it, i.e. a MULTISEND_CALL_ONLY that is not a
        // published MultiSendCallOnly (see the contract documentation).
        if (!touchesSafe && operation == 1 && !MULTISEND_IS_CANONICAL) {
            (address singleton, bytes32 digest) = _readSafeConfig();
            _snapshotSingleton = singleton;
            _snapshotDigest = digest;
            state |= VERIFY_SNAPSHOT;
        }
        _txState = state;
    }

    /// @dev Checks one call (top-level or inner) and adds its spending to the transaction's per-token totals.
    function _checkCall(Totals memory totals, address to, uint256 value, bytes calldata data)
        private
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

    /// @dev Unwraps `multiSend(bytes)` strictly and checks every entry as a call.
    ///      Layout: selector | offset (0x20) | length n | n bytes of packed entries | 0..31 zero bytes of padding.
    ///      Entry: uint8 operation | address to | uint256 value | uint256 dataLength | bytes data.
    function _checkBatch(Totals memory totals, bytes calldata data)
        private
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
        private
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

    /// @dev Checks and charges every token total of the transaction. Returns whether one exceeds its delay
    ///      threshold.
    function _chargeAll(Totals memory totals) private returns (bool needsDelay) {
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
    function _charge(address token, uint256 total) private returns (bool needsDelay) {
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
    function _rollOver(Cap storage cap) private returns (uint256 room) {
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

    function _exit(uint256 kind, bool success) private {
        if (msg.sender != SAFE) revert NotSafe(msg.sender);
        uint256 state = _txState;
        if (state & KIND_MASK != kind) revert NoCheckInProgress();
        if (!success) {
            // Same transaction, same block: still the sub-slot the charges went to.
            uint256 count = state >> COUNT_SHIFT;
            for (uint256 slot = TOTALS_SLOT; slot < _totalsEnd(count); slot += 2) {
                address token = address(uint160(_tload(slot)));
                uint256 total = _tload(slot + 1);
                _caps[token].left += uint104(total);
                emit Refunded(token, total);
            }
        }
        _txState = 0;
        if (state & VERIFY_SNAPSHOT != 0) _verifySnapshot();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Delay queue
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Put an intent in the delay queue, with the owners' signatures of `scheduleHash(..., nextEntryId)`.
    ///         Callable by anyone; the Safe checks the signatures against its owners and threshold.
    /// @dev One pending entry per intent; an expired entry is replaced. Signatures follow the Safe's format (ECDSA,
    ///      eth_sign, approved hash via `Safe.approveHash`, EIP-1271), sorted by owner address.
    /// @param to Destination of the future Safe transaction.
    /// @param value Its native value.
    /// @param data Its calldata.
    /// @param operation Its operation (0 call, 1 delegatecall).
    /// @param signatures Owner signatures of the schedule hash.
    /// @return entryId The id of the new entry.
    function schedule(address to, uint256 value, bytes calldata data, uint8 operation, bytes calldata signatures)
        external
        returns (uint256 entryId)
    {
        if (operation > 1) revert InvalidOperation(operation);
        bytes32 intent = intentId(to, value, data, operation);
        uint256 existing = pendingEntryOf[intent];
        if (existing != 0 && block.timestamp < _entries[existing].expiry) revert AlreadyScheduled(existing);
        entryId = nextEntryId;
        _checkSignatures(_scheduleStructHash(to, value, data, operation, entryId), signatures);
        uint256 eta = block.timestamp + delay;
        uint256 expiry = eta + window;
        nextEntryId = entryId + 1;
        _entries[entryId] = Entry(intent, uint64(eta), uint64(expiry), EntryStatus.Pending);
        pendingEntryOf[intent] = entryId;
        emit Scheduled(entryId, intent, to, value, data, operation, eta, expiry);
    }

    /// @notice Cancel a pending entry, with the owners' signatures of `cancelHash(entryId)`. Callable by anyone.
    /// @param entryId The entry.
    /// @param signatures Owner signatures of the cancel hash.
    function cancel(uint256 entryId, bytes calldata signatures) external {
        Entry storage entry = _entries[entryId];
        if (entry.status != EntryStatus.Pending) revert EntryNotPending(entryId);
        _checkSignatures(_cancelStructHash(entryId), signatures);
        bytes32 intent = entry.intentId;
        entry.status = EntryStatus.Cancelled;
        if (pendingEntryOf[intent] == entryId) delete pendingEntryOf[intent];
        emit Cancelled(entryId, intent);
    }

    /// @dev Consumes the pending entry of `intent`, which must be due.
    function _consumeEntry(bytes32 intent) private {
        uint256 entryId = pendingEntryOf[intent];
        if (entryId == 0) revert NotScheduled(intent);
        Entry storage entry = _entries[entryId];
        uint256 eta = entry.eta;
        uint256 expiry = entry.expiry;
        if (block.timestamp < eta) revert NotYetDue(entryId, eta);
        if (block.timestamp >= expiry) revert EntryExpired(entryId, expiry);
        entry.status = EntryStatus.Executed;
        delete pendingEntryOf[intent];
        emit EntryExecuted(entryId, intent);
    }

    /// @dev Lets the Safe check `signatures` of the EIP-712 hash of `structHash` against its owners and threshold.
    ///      The preimage is passed too: Safe 1.3.0 and 1.4.1 hand it to EIP-1271 contract owners.
    function _checkSignatures(bytes32 structHash, bytes calldata signatures) private view {
        bytes memory message = abi.encodePacked(bytes2(0x1901), domainSeparator(), structHash);
        ISafe(SAFE).checkSignatures(keccak256(message), message, signatures);
    }

    function _scheduleStructHash(address to, uint256 value, bytes calldata data, uint8 operation, uint256 entryId)
        private
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(SCHEDULE_TYPEHASH, SAFE, to, value, keccak256(data), operation, entryId));
    }

    function _cancelStructHash(uint256 entryId) private view returns (bytes32) {
        return keccak256(abi.encode(CANCEL_TYPEHASH, SAFE, entryId));
    }

    function _hashTypedData(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked(bytes2(0x1901), domainSeparator(), structHash));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------------------

    /// @notice Whether calls to `target` with `selector` are allowlisted.
    /// @param target The called contract.
    /// @param selector The function selector.
    /// @return Whether the pair is allowed.
    function isAllowedCall(address target, bytes4 selector) external view returns (bool) {
        uint256 flag = _erc20Flag(selector);
        if (flag == 0) return _allowedCalls[target][selector];
        return _caps[target].erc20Calls & flag != 0;
    }

    /// @notice The intent id of a transaction: what is scheduled, independent of the Safe nonce.
    /// @param to Destination.
    /// @param value Native value.
    /// @param data Calldata.
    /// @param operation 0 call, 1 delegatecall.
    /// @return keccak256(abi.encode(to, value, keccak256(data), operation)).
    function intentId(address to, uint256 value, bytes calldata data, uint8 operation) public pure returns (bytes32) {
        return keccak256(abi.encode(to, value, keccak256(data), operation));
    }

    /// @notice The EIP-712 domain separator: EIP712Domain(uint256 chainId,address verifyingContract) with this
    ///         guard as verifying contract.
    /// @return The domain separator.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, block.chainid, address(this)));
    }

    /// @notice The hash owners sign to schedule an intent as entry `entryId` (normally `nextEntryId`).
    /// @param to Destination.
    /// @param value Native value.
    /// @param data Calldata.
    /// @param operation 0 call, 1 delegatecall.
    /// @param entryId The id the entry will get.
    /// @return The EIP-712 hash of Schedule(safe, to, value, data, operation, entryId).
    function scheduleHash(address to, uint256 value, bytes calldata data, uint8 operation, uint256 entryId)
        external
        view
        returns (bytes32)
    {
        return _hashTypedData(_scheduleStructHash(to, value, data, operation, entryId));
    }

    /// @notice The hash owners sign to cancel entry `entryId`.
    /// @param entryId The entry.
    /// @return The EIP-712 hash of Cancel(safe, entryId).
    function cancelHash(uint256 entryId) external view returns (bytes32) {
        return _hashTypedData(_cancelStructHash(entryId));
    }

    /// @notice A delay-queue entry.
    /// @param entryId The entry.
    /// @return intent The intent id.
    /// @return eta Earliest execution time.
    /// @return expiry Execution must happen before this time.
    /// @return status None, Pending (expired if block.timestamp >= expiry), Executed or Cancelled.
    function getEntry(uint256 entryId)
        external
        view
        returns (bytes32 intent, uint256 eta, uint256 expiry, EntryStatus status)
    {
        Entry storage entry = _entries[entryId];
        return (entry.intentId, entry.eta, entry.expiry, entry.status);
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

    /// @notice Digest of the Safe's critical configuration, computed in the storage context it runs in.
    /// @dev The guard runs this inside the Safe through `simulateAndRevert` (a delegatecall the Safe always
    ///      reverts), so it reads the Safe's storage: singleton, guard, fallback handler, module guard, owner count,
    ///      threshold, and the owner and module linked lists walked from the sentinel. Called directly it digests
    ///      this contract's own, meaningless, storage. It never writes.
    /// @return singleton Storage slot 0.
    /// @return digest keccak256 over all of the above.
    function readSafeConfig() external view returns (address singleton, bytes32 digest) {
        assembly ("memory-safe") {
            let start := mload(0x40)
            singleton := sload(0)
            mstore(start, singleton)
            mstore(add(start, 0x20), sload(SAFE_GUARD_SLOT))
            mstore(add(start, 0x40), sload(SAFE_FALLBACK_HANDLER_SLOT))
            mstore(add(start, 0x60), sload(SAFE_MODULE_GUARD_SLOT))
            mstore(add(start, 0x80), sload(SAFE_OWNER_COUNT_SLOT))
            mstore(add(start, 0xa0), sload(SAFE_THRESHOLD_SLOT))
            // Appends the linked list stored in the mapping at `mappingSlot`, walked from the sentinel, including
            // the value that ends it (the sentinel, or 0 if the list is broken).
            function walk(mappingSlot, ptr) -> end {
                let node := SENTINEL
                for { let i := 0 } lt(i, MAX_LIST_WALK) { i := add(i, 1) } {
                    mstore(0x00, node)
                    mstore(0x20, mappingSlot)
                    node := sload(keccak256(0x00, 0x40))
                    mstore(ptr, node)
                    ptr := add(ptr, 0x20)
                    if lt(node, 2) { break }
                }
                end := ptr
            }
            let end := walk(SAFE_MODULES_MAPPING_SLOT, walk(SAFE_OWNERS_MAPPING_SLOT, add(start, 0xc0)))
            digest := keccak256(start, sub(end, start))
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------------------

    function _subSlotLength(uint256 period) private pure returns (uint256) {
        return (period + SUBSLOTS - 1) / SUBSLOTS;
    }

    /// @dev Spending that still counts now: current sub-slot and the two before it.
    function _spentInWindow(Cap storage cap) private view returns (uint256) {
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

    function _erc20Flag(bytes4 selector) private pure returns (uint256) {
        if (selector == TRANSFER) return TRANSFER_FLAG;
        if (selector == APPROVE) return APPROVE_FLAG;
        if (selector == TRANSFER_FROM) return TRANSFER_FROM_FLAG;
        return 0;
    }

    /// @dev After execution: the singleton is read through the proxy itself (`masterCopy()` never reaches the
    ///      singleton's code), so a replaced singleton cannot answer the digest read in the old one's place.
    function _verifySnapshot() private view {
        if (ISafe(SAFE).masterCopy() != _snapshotSingleton) revert SafeConfigChanged();
        (, bytes32 digest) = _readSafeConfig();
        if (digest != _snapshotDigest) revert SafeConfigChanged();
    }

    function _readSafeConfig() private view returns (address singleton, bytes32 digest) {
        (bool ok, bytes memory result) = SAFE.staticcall(
            abi.encodeCall(ISafe.simulateAndRevert, (address(this), abi.encodeCall(this.readSafeConfig, ())))
        );
        // simulateAndRevert reverts with abi.encodePacked(success, returnDataSize, returnData).
        if (ok || result.length != 128) revert SnapshotFailed();
        bool success;
        uint256 size;
        (success, size, singleton, digest) = abi.decode(result, (bool, uint256, address, bytes32));
        if (!success || size != 64) revert SnapshotFailed();
    }

    function _newTotals(uint256 capacity) private pure returns (Totals memory) {
        return Totals(0, new address[](capacity), new uint256[](capacity));
    }

    /// @dev Adds `amount` of `token` to the transaction's totals.
    function _addToTotal(Totals memory totals, address token, uint256 amount) private pure {
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
    function _totalsEnd(uint256 count) private pure returns (uint256) {
        unchecked {
            return TOTALS_SLOT + 2 * count;
        }
    }

    /// @dev The 32 bytes of `data` at `offset`. Callers check that the word is inside `data` where it matters.
    function _word(bytes calldata data, uint256 offset) private pure returns (uint256 word) {
        assembly ("memory-safe") {
            word := calldataload(add(data.offset, offset))
        }
    }

    function _tload(uint256 slot) private view returns (uint256 value) {
        assembly ("memory-safe") {
            value := tload(slot)
        }
    }

    function _tstore(uint256 slot, uint256 value) private {
        assembly ("memory-safe") {
            tstore(slot, value)
        }
    }
}
