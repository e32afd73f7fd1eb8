package wallet

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// MaxSignatureLen is the longest signature ParseSignature accepts, in bytes
// (contract-wallet signatures, ERC-6492 wrapped ones included, fit in it).
const MaxSignatureLen = 8192

// ParseSignature decodes a hex signature, with or without a "0x" prefix:
// an even number of hex digits making 1 to MaxSignatureLen bytes. It does
// not look at what the bytes mean; Recover does.
//
// It returns an error wrapping ErrInvalidSignature otherwise.
func ParseSignature(s string) ([]byte, error) {
	h := s
	if len(h) >= 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X') {
		h = h[2:]
	}
	switch {
	case h == "":
		return nil, fmt.Errorf("%w: empty", ErrInvalidSignature)
	case len(h)%2 != 0:
		return nil, fmt.Errorf("%w: odd number of hex digits (%d)", ErrInvalidSignature, len(h))
	case len(h)/2 > MaxSignatureLen:
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidSignature, len(h)/2, MaxSignatureLen)
	}
	sig, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	return sig, nil
}

// HashEIP191 returns the EIP-191 version 0x45 (personal_sign) hash of msg:
// keccak256("\x19Ethereum Signed Message:\n" + decimal len(msg) + msg).
func HashEIP191(msg []byte) common.Hash {
	prefix := make([]byte, 0, 32)
	prefix = append(prefix, "\x19Ethereum Signed Message:\n"...)
	prefix = strconv.AppendInt(prefix, int64(len(msg)), 10)
	return crypto.Keccak256Hash(prefix, msg)
}

// Recover returns the address whose key made sig over hash. sig is either
// 65 bytes r‖s‖v with v in {0, 1, 27, 28}, or 64 bytes r‖yParityAndS
// (EIP-2098 compact form: the top bit of the second word is the y parity).
//
// A high s (above secp256k1's n/2) is accepted: EIP-2 forbids it in
// transactions because a second valid signature could change a
// transaction's hash, but a sign-in is bound to a single-use nonce, and
// nothing relies on a signature being the only one for its message.
//
// Errors:
//   - ErrInvalidSignature together with ErrNotKeySignature when sig is not
//     64 or 65 bytes, or its v is not 0, 1, 27 or 28: not a key signature,
//     possibly a contract wallet's;
//   - ErrSignatureMismatch when sig has the shape of a key signature but
//     no key can have made it (r or s out of range, no point for r).
//
// Recover never panics, whatever sig holds.
func Recover(hash common.Hash, sig []byte) (common.Address, error) {
	var rsv [65]byte
	switch len(sig) {
	case 65:
		copy(rsv[:], sig)
		switch v := sig[64]; v {
		case 0, 1:
		case 27, 28:
			rsv[64] = v - 27
		default:
			return common.Address{}, fmt.Errorf("%w: %w: v is %d, want 0, 1, 27 or 28", ErrInvalidSignature, ErrNotKeySignature, v)
		}
	case 64:
		copy(rsv[:64], sig)
		rsv[64] = sig[32] >> 7
		rsv[32] &= 0x7f
	default:
		return common.Address{}, fmt.Errorf("%w: %w: %d bytes", ErrInvalidSignature, ErrNotKeySignature, len(sig))
	}
	r := new(big.Int).SetBytes(rsv[:32])
	s := new(big.Int).SetBytes(rsv[32:64])
	if !crypto.ValidateSignatureValues(rsv[64], r, s, false) {
		return common.Address{}, fmt.Errorf("%w: r or s out of range", ErrSignatureMismatch)
	}
	pub, err := crypto.SigToPub(hash[:], rsv[:])
	if err != nil {
		return common.Address{}, fmt.Errorf("%w: recovery failed: %w", ErrSignatureMismatch, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// VerifyEOA checks that sig is a key signature of msg, hashed with
// HashEIP191, by the key of want.
//
// It returns nil when it is; an error wrapping ErrSignatureMismatch when sig
// is a well-formed key signature by another key (or by none); the errors of
// Recover (ErrInvalidSignature with ErrNotKeySignature) when sig does not
// have the shape of a key signature. Contract wallets are not checked here.
func VerifyEOA(msg []byte, sig []byte, want common.Address) error {
	got, err := Recover(HashEIP191(msg), sig)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: signed by %s, not %s", ErrSignatureMismatch, got.Hex(), want.Hex())
	}
	return nil
}
