// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title RevertingWallet: an EIP-1271 wallet whose isValidSignature always reverts.
/// A verifier must treat the revert as "invalid signature", not as an RPC failure.
/// Test fixture only.
contract RevertingWallet {
    error SignatureRejected(bytes32 hash);

    function isValidSignature(bytes32 hash, bytes calldata) external pure returns (bytes4) {
        revert SignatureRejected(hash);
    }
}
