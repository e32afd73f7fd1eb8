// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

// An ERC-6492 universal signature validator, written for walletauth after the ERC's
// reference design (https://eips.ethereum.org/EIPS/eip-6492, "Reference Implementation").
//
// ValidateSigOffchain is what the Go verifier runs: its creation bytecode followed by
// abi.encode(signer, hash, signature) is sent as a deploy-less eth_call (no "to"), and the
// call's return data is one byte, 0x01 for a valid signature and 0x00 otherwise. Nothing is
// ever deployed; the factory call a 6492 signature carries only happens inside that eth_call.
//
// Order of checks, as the ERC requires of verifiers:
//   1. signature ends with the 6492 magic suffix: unwrap (factory, factoryCalldata, innerSig);
//      if the signer has no code, call factory with factoryCalldata (it must succeed), then
//      ask signer.isValidSignature(hash, innerSig). If the signer was already deployed and
//      says no, run factoryCalldata once more (a "prepare" step, e.g. a key rotation the
//      factory applies) and ask again.
//   2. signer has code: ERC-1271 isValidSignature(hash, signature) == 0x1626ba7e.
//   3. otherwise: ecrecover of a 65-byte (r, s, v) signature over hash equals signer.
//
// Differences from the ERC's reference code: a failed or reverting isValidSignature reads as
// "invalid" (0x00) instead of bubbling up a revert, and a factory call that succeeds without
// putting code at the signer's address is "invalid" too. A factory call that fails still
// reverts (ERC6492DeployFailed), which the Go side also reads as "invalid".
//
// Compiled for evmVersion "paris" (no PUSH0 / MCOPY), because this bytecode runs on every
// configured chain, L2s included.

interface IERC1271Wallet {
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4 magicValue);
}

error ERC6492DeployFailed(bytes reason);

contract UniversalSigValidator {
    bytes32 private constant ERC6492_DETECTION_SUFFIX =
        0x6492649264926492649264926492649264926492649264926492649264926492;
    bytes4 private constant ERC1271_SUCCESS = 0x1626ba7e;
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    function isValidSigWithSideEffects(address signer, bytes32 hash, bytes calldata signature)
        external
        returns (bool)
    {
        return isValidSigImpl(signer, hash, signature);
    }

    function isValidSigImpl(address signer, bytes32 hash, bytes calldata signature) public returns (bool) {
        bool wasDeployed = signer.code.length > 0;
        bool counterfactual = signature.length >= 32
            && bytes32(signature[signature.length - 32:signature.length]) == ERC6492_DETECTION_SUFFIX;

        if (counterfactual) {
            (address factory, bytes memory factoryCalldata, bytes memory innerSig) =
                abi.decode(signature[0:signature.length - 32], (address, bytes, bytes));
            if (!wasDeployed) {
                (bool deployed, bytes memory err) = factory.call(factoryCalldata);
                if (!deployed) {
                    revert ERC6492DeployFailed(err);
                }
                if (signer.code.length == 0) {
                    return false;
                }
            }
            if (_isValid1271(signer, hash, innerSig)) {
                return true;
            }
            if (!wasDeployed) {
                return false;
            }
            (bool prepared,) = factory.call(factoryCalldata);
            return prepared && _isValid1271(signer, hash, innerSig);
        }

        if (wasDeployed) {
            return _isValid1271(signer, hash, signature);
        }
        return _isValidECDSA(signer, hash, signature);
    }

    function _isValid1271(address signer, bytes32 hash, bytes memory signature) private view returns (bool) {
        (bool ok, bytes memory ret) =
            signer.staticcall(abi.encodeCall(IERC1271Wallet.isValidSignature, (hash, signature)));
        return ok && ret.length >= 32 && bytes4(ret) == ERC1271_SUCCESS;
    }

    function _isValidECDSA(address signer, bytes32 hash, bytes calldata signature) private pure returns (bool) {
        if (signature.length != 65 || signer == address(0)) {
            return false;
        }
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) {
            v += 27;
        }
        if ((v != 27 && v != 28) || uint256(s) > HALF_N) {
            return false;
        }
        return ecrecover(hash, v, r, s) == signer;
    }
}

/// @notice Deploy-less entry point: run its creation code with eth_call; returns 0x01 or 0x00.
contract ValidateSigOffchain {
    constructor(address signer, bytes32 hash, bytes memory signature) {
        UniversalSigValidator validator = new UniversalSigValidator();
        bool isValidSig = validator.isValidSigWithSideEffects(signer, hash, signature);
        assembly ("memory-safe") {
            mstore(0, isValidSig)
            return(31, 1)
        }
    }
}
