// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title WrongMagicWallet: checks the owner's signature like OwnedWallet but answers a valid
/// one with 0x20c13b0b, the magic value of the legacy isValidSignature(bytes,bytes) draft of
/// EIP-1271, instead of 0x1626ba7e. A verifier must not accept it. Test fixture only.
contract WrongMagicWallet {
    bytes4 internal constant LEGACY_MAGIC = 0x20c13b0b;

    address public immutable owner;

    constructor(address _owner) {
        owner = _owner;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length == 65) {
            uint8 v = uint8(signature[64]);
            if (v < 27) {
                v += 27;
            }
            if (ecrecover(hash, v, bytes32(signature[0:32]), bytes32(signature[32:64])) == owner) {
                return LEGACY_MAGIC;
            }
        }
        return 0xffffffff;
    }
}
