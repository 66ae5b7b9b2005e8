// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @notice The ERC-721 receiver hook.
interface IERC721Receiver {
    /// @notice Called on a contract receiving a token through safeTransferFrom.
    /// @return 0x150b7a02 to accept.
    function onERC721Received(address operator, address from, uint256 id, bytes calldata data)
        external
        returns (bytes4);
}

/// @title TestNFT
/// @notice A minimal ERC-721 for tests of TreasuryGuard's NFT rules: anyone may mint. Never deploy it live.
contract TestNFT {
    mapping(uint256 id => address) public ownerOf;
    mapping(address owner => uint256) public balanceOf;
    mapping(uint256 id => address) public getApproved;
    mapping(address owner => mapping(address operator => bool)) public isApprovedForAll;

    event Transfer(address indexed from, address indexed to, uint256 indexed id);
    event Approval(address indexed owner, address indexed approved, uint256 indexed id);
    event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

    error NotAuthorized(address caller, uint256 id);
    error WrongOwner(address from, uint256 id);
    error UnsafeRecipient(address to);

    /// @notice Create token `id` for `to`.
    function mint(address to, uint256 id) external {
        if (ownerOf[id] != address(0)) revert WrongOwner(address(0), id);
        ownerOf[id] = to;
        balanceOf[to] += 1;
        emit Transfer(address(0), to, id);
    }

    /// @notice Let `to` move token `id` (address(0): nobody).
    function approve(address to, uint256 id) external {
        address owner = ownerOf[id];
        if (msg.sender != owner && !isApprovedForAll[owner][msg.sender]) revert NotAuthorized(msg.sender, id);
        getApproved[id] = to;
        emit Approval(owner, to, id);
    }

    /// @notice Let `operator` move all of the caller's tokens, or stop it.
    function setApprovalForAll(address operator, bool approved) external {
        isApprovedForAll[msg.sender][operator] = approved;
        emit ApprovalForAll(msg.sender, operator, approved);
    }

    /// @notice Move token `id` from `from` to `to`.
    function transferFrom(address from, address to, uint256 id) public {
        if (ownerOf[id] != from) revert WrongOwner(from, id);
        if (msg.sender != from && !isApprovedForAll[from][msg.sender] && getApproved[id] != msg.sender) {
            revert NotAuthorized(msg.sender, id);
        }
        delete getApproved[id];
        balanceOf[from] -= 1;
        balanceOf[to] += 1;
        ownerOf[id] = to;
        emit Transfer(from, to, id);
    }

    /// @notice Move token `id`, checking that a contract recipient accepts it.
    function safeTransferFrom(address from, address to, uint256 id) external {
        safeTransferFrom(from, to, id, "");
    }

    /// @notice Move token `id` with `data` for the recipient, checking that a contract recipient accepts it.
    function safeTransferFrom(address from, address to, uint256 id, bytes memory data) public {
        transferFrom(from, to, id);
        if (to.code.length != 0 && IERC721Receiver(to).onERC721Received(msg.sender, from, id, data) != 0x150b7a02) {
            revert UnsafeRecipient(to);
        }
    }
}
