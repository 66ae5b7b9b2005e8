// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @notice The ERC-20 call Permit2 makes.
interface IERC20TransferFrom {
    /// @notice Move `amount` from `from` to `to` within the caller's allowance.
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// @title TestPermit2
/// @notice The allowance part of Uniswap's Permit2 (AllowanceTransfer), as the deployed one behaves: an owner
///         approves a spender for an amount of a token until an expiration (0: the current block only), the spender
///         pulls with transferFrom, which spends the allowance (unless it is type(uint160).max) and fails after the
///         expiration; the token itself must have approved this contract. Never deploy it live.
contract TestPermit2 {
    struct PackedAllowance {
        uint160 amount;
        uint48 expiration;
        uint48 nonce;
    }

    mapping(address owner => mapping(address token => mapping(address spender => PackedAllowance))) public allowance;

    event Approval(
        address indexed owner, address indexed token, address indexed spender, uint160 amount, uint48 expiration
    );

    error AllowanceExpired(uint256 deadline);
    error InsufficientAllowance(uint256 amount);
    error TransferFailed();

    /// @notice Let `spender` pull up to `amount` of the caller's `token` until `expiration` (0: this block).
    function approve(address token, address spender, uint160 amount, uint48 expiration) external {
        PackedAllowance storage allowed = allowance[msg.sender][token][spender];
        allowed.amount = amount;
        allowed.expiration = expiration == 0 ? uint48(block.timestamp) : expiration;
        emit Approval(msg.sender, token, spender, amount, expiration);
    }

    /// @notice Pull `amount` of `token` from `from` to `to` within the caller's allowance.
    function transferFrom(address from, address to, uint160 amount, address token) external {
        PackedAllowance storage allowed = allowance[from][token][msg.sender];
        if (block.timestamp > allowed.expiration) revert AllowanceExpired(allowed.expiration);
        uint256 maxAmount = allowed.amount;
        if (maxAmount != type(uint160).max) {
            if (amount > maxAmount) revert InsufficientAllowance(maxAmount);
            unchecked {
                allowed.amount = uint160(maxAmount) - amount;
            }
        }
        if (!IERC20TransferFrom(token).transferFrom(from, to, amount)) revert TransferFailed();
    }
}
