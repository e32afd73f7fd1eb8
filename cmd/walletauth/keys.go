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

// errSecretKeyRequired is the refusal to start on PostgreSQL without a
// shared server key.
var errSecretKeyRequired = errors.New(config.Prefix + "SECRET_KEY is required with PostgreSQL: every instance and every " +
	"`walletauth partner` run must seal partners' signing keys with the same key, so none is made up per working directory " +
	"(make one with `openssl rand -base64 32` and give it to all of them; or name an existing file in " + config.Prefix + "SECRET_KEY_FILE)")

// loadKeyring returns the server keys that seal partners' HS256 signing
// keys: WALLETAUTH_SECRET_KEY when set, else the key file. With SQLite the
// file is created with a fresh random key on first use, so the database
// alone never holds a usable partner secret, even with no configuration at
// all. With PostgreSQL, shared by instances and CLI runs anywhere, a key
// made up locally would differ between them (a partner created from another
// directory would fail every signed request): the key must be given.
func loadKeyring(cfg config.Config) (*partners.Keyring, error) {
	if cfg.SecretKey != "" {
		kr, err := partners.ParseKeyring(cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("%sSECRET_KEY: %w", config.Prefix, err)
		}
		return kr, nil
	}
	shared := config.IsPostgres(cfg.DatabaseURL)
	if shared && cfg.SecretKeyFile == "" {
		return nil, errSecretKeyRequired
	}
	b, err := os.ReadFile(cfg.SecretKeyFile)
	if shared && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%sSECRET_KEY_FILE %s does not exist; with PostgreSQL it is not created (every instance must use the same key): %w",
			config.Prefix, cfg.SecretKeyFile, errSecretKeyRequired)
	}
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
