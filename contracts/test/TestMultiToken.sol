// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @notice The ERC-1155 receiver hooks.
interface IERC1155Receiver {
    /// @notice Called on a contract receiving one token type.
    /// @return 0xf23a6e61 to accept.
    function onERC1155Received(address operator, address from, uint256 id, uint256 value, bytes calldata data)
        external
        returns (bytes4);

    /// @notice Called on a contract receiving a batch.
    /// @return 0xbc197c81 to accept.
    function onERC1155BatchReceived(
        address operator,
        address from,
        uint256[] calldata ids,
        uint256[] calldata values,
        bytes calldata data
    ) external returns (bytes4);
}

/// @title TestMultiToken
/// @notice A minimal ERC-1155 for tests of TreasuryGuard's multi-token rules: anyone may mint. Never deploy it live.
contract TestMultiToken {
    mapping(uint256 id => mapping(address owner => uint256)) public balanceOf;
    mapping(address owner => mapping(address operator => bool)) public isApprovedForAll;

    event TransferSingle(address indexed operator, address indexed from, address indexed to, uint256 id, uint256 value);
    event TransferBatch(
        address indexed operator, address indexed from, address indexed to, uint256[] ids, uint256[] values
    );
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    error NotAuthorized(address caller);
    error LengthMismatch();
    error InsufficientBalance(uint256 id);
    error UnsafeRecipient(address to);

    /// @notice Create `amount` of token `id` for `to`.
    function mint(address to, uint256 id, uint256 amount) external {
        balanceOf[id][to] += amount;
        emit TransferSingle(msg.sender, address(0), to, id, amount);
    }

    /// @notice Let `operator` move all of the caller's tokens, or stop it.
    function setApprovalForAll(address operator, bool approved) external {
        isApprovedForAll[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    /// @notice Move `amount` of token `id` from `from` to `to`.
    function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes calldata data) external {
        _authorize(from);
        _move(from, to, id, amount);
        emit TransferSingle(msg.sender, from, to, id, amount);
        if (
            to.code.length != 0
                && IERC1155Receiver(to).onERC1155Received(msg.sender, from, id, amount, data) != 0xf23a6e61
        ) revert UnsafeRecipient(to);
    }

    /// @notice Move `amounts[i]` of token `ids[i]` from `from` to `to`, for every i.
    function safeBatchTransferFrom(
        address from,
        address to,
        uint256[] calldata ids,
        uint256[] calldata amounts,
        bytes calldata data
    ) external {
        if (ids.length != amounts.length) revert LengthMismatch();
        _authorize(from);
        for (uint256 i = 0; i < ids.length; ++i) {
            _move(from, to, ids[i], amounts[i]);
        }
        emit TransferBatch(msg.sender, from, to, ids, amounts);
        if (
            to.code.length != 0
                && IERC1155Receiver(to).onERC1155BatchReceived(msg.sender, from, ids, amounts, data) != 0xbc197c81
        ) revert UnsafeRecipient(to);
    }

    function _authorize(address from) private view {
        if (msg.sender != from && !isApprovedForAll[from][msg.sender]) revert NotAuthorized(msg.sender);
    }

    function _move(address from, address to, uint256 id, uint256 amount) private {
        uint256 balance = balanceOf[id][from];
        if (balance < amount) revert InsufficientBalance(id);
        balanceOf[id][from] = balance - amount;
        balanceOf[id][to] += amount;
    }
}
