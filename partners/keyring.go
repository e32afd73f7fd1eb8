package partners

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MasterKeySize is the size of a server key: AES-256.
const MasterKeySize = 32

// Formats of a stored signing key (partners.signing_key).
const (
	// sealPlain: 0x00 || secret. Written only when no server key is
	// configured; Reseal turns it into sealAESGCM once one is.
	sealPlain byte = 0
	// sealAESGCM: 0x01 || key id (8) || nonce (12) || AES-256-GCM(secret),
	// with the partner ID as additional data so a sealed key cannot be
	// moved to another partner's row.
	sealAESGCM byte = 1
)

const kidSize = 8

var (
	errNoSigningKey  = errors.New("partners: this partner has no signing key (created before signed requests were supported: rotate its secret)")
	errUnknownKey    = errors.New("partners: the signing key is sealed under a server key that is not configured (WALLETAUTH_SECRET_KEY)")
	errCorruptSealed = errors.New("partners: the sealed signing key is corrupt or was sealed for another partner")
)

// Keyring seals the partners' HS256 keys (their secrets) under the server's
// keys, so the database alone never holds a usable partner credential: the
// secret hash answers Bearer-secret requests, the sealed copy is opened only
// to verify a request JWT. The first key seals; every key opens, so keys can
// be rotated (configure new,old; run Reseal; drop old).
//
// A Keyring with no keys stores the secret unsealed (format sealPlain): the
// zero-configuration mode keeps HS256 working, at the price of a database
// leak revealing the partners' signing keys. Sealed reports which it is.
type Keyring struct {
	keys []masterKey
}

type masterKey struct {
	id   [kidSize]byte
	aead cipher.AEAD
}

// NewKeyring returns a keyring over the given 32-byte keys, the first being
// the one that seals. No keys is allowed (see Keyring).
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	kr := &Keyring{}
	for i, k := range keys {
		if len(k) != MasterKeySize {
			return nil, fmt.Errorf("server key %d is %d bytes, want %d", i+1, len(k), MasterKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("server key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("server key %d: %w", i+1, err)
		}
		mk := masterKey{aead: aead}
		sum := sha256.Sum256(append([]byte("walletauth partner key id\x00"), k...))
		copy(mk.id[:], sum[:kidSize])
		kr.keys = append(kr.keys, mk)
	}
	return kr, nil
}

// ParseKeyring reads WALLETAUTH_SECRET_KEY: comma-separated keys, each 32
// bytes written as base64 (standard or URL alphabet, padded or not) or as
// 64 hex digits. The first seals; the others only open. Empty gives an
// unsealed keyring.
func ParseKeyring(s string) (*Keyring, error) {
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := decodeKey(part)
		if err != nil {
			return nil, fmt.Errorf("server key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return NewKeyring(keys...)
}

func decodeKey(s string) ([]byte, error) {
	if len(s) == 2*MasterKeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	t := strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(t); err == nil {
			if len(k) != MasterKeySize {
				return nil, fmt.Errorf("decodes to %d bytes, want %d (make one with: openssl rand -base64 32)", len(k), MasterKeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("want 32 bytes as base64 or hex (make one with: openssl rand -base64 32)")
}

// Sealed reports whether the keyring encrypts signing keys (a server key is
// configured).
func (kr *Keyring) Sealed() bool { return kr != nil && len(kr.keys) > 0 }

func aad(partnerID string) []byte {
	return []byte("walletauth partner signing key v1\x00" + partnerID)
}

// seal returns the stored form of partner partnerID's secret.
func (kr *Keyring) seal(partnerID, secret string) ([]byte, error) {
	return kr.sealAAD(aad(partnerID), []byte(secret))
}

// Seal returns the stored form of secret for another owner than a partner
// (the access-token signing keys): the same formats, bound to
// additionalData, which Open must be given again. Unsealed when the
// keyring has no key (see Keyring).
func (kr *Keyring) Seal(additionalData, secret []byte) ([]byte, error) {
	return kr.sealAAD(additionalData, secret)
}

// Open returns the secret of a value made by Seal with the same
// additionalData. Errors: the value was sealed under a server key not
// configured, or is corrupt or bound to other additional data.
func (kr *Keyring) Open(additionalData, sealed []byte) ([]byte, error) {
	return kr.openAAD(additionalData, sealed)
}

// SealFor seals another secret of a partner's (a webhook signing secret)
// the way signing keys are sealed, bound to purpose and id (the row it is
// stored in) so it cannot be moved to another row or opened as another kind
// of secret. Unsealed (format sealPlain) when no server key is configured.
func (kr *Keyring) SealFor(purpose, id, secret string) ([]byte, error) {
	return kr.sealAAD(aadFor(purpose, id), []byte(secret))
}

// OpenFor opens what SealFor sealed with the same purpose and id.
func (kr *Keyring) OpenFor(purpose, id string, sealed []byte) ([]byte, error) {
	return kr.openAAD(aadFor(purpose, id), sealed)
}

func aadFor(purpose, id string) []byte {
	return []byte("walletauth sealed " + purpose + " v1\x00" + id)
}

func (kr *Keyring) sealAAD(additionalData, secret []byte) ([]byte, error) {
	if !kr.Sealed() {
		return append([]byte{sealPlain}, secret...), nil
	}
	k := kr.keys[0]
	out := make([]byte, 0, 1+kidSize+k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	out = append(out, sealAESGCM)
	out = append(out, k.id[:]...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("partners: seal: %w", err)
	}
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, secret, additionalData), nil
}

// open returns the secret (the HS256 key) of a stored signing key.
func (kr *Keyring) open(partnerID string, sealed []byte) ([]byte, error) {
	return kr.openAAD(aad(partnerID), sealed)
}

func (kr *Keyring) openAAD(additionalData, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, errNoSigningKey
	}
	switch sealed[0] {
	case sealPlain:
		return bytes.Clone(sealed[1:]), nil
	case sealAESGCM:
		if kr == nil || len(sealed) < 1+kidSize {
			return nil, errUnknownKey
		}
		kid := sealed[1 : 1+kidSize]
		for _, k := range kr.keys {
			if !bytes.Equal(k.id[:], kid) {
				continue
			}
			rest := sealed[1+kidSize:]
			if len(rest) < k.aead.NonceSize() {
				return nil, errCorruptSealed
			}
			secret, err := k.aead.Open(nil, rest[:k.aead.NonceSize()], rest[k.aead.NonceSize():], additionalData)
			if err != nil {
				return nil, errCorruptSealed
			}
			return secret, nil
		}
		return nil, errUnknownKey
	}
	return nil, errCorruptSealed
}

// current reports whether sealed is in the form this keyring writes now:
// sealed under its first key, or unsealed when it has none.
func (kr *Keyring) current(sealed []byte) bool {
	if !kr.Sealed() {
		return len(sealed) > 0 && sealed[0] == sealPlain
	}
	return len(sealed) > 1+kidSize && sealed[0] == sealAESGCM && bytes.Equal(sealed[1:1+kidSize], kr.keys[0].id[:])
}
