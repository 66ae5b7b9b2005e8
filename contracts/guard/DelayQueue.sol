// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {ISafe} from "../interfaces/ISafe.sol";
import {SafeBound} from "./SafeBound.sol";

/// @title DelayQueue
/// @notice TreasuryGuard's time-lock: what the policy holds back runs only once it was scheduled with a threshold of
///         owner signatures, waited `delay`, and is executed before `expiry`. A minority can veto: a pending entry is
///         cancelled by min(`cancelThreshold`, Safe threshold) owners or by a guardian, and each owner and guardian
///         cancels a given intent at most once per epoch (until the intent executes).
/// @dev Minority veto, per intent and epoch. Every intent has a record: how often it was scheduled (the nonce its
///      schedule signatures commit to), its epoch (how often it executed after being cancelled), the cancels of
///      this epoch, and the time before which it cannot be scheduled again (the eta of the entry last cancelled).
///      The guard remembers who cancelled the intent in its epoch (owners who signed a cancel, guardians who
///      cancelled), and no one of them cancels it again before the epoch ends. So
///      - a threshold that was compromised cannot rush a drain through: cancelling its own entries burns only its
///        own owners' cancels, never the honest owners' or the guardians'; an honest minority of h owners stops
///        the same intent floor(h / cancelThreshold) times, guardians once each, and every retry waits out a full
///        delay before it is even pending again;
///      - a rogue owner cannot block an honest change forever: it blocks an intent at most once per epoch, so the
///        honest change, scheduled again after `notBefore`, gets through once the rogue owners spent their cancel;
///      - the record is per intent, not global: cancelling one intent costs nobody a cancel of another.
///      Guardians (e.g. a security council) can never schedule, sign or move funds.
abstract contract DelayQueue is SafeBound {
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

    /// @dev Per-intent record of the minority veto; one storage word.
    struct IntentRecord {
        uint64 scheduleNonce; // times the intent was scheduled: the nonce the next schedule signatures commit to
        uint64 cancels; // cancels in the current epoch
        uint64 notBefore; // the intent cannot be scheduled again before this time
        uint64 epoch; // advances when the intent executes after a cancel: who cancelled may cancel again
    }

    /// @notice The delay-queue settings, for the constructor.
    struct QueueInit {
        uint256 delay;
        uint256 window;
        uint256 cancelThreshold;
        address[] guardians;
    }

    /// @notice Largest cancel threshold (the Safe's threshold caps it anyway).
    uint256 public constant MAX_CANCEL_THRESHOLD = 255;
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
        keccak256("Schedule(address safe,address to,uint256 value,bytes data,uint8 operation,uint256 nonce)");
    /// @notice EIP-712 type hash of the message owners sign to cancel an entry.
    bytes32 public constant CANCEL_TYPEHASH = keccak256("Cancel(address safe,uint256 entryId)");

    /// @notice Delay between scheduling and the earliest execution, in seconds.
    uint64 public delay;
    /// @notice Length of the execution window after the eta, in seconds (expiry = eta + window).
    uint64 public window;
    uint8 private _cancelThreshold;

    /// @notice The id the next scheduled entry will get (ids start at 1).
    uint256 public nextEntryId = 1;
    mapping(uint256 entryId => Entry) internal _entries;
    /// @notice The pending entry of an intent, or 0.
    mapping(bytes32 intentId => uint256 entryId) public pendingEntryOf;
    mapping(bytes32 intentId => IntentRecord) internal _intents;
    mapping(bytes32 intentId => mapping(uint256 epoch => mapping(address canceller => bool))) internal _cancelledBy;
    /// @notice Whether an address may cancel pending entries, each intent once per epoch (nothing else).
    mapping(address guardian => bool) public isGuardian;

    /// @notice The delay and the execution window were set.
    event DelaySet(uint256 delay, uint256 window);
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
    /// @notice A pending entry was cancelled, by owner signatures (`guardian` is address(0)) or by `guardian`.
    /// @param cancels Cancels of the intent in its current epoch.
    /// @param notBefore The intent cannot be scheduled again before this time.
    event Cancelled(
        uint256 indexed entryId, bytes32 indexed intentId, address indexed guardian, uint256 cancels, uint256 notBefore
    );
    /// @notice The number of owner signatures that cancel an entry was set.
    event CancelThresholdSet(uint256 threshold);
    /// @notice `guardian` was allowed or disallowed to cancel.
    event GuardianSet(address indexed guardian, bool allowed);
    /// @notice A pending entry was consumed by the transaction being executed.
    event EntryExecuted(uint256 indexed entryId, bytes32 indexed intentId);

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
    /// @notice Delay outside [MIN_DELAY, MAX_DELAY].
    error InvalidDelay(uint256 delay);
    /// @notice Window outside [MIN_WINDOW, MAX_WINDOW].
    error InvalidWindow(uint256 window);
    /// @notice The intent was cancelled and cannot be scheduled again before `notBefore`.
    error RescheduleTooEarly(bytes32 intentId, uint256 notBefore);
    /// @notice Cancel threshold outside [1, MAX_CANCEL_THRESHOLD].
    error InvalidCancelThreshold(uint256 threshold);
    /// @notice The caller is not a guardian.
    error NotGuardian(address caller);
    /// @notice `canceller` (a signing owner or the guardian) already cancelled this intent in its current epoch.
    error AlreadyCancelledBy(address canceller);

    /// @notice Set the delay and the execution window. Only the Safe (through the delay queue).
    /// @dev Entries already scheduled keep their eta and expiry.
    /// @param delay_ Delay in [MIN_DELAY, MAX_DELAY] seconds.
    /// @param window_ Window in [MIN_WINDOW, MAX_WINDOW] seconds.
    function setDelay(uint256 delay_, uint256 window_) external onlySafe {
        _setDelay(delay_, window_);
    }

    /// @notice Set how many owner signatures cancel an entry. Only the Safe (through the delay queue).
    /// @param threshold In [1, MAX_CANCEL_THRESHOLD]; above the Safe's threshold it acts as the Safe's threshold.
    function setCancelThreshold(uint256 threshold) external onlySafe {
        _setCancelThreshold(threshold);
    }

    /// @notice Allow or disallow `guardian` to cancel. Only the Safe (through the delay queue).
    /// @param guardian The guardian (not address(0)).
    /// @param allowed Whether it may cancel.
    function setGuardian(address guardian, bool allowed) external onlySafe {
        _setGuardian(guardian, allowed);
    }

    /// @dev Applies the queue settings of the constructor.
    function _initQueue(QueueInit memory init) internal {
        _setDelay(init.delay, init.window);
        _setCancelThreshold(init.cancelThreshold);
        for (uint256 i = 0; i < init.guardians.length; ++i) {
            _setGuardian(init.guardians[i], true);
        }
    }

    function _setCancelThreshold(uint256 threshold) internal {
        if (threshold == 0 || threshold > MAX_CANCEL_THRESHOLD) revert InvalidCancelThreshold(threshold);
        _cancelThreshold = uint8(threshold);
        emit CancelThresholdSet(threshold);
    }

    function _setGuardian(address guardian, bool allowed) internal {
        if (guardian == address(0)) revert InvalidAddress();
        isGuardian[guardian] = allowed;
        emit GuardianSet(guardian, allowed);
    }

    function _setDelay(uint256 delay_, uint256 window_) internal {
        if (delay_ < MIN_DELAY || delay_ > MAX_DELAY) revert InvalidDelay(delay_);
        if (window_ < MIN_WINDOW || window_ > MAX_WINDOW) revert InvalidWindow(window_);
        delay = uint64(delay_);
        window = uint64(window_);
        emit DelaySet(delay_, window_);
    }

    /// @notice Put an intent in the delay queue, with a threshold of owner signatures of
    ///         `scheduleHash(to, value, data, operation, nonce)`, nonce being the intent's `scheduleNonce`.
    ///         Callable by anyone; the Safe checks the signatures against its owners and threshold.
    /// @dev The nonce is per intent: signatures collected one owner at a time stay valid whatever else is scheduled
    ///      meanwhile, and are spent once this intent is scheduled. One pending entry per intent; an expired entry is
    ///      replaced. A cancelled intent waits until the cancelled entry's eta (`notBefore`). Signatures follow the
    ///      Safe's format (ECDSA, eth_sign, approved hash via `Safe.approveHash`, EIP-1271), sorted by owner
    ///      address.
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
        uint256 nonce = _scheduleNonceIfSchedulable(intent);
        _checkSignatures(_scheduleStructHash(to, value, data, operation, nonce), signatures);
        entryId = _enqueue(intent, nonce, to, value, data, operation);
    }

    /// @dev The intent's schedule nonce, if it may be scheduled now: not before `notBefore`, and no pending,
    ///      unexpired entry.
    function _scheduleNonceIfSchedulable(bytes32 intent) internal view returns (uint256) {
        IntentRecord storage record = _intents[intent];
        uint256 notBefore = record.notBefore;
        if (block.timestamp < notBefore) revert RescheduleTooEarly(intent, notBefore);
        uint256 existing = pendingEntryOf[intent];
        if (existing != 0 && block.timestamp < _entries[existing].expiry) revert AlreadyScheduled(existing);
        return record.scheduleNonce;
    }

    /// @dev Records a new pending entry of `intent` (signatures checked) and spends the schedule nonce.
    function _enqueue(bytes32 intent, uint256 nonce, address to, uint256 value, bytes calldata data, uint8 operation)
        internal
        returns (uint256 entryId)
    {
        entryId = nextEntryId;
        uint256 eta = block.timestamp + delay;
        uint256 expiry = eta + window;
        nextEntryId = entryId + 1;
        _intents[intent].scheduleNonce = uint64(nonce + 1);
        _entries[entryId] = Entry(intent, uint64(eta), uint64(expiry), EntryStatus.Pending);
        pendingEntryOf[intent] = entryId;
        emit Scheduled(entryId, intent, to, value, data, operation, eta, expiry);
    }

    /// @notice Cancel a pending, unexpired entry with `cancelSignaturesRequired(entryId)` owner signatures of
    ///         `cancelHash(entryId)` (a minority: min(cancelThreshold, Safe threshold) owners), none of whose
    ///         signers cancelled the intent in its current epoch. Callable by anyone.
    /// @dev The Safe checks the first `required` signatures (sorted by owner, distinct, in its formats) and its
    ///      error (e.g. "GS026") is passed on; the guard then names their owners as the Safe does and records them:
    ///      AlreadyCancelledBy(owner) if one of them cancelled this intent in this epoch. Each owner thus cancels an
    ///      intent once per epoch: a compromised threshold cancelling its own entries spends only its own owners'
    ///      cancels, and a rogue owner blocks an honest intent at most once before it executes. On Safe 1.5.0 the
    ///      caller is the executor, so an owner calling this may sign with v = 1 for itself; older Safes need its
    ///      `approveHash` first. The intent cannot be scheduled again before the cancelled entry's eta.
    /// @param entryId The entry.
    /// @param signatures Owner signatures of the cancel hash.
    function cancel(uint256 entryId, bytes calldata signatures) external {
        bytes32 intent = _pendingIntent(entryId);
        uint256 required = _cancelSignaturesRequired();
        bytes memory message = _typedDataMessage(_cancelStructHash(entryId));
        bytes32 hash = keccak256(message);
        (bool ok, bytes memory revertData) = _safeCheckNSignatures(msg.sender, hash, message, signatures, required);
        if (!ok) _bubble(revertData);
        mapping(address => bool) storage cancelled = _cancelledBy[intent][_intents[intent].epoch];
        for (uint256 i = 0; i < required; ++i) {
            _recordCanceller(cancelled, _signer(hash, signatures, i * 65));
        }
        _cancel(entryId, intent, address(0));
    }

    /// @notice Cancel a pending, unexpired entry as a guardian, once per intent and epoch.
    /// @dev Whatever owners did: a guardian's cancel is its own (AlreadyCancelledBy(guardian) the second time
    ///      before the intent executes). The record is keyed by address, so a guardian that is also an owner has one
    ///      cancel per epoch in all.
    /// @param entryId The entry.
    function cancelAsGuardian(uint256 entryId) external {
        if (!isGuardian[msg.sender]) revert NotGuardian(msg.sender);
        bytes32 intent = _pendingIntent(entryId);
        _recordCanceller(_cancelledBy[intent][_intents[intent].epoch], msg.sender);
        _cancel(entryId, intent, msg.sender);
    }

    /// @dev Records that `canceller` cancelled in this epoch; reverts if it already did.
    function _recordCanceller(mapping(address => bool) storage cancelled, address canceller) internal {
        if (cancelled[canceller]) revert AlreadyCancelledBy(canceller);
        cancelled[canceller] = true;
    }

    /// @dev The owner of the Safe-format signature at byte `at` of `signatures`, named as the Safe's
    ///      checkNSignatures names it (which has already checked it): v = 0 (contract) and v = 1 (approved hash)
    ///      carry the owner in r, v > 30 is eth_sign over the prefixed hash with v - 4, else ECDSA over `hash`.
    function _signer(bytes32 hash, bytes calldata signatures, uint256 at) internal pure returns (address) {
        uint256 r = _word(signatures, at);
        uint8 v = uint8(_word(signatures, at + 33)); // the byte at + 64 (the Safe checked the length)
        if (v < 2) return address(uint160(r));
        if (v > 30) {
            assembly ("memory-safe") {
                // keccak256("\x19Ethereum Signed Message:\n32" ++ hash), in scratch space (28 + 32 bytes)
                mstore(0, 0x19457468657265756d205369676e6564204d6573736167653a0a3332)
                mstore(32, hash)
                hash := keccak256(4, 60)
            }
            v -= 4;
        }
        return ecrecover(hash, v, bytes32(r), bytes32(_word(signatures, at + 32)));
    }

    /// @dev The intent of `entryId`, which must be pending and unexpired (an expired entry threatens nothing and
    ///      cancelling it would only spend cancels).
    function _pendingIntent(uint256 entryId) internal view returns (bytes32) {
        Entry storage entry = _entries[entryId];
        if (entry.status != EntryStatus.Pending) revert EntryNotPending(entryId);
        uint256 expiry = entry.expiry;
        if (block.timestamp >= expiry) revert EntryExpired(entryId, expiry);
        return entry.intentId;
    }

    function _cancel(uint256 entryId, bytes32 intent, address guardian) internal {
        Entry storage entry = _entries[entryId];
        IntentRecord storage record = _intents[intent];
        uint256 cancels = record.cancels + 1;
        uint256 notBefore = entry.eta;
        entry.status = EntryStatus.Cancelled;
        delete pendingEntryOf[intent];
        record.cancels = uint64(cancels);
        record.notBefore = uint64(notBefore);
        emit Cancelled(entryId, intent, guardian, cancels, notBefore);
    }

    /// @dev min(cancelThreshold, Safe threshold).
    function _cancelSignaturesRequired() internal view returns (uint256) {
        uint256 required = _cancelThreshold;
        uint256 threshold = ISafe(SAFE).getThreshold();
        return required < threshold ? required : threshold;
    }

    /// @dev Consumes the pending entry of `intent`, which must be due.
    function _consumeEntry(bytes32 intent) internal {
        uint256 entryId = pendingEntryOf[intent];
        if (entryId == 0) revert NotScheduled(intent);
        Entry storage entry = _entries[entryId];
        uint256 eta = entry.eta;
        uint256 expiry = entry.expiry;
        if (block.timestamp < eta) revert NotYetDue(entryId, eta);
        if (block.timestamp >= expiry) revert EntryExpired(entryId, expiry);
        entry.status = EntryStatus.Executed;
        delete pendingEntryOf[intent];
        IntentRecord storage record = _intents[intent];
        if (record.cancels != 0) {
            // a new epoch: everyone who cancelled this intent may cancel it again
            record.cancels = 0;
            ++record.epoch;
        }
        emit EntryExecuted(entryId, intent);
    }

    /// @dev Lets the Safe check `signatures` of the EIP-712 hash of `structHash` against its owners and threshold.
    ///      The preimage is passed too: Safe 1.3.0 and 1.4.1 hand it to EIP-1271 contract owners.
    function _checkSignatures(bytes32 structHash, bytes calldata signatures) internal view {
        bytes memory message = _typedDataMessage(structHash);
        ISafe(SAFE).checkSignatures(keccak256(message), message, signatures);
    }

    /// @dev The EIP-712 preimage 0x1901 | domainSeparator | structHash.
    function _typedDataMessage(bytes32 structHash) internal view returns (bytes memory) {
        return abi.encodePacked(bytes2(0x1901), domainSeparator(), structHash);
    }

    function _scheduleStructHash(address to, uint256 value, bytes calldata data, uint8 operation, uint256 nonce)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(SCHEDULE_TYPEHASH, SAFE, to, value, keccak256(data), operation, nonce));
    }

    function _cancelStructHash(uint256 entryId) internal view returns (bytes32) {
        return keccak256(abi.encode(CANCEL_TYPEHASH, SAFE, entryId));
    }

    function _hashTypedData(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(bytes2(0x1901), domainSeparator(), structHash));
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

    /// @notice The hash owners sign to schedule an intent for the `nonce`-th time (normally its current
    ///         `scheduleNonce`, see `intentState`).
    /// @param to Destination.
    /// @param value Native value.
    /// @param data Calldata.
    /// @param operation 0 call, 1 delegatecall.
    /// @param nonce The intent's schedule nonce the signatures commit to.
    /// @return The EIP-712 hash of Schedule(safe, to, value, data, operation, nonce).
    function scheduleHash(address to, uint256 value, bytes calldata data, uint8 operation, uint256 nonce)
        external
        view
        returns (bytes32)
    {
        return _hashTypedData(_scheduleStructHash(to, value, data, operation, nonce));
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

    /// @notice The minority-veto record of an intent.
    /// @param intent The intent id.
    /// @return scheduleNonce Times the intent was scheduled (the nonce the next schedule signatures commit to).
    /// @return cancels Cancels in the current epoch (since the intent last executed).
    /// @return notBefore The intent cannot be scheduled before this time.
    function intentState(bytes32 intent)
        external
        view
        returns (uint256 scheduleNonce, uint256 cancels, uint256 notBefore)
    {
        IntentRecord storage record = _intents[intent];
        return (record.scheduleNonce, record.cancels, record.notBefore);
    }

    /// @notice How many owner signatures `cancel(entryId, ...)` needs now: min(cancelThreshold, the Safe's
    ///         threshold), from owners who have not cancelled the entry's intent in its epoch (`hasCancelled`).
    /// @dev The same for every entry; the parameter is kept for callers.
    /// @return The number of signatures.
    function cancelSignaturesRequired(uint256 /* entryId */ ) external view returns (uint256) {
        return _cancelSignaturesRequired();
    }

    /// @notice Whether `who` (an owner or a guardian) cancelled `intent` in its current epoch, and so cannot cancel
    ///         it again before it executes.
    /// @param intent The intent id.
    /// @param who The owner or guardian.
    /// @return Whether it did.
    function hasCancelled(bytes32 intent, address who) external view returns (bool) {
        return _cancelledBy[intent][_intents[intent].epoch][who];
    }

    /// @notice The owner signatures that cancel an entry (capped by the Safe's threshold).
    /// @return The cancel threshold.
    function cancelThreshold() external view returns (uint256) {
        return _cancelThreshold;
    }
}
