// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title TestENS
/// @notice Test-only ENS registry and resolver in one contract. Its runtime code is placed at the ENS
///         registry's address on a local chain (anvil_setCode), so a name resolves the way it does on
///         mainnet: the registry's resolver(node), then that resolver's addr(node). Anyone may set a name.
contract TestENS {
    mapping(bytes32 => address) private records;

    event AddrChanged(bytes32 indexed node, address a);

    /// @notice Point the name with namehash `node` at `a` (the zero address removes it).
    function setAddr(bytes32 node, address a) external {
        records[node] = a;
        emit AddrChanged(node, a);
    }

    /// @notice The registry's answer: this contract resolves the names it has an address for, no other.
    function resolver(bytes32 node) external view returns (address) {
        return records[node] == address(0) ? address(0) : address(this);
    }

    /// @notice The resolver's answer: the address of the name.
    function addr(bytes32 node) external view returns (address) {
        return records[node];
    }
}
