// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

import {TestToken} from "./TestToken.sol";

/// @title TestAllowanceToken
/// @notice TestToken with OpenZeppelin 4's increaseAllowance / decreaseAllowance. Never deploy it live.
contract TestAllowanceToken is TestToken {
    error AllowanceBelowZero(uint256 allowance, uint256 decrease);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) TestToken(name_, symbol_, decimals_) {}

    /// @notice Raise the caller's allowance to `spender` by `added`.
    function increaseAllowance(address spender, uint256 added) external returns (bool) {
        uint256 current = allowance[msg.sender][spender] + added;
        allowance[msg.sender][spender] = current;
        emit Approval(msg.sender, spender, current);
        return true;
    }

    /// @notice Lower the caller's allowance to `spender` by `subtracted`.
    function decreaseAllowance(address spender, uint256 subtracted) external returns (bool) {
        uint256 current = allowance[msg.sender][spender];
        if (current < subtracted) revert AllowanceBelowZero(current, subtracted);
        allowance[msg.sender][spender] = current - subtracted;
        emit Approval(msg.sender, spender, current - subtracted);
        return true;
    }
}
