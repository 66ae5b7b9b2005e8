// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

// Self-contained on purpose: the metadata hash in the bytecode covers every imported source, and the bytecode fixes
// the handler's address on every chain, so an edit to a shared interface file must not move it.

/// @title IHandlerSafe
/// @notice The Safe functions TreasuryFallbackHandler calls (identical in Safe 1.3.0, 1.4.1 and 1.5.0).
interface IHandlerSafe {
    /// @notice Read `length` consecutive storage words of the Safe, starting at slot `offset`.
    /// @param offset The first storage slot.
    /// @param length The number of words.
    /// @return The words, concatenated.
    function getStorageAt(uint256 offset, uint256 length) external view returns (bytes memory);

    /// @notice Revert unless `signatures` are valid owner signatures of `dataHash` under the Safe's threshold.
    /// @param dataHash The signed hash.
    /// @param data The preimage of `dataHash` (for EIP-1271 contract owners; ignored by 1.5.0).
    /// @param signatures Concatenated owner signatures, sorted by owner address.
    function checkSignatures(bytes32 dataHash, bytes calldata data, bytes calldata signatures) external view;

    /// @notice Delegatecall `targetContract` in the Safe's context, then revert with
    ///         `abi.encodePacked(bool success, uint256 returnDataSize, bytes returnData)`.
    /// @param targetContract The contract whose code runs in the Safe's context.
    /// @param calldataPayload The calldata for that code.
    function simulateAndRevert(address targetContract, bytes calldata calldataPayload) external;
}

/// @title IMessagePolicy
/// @notice What TreasuryFallbackHandler asks the Safe's guard (TreasuryGuard's MessageApprovals).
interface IMessagePolicy {
    /// @notice Whether the Safe approved `hash` as signed by itself (through the delay queue).
    /// @param hash The message hash.
    /// @return Whether it is approved.
    function isMessageApproved(bytes32 hash) external view returns (bool);

    /// @notice Whether owners may sign typed data of `typeHash` under `domainSeparator` for the Safe.
    /// @param domainSeparator The EIP-712 domain separator.
    /// @param typeHash The EIP-712 type hash of the primary type.
    /// @return Whether it is allowed.
    function isTypedDataAllowed(bytes32 domainSeparator, bytes32 typeHash) external view returns (bool);
}

