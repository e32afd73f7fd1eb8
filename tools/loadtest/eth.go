package main

import (
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The tool is a module of its own and imports nothing from the service, so
// the few service rules it needs are restated here, each checked against
// go-ethereum or the contract by main_test.go.

// isLoopbackHost reports whether host (a name or an IP literal) is
// localhost or a loopback address: the only targets the tool accepts.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// hashEIP191 is the personal_sign hash of msg, built the way the server
// builds it (strconv, no fmt) so that the signrecover reference costs what
// the server's side of a login costs.
func hashEIP191(msg []byte) common.Hash {
	prefix := make([]byte, 0, 32)
	prefix = append(prefix, "\x19Ethereum Signed Message:\n"...)
	prefix = strconv.AppendInt(prefix, int64(len(msg)), 10)
	return crypto.Keccak256Hash(prefix, msg)
}

// recoverAddress is the server's work on a 65-byte r‖s‖v signature with v
// in {0, 1} (what crypto.Sign gives): range check, recovery, address.
func recoverAddress(hash common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, fmt.Errorf("signature is %d bytes, want 65", len(sig))
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(sig[64], r, s, false) {
		return common.Address{}, fmt.Errorf("r, s or v out of range")
	}
	pub, err := crypto.SigToPub(hash[:], sig)
	if err != nil {
		return common.Address{}, fmt.Errorf("recover: %w", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}
