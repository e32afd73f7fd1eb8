// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title OwnedWallet: a minimal EIP-1271 smart-contract wallet owned by one EOA key.
/// @notice isValidSignature accepts a 65-byte (r, s, v) ECDSA signature by the owner over
/// the hash exactly as given. For Sign-In with Ethereum that hash is already the
/// EIP-191 personal_sign hash of the message, so the owner signs it without re-hashing.
/// Test fixture only: it holds no funds and executes nothing.
contract OwnedWallet {
    bytes4 internal constant ERC1271_MAGIC = 0x1626ba7e;
    // Upper bound for s (secp256k1n / 2): rejects malleable signatures, as EIP-2 does.
    uint256 internal constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    address public immutable owner;

    constructor(address _owner) {
        owner = _owner;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (_recover(hash, signature) == owner && owner != address(0)) {
            return ERC1271_MAGIC;
        }
        return 0xffffffff;
    }

    function _recover(bytes32 hash, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) {
            return address(0);
        }
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) {
            v += 27; // accept both 0/1 and 27/28
        }
        if ((v != 27 && v != 28) || uint256(s) > HALF_N) {
            return address(0);
        }
        return ecrecover(hash, v, r, s);
    }
}
