// Package passwords decides whether a password is acceptable for email
// signup and hashes and verifies passwords with argon2id.
//
// The acceptance rule is the one of POST /v1/auth/email/signup in the API
// contract: a password is weak when it has fewer than MinLength or more than
// MaxLength Unicode characters, or when it is (case-insensitively) one of the
// commonly used passwords shipped in common.txt.gz. Every character counts:
// nothing is truncated before checking or hashing.
package passwords

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Length limits, in Unicode characters (runes), inclusive.
const (
	MinLength = 8
	MaxLength = 256
)

// ErrWeak is wrapped by every error Check returns: callers map
// errors.Is(err, ErrWeak) to the API's weak_password.
var ErrWeak = errors.New("weak password")

// The reasons a password is weak; each wraps ErrWeak.
var (
	ErrTooShort = fmt.Errorf("%w: fewer than %d characters", ErrWeak, MinLength)
	ErrTooLong  = fmt.Errorf("%w: more than %d characters", ErrWeak, MaxLength)
	ErrCommon   = fmt.Errorf("%w: a commonly used password", ErrWeak)
)

// commonGz is the list of commonly used passwords, most frequent first,
// lowercase, one per line, gzip-compressed. See README.md and gen.sh.
//
//go:embed common.txt.gz
var commonGz []byte

// Policy holds the decompressed common-password set. Build it once with
// NewPolicy and share it: it is read-only and safe for concurrent use.
type Policy struct {
	common map[string]struct{}
}

// NewPolicy decompresses the embedded common-password list into a set.
func NewPolicy() (*Policy, error) {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		return nil, fmt.Errorf("passwords: open common list: %w", err)
	}
	defer zr.Close()
	common := make(map[string]struct{}, 32768)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := sc.Text(); w != "" {
			common[strings.ToLower(w)] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("passwords: read common list: %w", err)
	}
	if len(common) == 0 {
		return nil, errors.New("passwords: common list is empty")
	}
	return &Policy{common: common}, nil
}

// Size reports how many distinct common passwords the policy refuses.
func (p *Policy) Size() int { return len(p.common) }

// Check returns nil when pw is acceptable, else ErrTooShort, ErrTooLong or
// ErrCommon (all of which wrap ErrWeak). Length is counted in runes; an
// invalid UTF-8 byte counts as one character.
func (p *Policy) Check(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinLength:
		return ErrTooShort
	case n > MaxLength:
		return ErrTooLong
	}
	if _, ok := p.common[strings.ToLower(pw)]; ok {
		return ErrCommon
	}
	return nil
}

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8  // parallelism
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams is OWASP's argon2id recommendation (m=19456 KiB, t=2, p=1)
// with a 16-byte salt and a 32-byte hash. The server uses these.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// TestParams are deliberately cheap parameters for tests only; never use
// them to store real passwords.
func TestParams() Params {
	return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// ErrMalformedHash is wrapped by the error Verify returns for an encoded
// hash it cannot parse or does not support.
var ErrMalformedHash = errors.New("passwords: malformed argon2id hash")

// Bounds accepted when parsing an encoded hash, so that a corrupted or
// hostile value cannot make Verify allocate or spin without limit.
const (
	maxMemory  = 1 << 21 // KiB (2 GiB)
	maxTime    = 64
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128
)

var b64 = base64.RawStdEncoding

// Hash hashes pw with argon2id and a fresh random salt and returns it in
// PHC string format: $argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>, with salt and
// hash in unpadded standard base64.
func Hash(pw string, params Params) (string, error) {
	if err := params.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passwords: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, params.Memory, params.Time, params.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func (p Params) validate() error {
	switch {
	case p.Memory < 8 || p.Memory > maxMemory:
		return fmt.Errorf("passwords: argon2id memory %d KiB out of range", p.Memory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("passwords: argon2id time %d out of range", p.Time)
	case p.Threads < 1:
		return errors.New("passwords: argon2id threads must be at least 1")
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("passwords: salt length %d out of range", p.SaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("passwords: key length %d out of range", p.KeyLen)
	}
	return nil
}

// Verify reports whether pw matches the encoded argon2id hash, comparing in
// constant time. It returns an error wrapping ErrMalformedHash, and false,
// when encoded cannot be parsed.
func Verify(pw, encoded string) (bool, error) {
	params, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, params.Time, params.Memory, params.Threads, params.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than
// params (or cannot be parsed), so that a successful login can store a new
// hash made with the current parameters.
func NeedsRehash(encoded string, params Params) bool {
	got, _, _, err := decode(encoded)
	return err != nil || got != params
}

// DummyVerify spends about the time Verify spends on a hash made with
// DefaultParams, and always fails. Login calls it for an unknown email so
// that an unknown email and a wrong password take about the same time.
func DummyVerify(pw string) {
	DummyVerifyWith(pw, DefaultParams())
}

// dummySalt is a fixed salt for DummyVerifyWith: the result is discarded, so
// it needs no randomness.
var dummySalt = [maxSaltLen]byte{}

// DummyVerifyWith is DummyVerify for hashes made with params.
func DummyVerifyWith(pw string, params Params) {
	if params.validate() != nil {
		params = DefaultParams()
	}
	got := argon2.IDKey([]byte(pw), dummySalt[:params.SaltLen], params.Time, params.Memory, params.Threads, params.KeyLen)
	want := make([]byte, len(got))
	_ = subtle.ConstantTimeCompare(got, want)
}

func decode(encoded string) (Params, []byte, []byte, error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=…$m=…,t=…,p=…$salt$hash")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return bad("missing version")
	}
	if n, err := strconv.ParseUint(v, 10, 32); err != nil || n != argon2.Version {
		return bad("unsupported version")
	}
	var p Params
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("want m=…,t=…,p=…")
	}
	for i, name := range []string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return bad("want m=…,t=…,p=…")
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(val, 10, bits)
		if err != nil || (len(val) > 1 && val[0] == '0') {
			return bad("bad parameter " + name)
		}
		switch name { // n fits: ParseUint was given the field's bit size
		case "m":
			p.Memory = uint32(n) //nolint:gosec // G115: n < 2^32
		case "t":
			p.Time = uint32(n) //nolint:gosec // G115: n < 2^32
		case "p":
			p.Threads = uint8(n) //nolint:gosec // G115: n < 2^8
		}
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil {
		return bad("salt is not base64")
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil {
		return bad("hash is not base64")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key)) //nolint:gosec // G115: lengths of a stored hash's fields, far below 2^32
	if err := p.validate(); err != nil {
		return bad(strings.TrimPrefix(err.Error(), "passwords: "))
	}
	return p, salt, key, nil
}
