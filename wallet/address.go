package wallet

import (
	"encoding/hex"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
)

// ParseAddress parses an Ethereum address: "0x" followed by 40 hex digits.
// All-lowercase and all-uppercase hex are accepted as they carry no
// checksum; mixed case must be a valid EIP-55 checksum. The result's Hex()
// is the EIP-55 form. The prefix may be "0X" too, as an all-uppercase
// address is often written (strings.ToUpper of the whole address).
//
// It returns an error wrapping ErrInvalidAddress otherwise.
func ParseAddress(s string) (common.Address, error) {
	if len(s) == 42 && s[:2] == "0X" {
		s = "0x" + s[2:]
	}
	hexPart, ok := addressHex(s)
	if !ok {
		return common.Address{}, fmt.Errorf("%w: want 0x and 40 hex digits, got %q", ErrInvalidAddress, truncate(s))
	}
	addr := common.HexToAddress(hexPart)
	hasLower, hasUpper := letterCases(hexPart)
	if hasLower && hasUpper && addr.Hex()[2:] != hexPart {
		return common.Address{}, fmt.Errorf("%w: bad EIP-55 checksum in %s (want %s)", ErrInvalidAddress, s, addr.Hex())
	}
	return addr, nil
}

// LowerHex returns a as "0x" and 40 lowercase hex digits: a stable key
// for an address that, unlike Hex's EIP-55 form, costs no hashing.
func LowerHex(a common.Address) string {
	var b [42]byte
	b[0], b[1] = '0', 'x'
	hex.Encode(b[2:], a[:])
	return string(b[:])
}

// parseChecksummedAddress parses an address that must be written exactly in
// its EIP-55 form, as EIP-4361 requires inside a message (the vectors refuse
// an all-lowercase address there).
func parseChecksummedAddress(s string) (common.Address, error) {
	hexPart, ok := addressHex(s)
	if !ok {
		return common.Address{}, fmt.Errorf("%w: want 0x and 40 hex digits, got %q", ErrInvalidAddress, truncate(s))
	}
	addr := common.HexToAddress(hexPart)
	if addr.Hex() != s {
		return common.Address{}, fmt.Errorf("%w: %s is not EIP-55 checksummed (want %s)", ErrInvalidAddress, s, addr.Hex())
	}
	return addr, nil
}

// addressHex returns the 40 hex digits after "0x" when s has that shape.
func addressHex(s string) (string, bool) {
	if len(s) != 42 || s[0] != '0' || s[1] != 'x' {
		return "", false
	}
	h := s[2:]
	for i := 0; i < len(h); i++ {
		if !isHexDigit(h[i]) {
			return "", false
		}
	}
	return h, true
}

func letterCases(h string) (hasLower, hasUpper bool) {
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case 'a' <= c && c <= 'f':
			hasLower = true
		case 'A' <= c && c <= 'F':
			hasUpper = true
		}
	}
	return hasLower, hasUpper
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// truncate shortens untrusted input quoted in an error message.
func truncate(s string) string {
	const maxLen = 80
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "…"
}
