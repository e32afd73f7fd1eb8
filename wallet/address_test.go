package wallet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/wallet"
)

func TestLowerHex(t *testing.T) {
	for _, s := range []string{"0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0x0000000000000000000000000000000000000001", "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF"} {
		a, err := wallet.ParseAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := wallet.LowerHex(a), strings.ToLower(s); got != want {
			t.Errorf("LowerHex(%s) = %s, want %s", s, got, want)
		}
	}
}

func TestParseAddress(t *testing.T) {
	const checksummed = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
	tests := []struct {
		name, in string
		wantErr  bool
	}{
		{"valid checksum", checksummed, false},
		{"all lower", strings.ToLower(checksummed), false},
		{"all upper", "0x" + strings.ToUpper(checksummed[2:]), false},
		{"digits only", "0x0000000000000000000000000000000000000001", false},
		{"invalid checksum", "0xc02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", true},
		{"invalid checksum, one letter", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756CC2", true},
		{"no 0x", checksummed[2:], true},
		{"0X prefix, all upper (ToUpper of the address)", strings.ToUpper(checksummed), false},
		{"0X prefix, bad checksum", "0X" + strings.ToLower(checksummed[2:3]) + checksummed[3:], true},
		{"too short", checksummed[:41], true},
		{"too long", checksummed + "0", true},
		{"non-hex", "0xG02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", true},
		{"empty", "", true},
		{"only 0x", "0x", true},
		{"leading space", " " + checksummed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wallet.ParseAddress(tt.in)
			if tt.wantErr {
				if !errors.Is(err, wallet.ErrInvalidAddress) {
					t.Fatalf("ParseAddress(%q) = %s, %v; want ErrInvalidAddress", tt.in, got.Hex(), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAddress(%q): %v", tt.in, err)
			}
			if !strings.EqualFold(got.Hex(), tt.in) {
				t.Fatalf("ParseAddress(%q) = %s", tt.in, got.Hex())
			}
			if tt.in[2:] != strings.ToLower(tt.in[2:]) && tt.in[2:] != strings.ToUpper(tt.in[2:]) && got.Hex() != tt.in {
				t.Fatalf("Hex() = %s, want %s", got.Hex(), tt.in)
			}
		})
	}
	// The output is the EIP-55 form, whatever the case of the input.
	got, err := wallet.ParseAddress(strings.ToLower(checksummed))
	if err != nil || got.Hex() != checksummed {
		t.Fatalf("ParseAddress(lower).Hex() = %s, %v; want %s", got.Hex(), err, checksummed)
	}
}
