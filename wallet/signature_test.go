package wallet_test

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/walletauth/walletauth/wallet"
)

func mustKey(tb testing.TB) (*ecdsa.PrivateKey, common.Address) {
	tb.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	return key, crypto.PubkeyToAddress(key.PublicKey)
}

// mustSign returns the 65-byte r‖s‖v signature, v in {0, 1}, of msg's EIP-191 hash.
func mustSign(tb testing.TB, key *ecdsa.PrivateKey, msg []byte) []byte {
	tb.Helper()
	h := wallet.HashEIP191(msg)
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

// compact returns the EIP-2098 form of a 65-byte signature with v in {0, 1}.
func compact(sig []byte) []byte {
	c := append([]byte(nil), sig[:64]...)
	c[32] |= sig[64] << 7
	return c
}

func TestHashEIP191(t *testing.T) {
	for _, msg := range []string{"", "hello", strings.Repeat("x", 1000), fullMessage} {
		if got, want := wallet.HashEIP191([]byte(msg)), common.BytesToHash(accounts.TextHash([]byte(msg))); got != want {
			t.Errorf("HashEIP191(%q) = %s, want %s", msg, got, want)
		}
	}
	// Known value: personal_sign of "hello".
	const hello = "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
	if got := wallet.HashEIP191([]byte("hello")).Hex(); got != hello {
		t.Errorf("HashEIP191(hello) = %s, want %s", got, hello)
	}
}

func TestRecoverAndVerifyEOA(t *testing.T) {
	key, addr := mustKey(t)
	_, other := mustKey(t)
	msg := []byte(fullMessage)
	sig := mustSign(t, key, msg)
	plus27 := append(append([]byte(nil), sig[:64]...), sig[64]+27)
	withV := func(v byte) []byte { return append(append([]byte(nil), sig[:64]...), v) }

	// The signature with the other parity recovers another key.
	flipped := withV(sig[64] ^ 1)
	// High s: (r, n-s) with the other parity is the same signature, malleated.
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:64])
	highS := append(append([]byte(nil), sig[:32]...), new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))...)
	highS = append(highS, sig[64]^1)
	zeroR := append(make([]byte, 32), sig[32:]...)

	tests := []struct {
		name    string
		msg     []byte
		sig     []byte
		want    common.Address
		wantErr []error // all must match; nil means success
	}{
		{"v 0/1", msg, sig, addr, nil},
		{"v 27/28", msg, plus27, addr, nil},
		{"EIP-2098 compact", msg, compact(sig), addr, nil},
		{"high s", msg, highS, addr, nil},
		{"tampered message", append([]byte(fullMessage), ' '), sig, addr, []error{wallet.ErrSignatureMismatch}},
		{"tampered compact", []byte(strings.ToUpper(fullMessage)), compact(sig), addr, []error{wallet.ErrSignatureMismatch}},
		{"wrong key", msg, sig, other, []error{wallet.ErrSignatureMismatch}},
		{"other parity", msg, flipped, addr, []error{wallet.ErrSignatureMismatch}},
		{"zero r", msg, zeroR, addr, []error{wallet.ErrSignatureMismatch}},
		{"r = n", msg, append(n.FillBytes(make([]byte, 32)), sig[32:]...), addr, []error{wallet.ErrSignatureMismatch}},
		{"all zero", msg, make([]byte, 65), addr, []error{wallet.ErrSignatureMismatch}},
		{"all 0xff, v 27", msg, append(bytesOf(0xff, 64), 27), addr, []error{wallet.ErrSignatureMismatch}},
		{"v 2", msg, withV(2), addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
		{"v 29", msg, withV(29), addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
		{"v 255", msg, withV(255), addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
		{"length 0", msg, nil, addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
		{"length 2", msg, []byte{0x12, 0x34}, addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
		{"length 63", msg, sig[:63], addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
		{"length 66", msg, append(append([]byte(nil), sig...), 0), addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
		{"length 8192", msg, bytesOf(1, 8192), addr, []error{wallet.ErrInvalidSignature, wallet.ErrNotKeySignature}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wallet.VerifyEOA(tt.msg, tt.sig, tt.want)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("VerifyEOA: %v", err)
				}
				got, err := wallet.Recover(wallet.HashEIP191(tt.msg), tt.sig)
				if err != nil || got != tt.want {
					t.Fatalf("Recover = %s, %v; want %s", got.Hex(), err, tt.want.Hex())
				}
				return
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("VerifyEOA = %v, want %v", err, want)
				}
			}
			if errors.Is(err, wallet.ErrSignatureMismatch) == errors.Is(err, wallet.ErrInvalidSignature) {
				t.Fatalf("VerifyEOA = %v: want exactly one of mismatch / invalid", err)
			}
		})
	}
}

func bytesOf(b byte, n int) []byte { return []byte(strings.Repeat(string([]byte{b}), n)) }

func TestParseSignature(t *testing.T) {
	key, _ := mustKey(t)
	sig := mustSign(t, key, []byte("hi"))
	hexSig := hex.EncodeToString(sig)
	tests := []struct {
		name string
		in   string
		want []byte // nil means ErrInvalidSignature
	}{
		{"0x prefix", "0x" + hexSig, sig},
		{"no prefix", hexSig, sig},
		{"0X prefix", "0X" + hexSig, sig},
		{"upper-case hex", "0x" + strings.ToUpper(hexSig), sig},
		{"one byte", "0x00", []byte{0}},
		{"2 bytes", "0x1234", []byte{0x12, 0x34}},
		{"8 KiB", "0x" + strings.Repeat("ab", 8192), bytesOf(0xab, 8192)},
		{"empty", "", nil},
		{"only 0x", "0x", nil},
		{"odd hex", "0x" + hexSig[1:], nil},
		{"odd hex, 1 digit", "0x1", nil},
		{"non-hex", "0x" + hexSig[:128] + "zz", nil},
		{"space", "0x " + hexSig, nil},
		{"trailing newline", "0x" + hexSig + "\n", nil},
		{"double prefix", "0x0x" + hexSig, nil},
		{"over 8 KiB", "0x" + strings.Repeat("ab", 8193), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wallet.ParseSignature(tt.in)
			if tt.want == nil {
				if !errors.Is(err, wallet.ErrInvalidSignature) {
					t.Fatalf("ParseSignature = %x, %v; want ErrInvalidSignature", got, err)
				}
				return
			}
			if err != nil || string(got) != string(tt.want) {
				t.Fatalf("ParseSignature = %x, %v; want %x", got, err, tt.want)
			}
		})
	}
}

// TestNoPanicOnShortSignature: siwe-go v0.2.1's VerifyEIP191 panics on "0x1234".
func TestNoPanicOnShortSignature(t *testing.T) {
	_, addr := mustKey(t)
	sig, err := wallet.ParseSignature("0x1234")
	if err != nil {
		t.Fatal(err)
	}
	if err := wallet.VerifyEOA([]byte(fullMessage), sig, addr); !errors.Is(err, wallet.ErrInvalidSignature) {
		t.Fatalf("VerifyEOA = %v, want ErrInvalidSignature", err)
	}
}
