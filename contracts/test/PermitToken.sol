// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title IERC1271
/// @notice Signature validation by contracts (EIP-1271).
interface IERC1271 {
    /// @notice Whether `signature` is valid for `hash` on behalf of this contract.
    /// @param hash The signed hash.
    /// @param signature The signature data.
    /// @return 0x1626ba7e when valid.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4);
}

/// @title PermitToken
/// @notice A minimal ERC-20 with EIP-2612 `permit` and EIP-3009 `transferWithAuthorization`, both accepting EIP-1271
///         signatures when the owner is a contract (as USDC and many permit tokens do). Tests use it to show that a
///         Safe whose fallback handler validates owner signatures can be drained without a Safe transaction.
///         Anyone may mint. Never deploy it live.
contract PermitToken {
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;

    /// @notice The EIP-712 domain separator of this token.
    bytes32 public immutable DOMAIN_SEPARATOR;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    /// @notice EIP-2612 nonces.
    mapping(address => uint256) public nonces;
    /// @notice EIP-3009 used authorization nonces.
    mapping(address => mapping(bytes32 => bool)) public authorizationState;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice The signature does not come from `owner`.
    error InvalidSignature(address owner);
    /// @notice Deadline passed, or authorization outside its validity window or already used.
    error Expired();
    /// @notice Balance or allowance too low.
    error Insufficient();

    constructor() {
        DOMAIN_SEPARATOR = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Permit Token"),
                keccak256("1"),
                block.chainid,
                address(this)
            )
        );
    }

    /// @notice Create `amount` tokens for `to`.
    /// @param to The receiver.
    /// @param amount The amount.
    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice ERC-20 transfer.
    /// @param to The receiver.
    /// @param amount The amount.
    /// @return Always true.
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    /// @notice ERC-20 transferFrom.
    /// @param from The holder.
    /// @param to The receiver.
    /// @param amount The amount.
    /// @return Always true.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (allowance[from][msg.sender] < amount) revert Insufficient();
        allowance[from][msg.sender] -= amount;
        _move(from, to, amount);
        return true;
    }

    /// @notice EIP-2612 permit, with `signature` as r || s || v (an EOA) or anything a contract owner validates.
    /// @param owner The holder.
    /// @param spender The spender.
    /// @param value The allowance.
    /// @param deadline Last valid timestamp.
    /// @param signature The owner's signature.
    function permit(address owner, address spender, uint256 value, uint256 deadline, bytes calldata signature)
        external
    {
        if (block.timestamp > deadline) revert Expired();
        bytes32 digest = permitDigest(owner, spender, value, nonces[owner], deadline);
        _checkSignature(owner, digest, signature);
        nonces[owner] += 1;
        allowance[owner][spender] = value;
        emit Approval(owner, spender, value);
    }

    /// @notice EIP-3009 transferWithAuthorization, with `signature` as in `permit`.
    /// @param from The holder.
    /// @param to The receiver.
    /// @param value The amount.
    /// @param validAfter First invalid timestamp before the window.
    /// @param validBefore First invalid timestamp after the window.
    /// @param nonce Unique authorization nonce.
    /// @param signature The holder's signature.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (block.timestamp <= validAfter || block.timestamp >= validBefore || authorizationState[from][nonce]) {
            revert Expired();
        }
        _checkSignature(from, authorizationDigest(from, to, value, validAfter, validBefore, nonce), signature);
        authorizationState[from][nonce] = true;
        _move(from, to, value);
    }

    /// @notice The EIP-712 digest of a permit.
    /// @return The digest.
    function permitDigest(address owner, address spender, uint256 value, uint256 nonce, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonce, deadline));
        return keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
    }

    /// @notice The EIP-712 digest of a transfer authorization.
    /// @return The digest.
    function authorizationDigest(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) public view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce));
        return keccak256(abi.encodePacked(hex"1901", DOMAIN_SEPARATOR, structHash));
    }

    function _checkSignature(address owner, bytes32 digest, bytes calldata signature) internal view {
        if (owner.code.length > 0) {
            (bool ok, bytes memory answer) =
                owner.staticcall(abi.encodeCall(IERC1271.isValidSignature, (digest, signature)));
            if (!ok || answer.length != 32 || bytes4(answer) != MAGIC_VALUE) revert InvalidSignature(owner);
            return;
        }
        if (signature.length != 65) revert InvalidSignature(owner);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0) || signer != owner) revert InvalidSignature(owner);
    }

    function _move(address from, address to, uint256 amount) internal {
        if (balanceOf[from] < amount) revert Insufficient();
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
