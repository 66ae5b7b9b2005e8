// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title IReceivers
/// @notice The receiver hooks ERC-721 and ERC-1155 call on a contract receiving tokens.
interface IReceivers {
    /// @notice ERC-721 receiver hook.
    /// @return 0x150b7a02 to accept.
    function onERC721Received(address operator, address from, uint256 id, bytes calldata data) external returns (bytes4);

    /// @notice ERC-1155 receiver hook.
    /// @return 0xf23a6e61 to accept.
    function onERC1155Received(address operator, address from, uint256 id, uint256 value, bytes calldata data)
        external
        returns (bytes4);

    /// @notice ERC-1155 batch receiver hook.
    /// @return 0xbc197c81 to accept.
    function onERC1155BatchReceived(
        address operator,
        address from,
        uint256[] calldata ids,
        uint256[] calldata values,
        bytes calldata data
    ) external returns (bytes4);
}

/// @title ReceiverTokens
/// @notice The minimum of an ERC-721 and an ERC-1155 token that a test needs to check a contract's receiver hooks:
///         `safeTransferFrom` and `safeBatchTransferFrom` of freshly minted tokens, refused unless the receiving
///         contract answers its hook. Anyone may mint. Never deploy it live.
contract ReceiverTokens {
    /// @notice ERC-721 owners.
    mapping(uint256 id => address) public ownerOf;
    /// @notice ERC-1155 balances.
    mapping(address holder => mapping(uint256 id => uint256)) public balanceOf;

    /// @notice The receiver did not accept the token.
    error Refused(address receiver);
    /// @notice The sender does not hold the token.
    error NotHolder();

    /// @notice Mint NFT `id` and ERC-1155 `amount` of `id` to the caller.
    /// @param id The token id.
    /// @param amount The ERC-1155 amount.
    function mint(uint256 id, uint256 amount) external {
        ownerOf[id] = msg.sender;
        balanceOf[msg.sender][id] += amount;
    }

    /// @notice ERC-721 safeTransferFrom (caller must hold `id`).
    /// @param from The holder.
    /// @param to The receiver.
    /// @param id The token id.
    function safeTransferFrom(address from, address to, uint256 id) external {
        if (ownerOf[id] != from || from != msg.sender) revert NotHolder();
        ownerOf[id] = to;
        if (to.code.length > 0 && IReceivers(to).onERC721Received(msg.sender, from, id, "") != 0x150b7a02) {
            revert Refused(to);
        }
    }

    /// @notice ERC-1155 safeTransferFrom (caller must hold the amount).
    /// @param from The holder.
    /// @param to The receiver.
    /// @param id The token id.
    /// @param amount The amount.
    /// @param data Passed to the hook.
    function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes calldata data) external {
        if (from != msg.sender || balanceOf[from][id] < amount) revert NotHolder();
        balanceOf[from][id] -= amount;
        balanceOf[to][id] += amount;
        if (to.code.length > 0 && IReceivers(to).onERC1155Received(msg.sender, from, id, amount, data) != 0xf23a6e61) {
            revert Refused(to);
        }
    }

    /// @notice ERC-1155 safeBatchTransferFrom (caller must hold the amounts).
    /// @param from The holder.
    /// @param to The receiver.
    /// @param ids The token ids.
    /// @param amounts The amounts.
    /// @param data Passed to the hook.
    function safeBatchTransferFrom(
        address from,
        address to,
        uint256[] calldata ids,
        uint256[] calldata amounts,
        bytes calldata data
    ) external {
        if (from != msg.sender) revert NotHolder();
        for (uint256 i = 0; i < ids.length; ++i) {
            if (balanceOf[from][ids[i]] < amounts[i]) revert NotHolder();
            balanceOf[from][ids[i]] -= amounts[i];
            balanceOf[to][ids[i]] += amounts[i];
        }
        if (
            to.code.length > 0
                && IReceivers(to).onERC1155BatchReceived(msg.sender, from, ids, amounts, data) != 0xbc197c81
        ) revert Refused(to);
    }
}
