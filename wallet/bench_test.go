package wallet_test

import (
	"testing"

	"github.com/walletauth/walletauth/wallet"
)

func BenchmarkParseMessage(b *testing.B) {
	b.SetBytes(int64(len(fullMessage)))
	for b.Loop() {
		if _, err := wallet.ParseMessage(fullMessage); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessageString(b *testing.B) {
	m, err := wallet.ParseMessage(fullMessage)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = m.String()
	}
}

// BenchmarkRecover is hashing and recovery of a 65-byte signature.
func BenchmarkRecover(b *testing.B) {
	key, addr := mustKey(b)
	msg := []byte(fullMessage)
	sig := mustSign(b, key, msg)
	for b.Loop() {
		got, err := wallet.Recover(wallet.HashEIP191(msg), sig)
		if err != nil || got != addr {
			b.Fatal(got, err)
		}
	}
}

func BenchmarkVerifyEOA(b *testing.B) {
	key, addr := mustKey(b)
	msg := []byte(fullMessage)
	sig := mustSign(b, key, msg)
	for b.Loop() {
		if err := wallet.VerifyEOA(msg, sig, addr); err != nil {
			b.Fatal(err)
		}
	}
}