/// @title TreasuryFallbackHandler
/// @notice The fallback handler of a treasury Safe: token receiver hooks and `simulate` like Safe's own handlers,
///         but EIP-1271 signatures only for messages the Safe's guard approved. Safe's CompatibilityFallbackHandler
///         accepts owner signatures over any message, so a threshold of owners could sign an EIP-2612 permit, an
///         EIP-3009 authorization, a Permit2 transfer or a DEX order "as the Safe" and move its tokens without a
///         Safe transaction: no cap, no allowlist, no delay. Here owner signatures alone never suffice.
/// @dev Stateless and shared by every Safe of a chain (deployed at one CREATE2 address through the deterministic
///      deployment proxy). Reached through the Safe's fallback, so `msg.sender` is the Safe (the original caller,
///      appended by the Safe, is not needed). The Safe's guard is read from the Safe's own storage; a Safe without a
///      guard, or with a guard that does not answer, has nothing approved. A plain "no" never reverts: verifiers
///      get 0xffffffff. Nothing here writes state: `simulate` runs through the Safe's `simulateAndRevert`, which
///      always reverts.
contract TreasuryFallbackHandler {
    /// @dev EIP-1271 magic value of isValidSignature(bytes32,bytes).
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;
    /// @dev Legacy EIP-1271 magic value of isValidSignature(bytes,bytes).
    bytes4 internal constant LEGACY_MAGIC_VALUE = 0x20c13b0b;
    /// @dev What a refused signature gets.
    bytes4 internal constant INVALID = 0xffffffff;
    /// @dev keccak256("guard_manager.guard.address"), identical in Safe 1.3.0, 1.4.1 and 1.5.0.
    uint256 internal constant GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;

    bytes4 internal constant ERC721_RECEIVED = 0x150b7a02; // onERC721Received(address,address,uint256,bytes)
    bytes4 internal constant ERC1155_RECEIVED = 0xf23a6e61; // onERC1155Received(address,address,uint256,uint256,bytes)
    // onERC1155BatchReceived(address,address,uint256[],uint256[],bytes)
    bytes4 internal constant ERC1155_BATCH_RECEIVED = 0xbc197c81;
    bytes4 internal constant ERC165_ID = 0x01ffc9a7;
    bytes4 internal constant ERC721_RECEIVER_ID = 0x150b7a02;
    bytes4 internal constant ERC1155_RECEIVER_ID = 0x4e2312e0;
    bytes4 internal constant ERC777_RECIPIENT_ID = 0x0023de29; // tokensReceived(...) selector

    /// @notice Accept every ERC-721 token sent to the Safe with `safeTransferFrom`.
    /// @dev Receiving cannot move anything out of the Safe, so there is nothing to check.
    /// @return The ERC-721 receiver magic value.
    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return ERC721_RECEIVED;
    }

    /// @notice Accept every ERC-1155 token sent to the Safe.
    /// @return The ERC-1155 receiver magic value.
    function onERC1155Received(address, address, uint256, uint256, bytes calldata) external pure returns (bytes4) {
        return ERC1155_RECEIVED;
    }

    /// @notice Accept every ERC-1155 batch sent to the Safe.
    /// @return The ERC-1155 batch receiver magic value.
    function onERC1155BatchReceived(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return ERC1155_BATCH_RECEIVED;
    }

    /// @notice Accept every ERC-777 token sent to the Safe (the hook must not revert).
    function tokensReceived(address, address, address, uint256, bytes calldata, bytes calldata) external pure {}

    /// @notice EIP-165: the receiver interfaces this handler answers for the Safe.
    /// @param interfaceId The interface identifier.
    /// @return Whether it is ERC-165, ERC-721 receiver or ERC-1155 receiver.
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == ERC165_ID || interfaceId == ERC721_RECEIVER_ID || interfaceId == ERC1155_RECEIVER_ID;
    }

    /// @notice EIP-1271: whether the Safe signed `hash`. Only when its guard approved `hash` through the delay queue,
    ///         or when `signature` carries typed data of a domain and type the guard allows, signed by a threshold
    ///         of owners.
    /// @dev Owner signatures over `hash` alone are ignored: they would let owners act as the Safe outside every
    ///      Safe transaction check. For the typed-data path `signature` is
    ///      abi.encode(bytes32 domainSeparator, bytes encodedStruct, bytes ownerSignatures) with
    ///      hash == keccak256(0x1901 || domainSeparator || keccak256(encodedStruct)); the first word of encodedStruct
    ///      is the type hash. Anything malformed is a plain refusal.
    /// @param hash The hash the verifier checks.
    /// @param signature Ignored, or the typed-data encoding above.
    /// @return 0x1626ba7e if valid, 0xffffffff otherwise.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        address guard = _guardOf(msg.sender);
        if (guard == address(0)) return INVALID;
        if (_askGuard(guard, abi.encodeCall(IMessagePolicy.isMessageApproved, (hash)))) return MAGIC_VALUE;
        if (_typedDataValid(msg.sender, guard, hash, signature)) return MAGIC_VALUE;
        return INVALID;
    }

    /// @notice Legacy EIP-1271 (isValidSignature(bytes,bytes)): whether the Safe signed `data`, i.e. its guard
    ///         approved keccak256(data).
    /// @param data The signed data.
    /// @return 0x20c13b0b if approved, 0xffffffff otherwise.
    function isValidSignature(bytes calldata data, bytes calldata) external view returns (bytes4) {
        address guard = _guardOf(msg.sender);
        if (guard == address(0)) return INVALID;
        if (_askGuard(guard, abi.encodeCall(IMessagePolicy.isMessageApproved, (keccak256(data))))) {
            return LEGACY_MAGIC_VALUE;
        }
        return INVALID;
    }

    /// @notice Run `payload` as a delegatecall from the Safe to `target` and return its result, changing nothing
    ///         (the Safe's `simulateAndRevert` reverts after the call). Reverts with the call's revert data.
    /// @dev Offered like Safe's own handlers, for tools that estimate or read through the Safe (e.g. the
    ///      SimulateTxAccessor). Called through the Safe, so `msg.sender` is the Safe.
    /// @param target The contract whose code runs in the Safe's context.
    /// @param payload Calldata for `target`.
    /// @return response The return data of the call.
    function simulate(address target, bytes calldata payload) external returns (bytes memory response) {
        (, bytes memory packed) = msg.sender.call(abi.encodeCall(IHandlerSafe.simulateAndRevert, (target, payload)));
        // simulateAndRevert reverts with abi.encodePacked(bool success, uint256 size, bytes returnData)
        if (packed.length < 64) revert SimulationFailed();
        bool success;
        uint256 size;
        assembly ("memory-safe") {
            success := mload(add(packed, 0x20))
            size := mload(add(packed, 0x40))
        }
        if (size > packed.length - 64) revert SimulationFailed();
        response = new bytes(size);
        for (uint256 i = 0; i < size; ++i) {
            response[i] = packed[64 + i];
        }
        if (!success) {
            assembly ("memory-safe") {
                revert(add(response, 0x20), mload(response))
            }
        }
    }

    /// @notice `simulate` was not answered the way a Safe answers (not reached through a Safe).
    error SimulationFailed();

    /// @dev The transaction guard of `safe`, read with its getStorageAt; address(0) if it has none or does not answer.
    function _guardOf(address safe) internal view returns (address) {
        (bool ok, bytes memory data) = safe.staticcall(abi.encodeCall(IHandlerSafe.getStorageAt, (GUARD_SLOT, 1)));
        // abi-encoded bytes of one word: offset, length 32, the word
        if (!ok || data.length < 96) return address(0);
        uint256 length;
        uint256 word;
        assembly ("memory-safe") {
            length := mload(add(data, 0x40))
            word := mload(add(data, 0x60))
        }
        if (length != 32 || word >> 160 != 0) return address(0);
        return address(uint160(word));
    }

    /// @dev Staticcall the guard with `query`; true only for an answer of exactly the word 1.
    function _askGuard(address guard, bytes memory query) internal view returns (bool) {
        if (guard.code.length == 0) return false;
        (bool ok, bytes memory answer) = guard.staticcall(query);
        return ok && answer.length == 32 && uint256(bytes32(answer)) == 1;
    }

    /// @dev The typed-data path of isValidSignature (see there).
    function _typedDataValid(address safe, address guard, bytes32 hash, bytes calldata signature)
        internal
        view
        returns (bool)
    {
        if (!_isTypedDataEncoding(signature)) return false;
        (bytes32 domainSeparator, bytes memory encodedStruct, bytes memory ownerSignatures) =
            abi.decode(signature, (bytes32, bytes, bytes));
        if (encodedStruct.length < 32) return false;
        bytes memory preimage = abi.encodePacked(bytes2(0x1901), domainSeparator, keccak256(encodedStruct));
        if (keccak256(preimage) != hash) return false;
        bytes32 typeHash;
        assembly ("memory-safe") {
            typeHash := mload(add(encodedStruct, 0x20))
        }
        if (!_askGuard(guard, abi.encodeCall(IMessagePolicy.isTypedDataAllowed, (domainSeparator, typeHash)))) {
            return false;
        }
        // checkSignatures reverts unless a threshold of owners signed `hash`; a revert is a plain "no".
        (bool ok,) = safe.staticcall(abi.encodeCall(IHandlerSafe.checkSignatures, (hash, preimage, ownerSignatures)));
        return ok;
    }

    /// @dev Whether `signature` is a well-formed abi.encode(bytes32, bytes, bytes), so that decoding cannot revert.
    function _isTypedDataEncoding(bytes calldata signature) internal pure returns (bool) {
        uint256 size = signature.length;
        if (size < 160) return false; // head (3 words) + two length words
        for (uint256 index = 1; index <= 2; ++index) {
            uint256 offset = uint256(bytes32(signature[index * 32:index * 32 + 32]));
            if (offset < 96 || offset > size - 32) return false;
            uint256 length = uint256(bytes32(signature[offset:offset + 32]));
            if (length > size - offset - 32) return false;
        }
        return true;
    }
}
