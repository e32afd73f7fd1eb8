package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/walletauth/walletauth/config"
	"github.com/walletauth/walletauth/partners"
)

// loadKeyring returns the server keys that seal partners' HS256 signing
// keys: WALLETAUTH_SECRET_KEY when set, else the key file, created with a
// fresh random key on first use. So the database alone never holds a
// usable partner secret, even with no configuration at all.
func loadKeyring(cfg config.Config) (*partners.Keyring, error) {
	if cfg.SecretKey != "" {
		kr, err := partners.ParseKeyring(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("%sSECRET_KEY: %w", config.Prefix, err)
		}
		return kr, nil
	}
	b, err := os.ReadFile(cfg.SecretKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		var k [partners.MasterKeySize]byte
		if _, err := rand.Read(k[:]); err != nil {
			return nil, fmt.Errorf("server key entropy: %w", err)
		}
		enc := base64.StdEncoding.EncodeToString(k[:])
		f, err := os.OpenFile(cfg.SecretKeyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process made it first
			return loadKeyring(cfg)
		}
		if err != nil {
			return nil, fmt.Errorf("%sSECRET_KEY_FILE: create %s: %w", config.Prefix, cfg.SecretKeyFile, err)
		}
		if _, err := f.WriteString(enc + "\n"); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("%sSECRET_KEY_FILE: write: %w", config.Prefix, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("%sSECRET_KEY_FILE: write: %w", config.Prefix, err)
		}
		b = []byte(enc)
	} else if err != nil {
		return nil, fmt.Errorf("%sSECRET_KEY_FILE: %w", config.Prefix, err)
	}
	kr, err := partners.ParseKeyring(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%sSECRET_KEY_FILE %s: %w", config.Prefix, cfg.SecretKeyFile, err)
	}
	if !kr.Sealed() {
		return nil, fmt.Errorf("%sSECRET_KEY_FILE %s holds no key", config.Prefix, cfg.SecretKeyFile)
	}
	return kr, nil
}
