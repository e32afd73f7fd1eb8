// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {OwnedWallet} from "./OwnedWallet.sol";

/// @title WalletFactory: deploys OwnedWallet with CREATE2, so a wallet's address is known
/// before it exists (a counterfactual wallet, as ERC-6492 signatures are made for).
/// address = keccak256(0xff ++ factory ++ keccak256(abi.encode(owner, salt)) ++
///                     keccak256(OwnedWallet.creationCode ++ abi.encode(owner)))[12:]
/// Test fixture only.
contract WalletFactory {
    event Deployed(address indexed wallet, address indexed owner, bytes32 salt);

    /// @notice Deploys the wallet for (owner, salt); returns the existing one if already deployed,
    /// so that calling it again (as an ERC-6492 verifier may) does not fail.
    function deploy(address owner, bytes32 salt) external returns (address wallet) {
        wallet = addressOf(owner, salt);
        if (wallet.code.length > 0) {
            return wallet;
        }
        OwnedWallet deployed = new OwnedWallet{salt: keccak256(abi.encode(owner, salt))}(owner);
        require(address(deployed) == wallet, "WalletFactory: address mismatch");
        emit Deployed(wallet, owner, salt);
    }

    function addressOf(address owner, bytes32 salt) public view returns (address) {
        bytes32 initCodeHash = keccak256(abi.encodePacked(type(OwnedWallet).creationCode, abi.encode(owner)));
        bytes32 digest = keccak256(
            abi.encodePacked(bytes1(0xff), address(this), keccak256(abi.encode(owner, salt)), initCodeHash)
        );
        return address(uint160(uint256(digest)));
    }
}
