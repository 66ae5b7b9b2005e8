// SPDX-License-Identifier: LGPL-3.0-only
pragma solidity 0.8.28;

/// @title ReentrantCallback
/// @notice Test-only contract a Safe may be allowed to call: its `callback` sends a stored payload (e.g. a fully signed
///         nested `execTransaction`) back to the Safe and records what happened instead of reverting, so the outer
///         transaction completes and the nested result can be inspected. Never deploy it live.
contract ReentrantCallback {
    bytes public payload;
    bool public lastSuccess;
    bytes public lastReturnData;
    uint256 public calls;

    /// @notice Store the payload the next callback sends.
    function arm(bytes calldata payload_) external {
        payload = payload_;
    }

    /// @notice Send the stored payload to `safe`; record success and return data.
    function callback(address safe) external {
        (bool ok, bytes memory returned) = safe.call(payload);
        lastSuccess = ok;
        lastReturnData = returned;
        calls += 1;
    }
}
