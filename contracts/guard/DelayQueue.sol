// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {ISafe} from "../interfaces/ISafe.sol";
import {SafeBound} from "./SafeBound.sol";

/// @title DelayQueue
/// @notice TreasuryGuard's time-lock: what the policy holds back runs only once it was scheduled with owner
///         signatures, waited `delay`, and is executed before `expiry`; owners can cancel a pending entry.
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

    /// @notice Delay between scheduling and the earliest execution, in seconds.
    uint64 public delay;
    /// @notice Length of the execution window after the eta, in seconds (expiry = eta + window).
    uint64 public window;

    /// @notice The id the next scheduled entry will get (ids start at 1).
    uint256 public nextEntryId = 1;
    mapping(uint256 entryId => Entry) internal _entries;
    /// @notice The pending entry of an intent, or 0.
    mapping(bytes32 intentId => uint256 entryId) public pendingEntryOf;

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
    /// @notice A pending entry was cancelled by the owners.
    event Cancelled(uint256 indexed entryId, bytes32 indexed intentId);
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

    /// @notice Set the delay and the execution window. Only the Safe (through the delay queue).
    /// @dev Entries already scheduled keep their eta and expiry.
    /// @param delay_ Delay in [MIN_DELAY, MAX_DELAY] seconds.
    /// @param window_ Window in [MIN_WINDOW, MAX_WINDOW] seconds.
    function setDelay(uint256 delay_, uint256 window_) external onlySafe {
        _setDelay(delay_, window_);
    }

    function _setDelay(uint256 delay_, uint256 window_) internal {
        if (delay_ < MIN_DELAY || delay_ > MAX_DELAY) revert InvalidDelay(delay_);
        if (window_ < MIN_WINDOW || window_ > MAX_WINDOW) revert InvalidWindow(window_);
        delay = uint64(delay_);
        window = uint64(window_);
        emit DelaySet(delay_, window_);
    }

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
        emit EntryExecuted(entryId, intent);
    }

    /// @dev Lets the Safe check `signatures` of the EIP-712 hash of `structHash` against its owners and threshold.
    ///      The preimage is passed too: Safe 1.3.0 and 1.4.1 hand it to EIP-1271 contract owners.
    function _checkSignatures(bytes32 structHash, bytes calldata signatures) internal view {
        bytes memory message = abi.encodePacked(bytes2(0x1901), domainSeparator(), structHash);
        ISafe(SAFE).checkSignatures(keccak256(message), message, signatures);
    }

    function _scheduleStructHash(address to, uint256 value, bytes calldata data, uint8 operation, uint256 entryId)
        internal
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(SCHEDULE_TYPEHASH, SAFE, to, value, keccak256(data), operation, entryId));
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
}
