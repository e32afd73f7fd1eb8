// Package emailcode issues and checks the six-digit codes mailed to prove a
// mailbox: sign-in codes, password reset codes and email verification codes.
//
// A code lives in the shared key-value store (kv.Store: Redis when
// configured), so every instance sees it. It is stored only as a salted
// SHA-256 hash, bound to its purpose, its subject (whose code it is: an
// email key or a user ID) and the address it was mailed to. It is valid for
// the TTL, works once, dies after MaxTries wrong tries (then even the right
// code is refused), and a newer code of the same purpose and subject
// replaces it.
//
// Consumption is atomic across instances: the record is deleted with
// CompareAndDelete against the exact value read, so of two requests carrying
// the right code only one gets it; tries are counted with Incr before the
// comparison, so concurrent guesses cannot exceed MaxTries either.
package emailcode

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/kv"
)

// Purpose says what a code is for; a code of one purpose never serves another.
type Purpose string

// The purposes.
const (
	Login  Purpose = "login"  // passwordless sign-in (subject: the email key)
	Reset  Purpose = "reset"  // password reset (subject: the email key)
	Verify Purpose = "verify" // verify or change an account's email (subject: the user ID)
)

// MaxTries is how many wrong codes kill a code.
const MaxTries = 5

// ErrCodeInvalid is the answer to a wrong, used, replaced, expired or
// killed code alike.
var ErrCodeInvalid = errs.New("code_invalid", "the code is wrong, used or expired; ask for a new one")

// Store is what codes need of the shared store (kv.Store satisfies it).
type Store interface {
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Get(ctx context.Context, key string) ([]byte, error)
	CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error)
	Incr(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error)
}

// Codes issues and consumes codes.
type Codes struct {
	store Store
	now   func() time.Time
	ttl   time.Duration
}

// New returns codes kept in store, valid for ttl (10 minutes when 0).
func New(store Store, now func() time.Time, ttl time.Duration) *Codes {
	if now == nil {
		now = time.Now
	}
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	return &Codes{store: store, now: now, ttl: ttl}
}

// TTL is how long a code is valid.
func (c *Codes) TTL() time.Duration { return c.ttl }

// record is the stored form of a code.
type record struct {
	Gen     string    `json:"g"` // random: names this code's try counter
	Salt    []byte    `json:"s"`
	Hash    []byte    `json:"h"`
	Email   string    `json:"e"` // the address the code was mailed to
	Expires time.Time `json:"x"`
}

func key(p Purpose, subject string) string { return "ecode:" + string(p) + ":" + subject }

func digest(salt []byte, p Purpose, subject, email, code string) []byte {
	h := sha256.New()
	h.Write(salt)
	for _, s := range []string{string(p), subject, email, code} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s))) //nolint:gosec // a length is never negative
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return h.Sum(nil)
}

// NewCode returns six decimal digits from the OS CSPRNG, uniformly.
func NewCode() (string, error) {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("emailcode: entropy: %w", err)
		}
		// Rejection sampling: 4294000000 is the largest multiple of 1e6
		// below 2^32, so every code is equally likely.
		if v := binary.BigEndian.Uint32(b[:]); v < 4294000000 {
			return fmt.Sprintf("%06d", v%1_000_000), nil
		}
	}
}

// Issue makes a new code of purpose p for subject, mailed to email,
// replacing any earlier one of that purpose and subject. It returns the
// code (to be mailed, never logged) and when it expires. Errors wrap
// kv.ErrUnavailable when the store does not answer.
func (c *Codes) Issue(ctx context.Context, p Purpose, subject, email string) (string, time.Time, error) {
	code, err := NewCode()
	if err != nil {
		return "", time.Time{}, err
	}
	var salt, gen [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("emailcode: entropy: %w", err)
	}
	if _, err := rand.Read(gen[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("emailcode: entropy: %w", err)
	}
	exp := c.now().Add(c.ttl).UTC().Truncate(time.Second)
	r := record{Gen: fmt.Sprintf("%x", gen), Salt: salt[:], Hash: digest(salt[:], p, subject, email, code), Email: email, Expires: exp}
	b, err := json.Marshal(r)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("emailcode: encode: %w", err)
	}
	if err := c.store.Set(ctx, key(p, subject), b, c.ttl); err != nil {
		return "", time.Time{}, fmt.Errorf("emailcode: issue: %w", err)
	}
	return code, exp, nil
}

// Consume checks code against the live code of purpose p and subject and,
// when it matches, uses it up; it returns the address the code was mailed
// to. ErrCodeInvalid for a wrong, used, replaced, expired or killed code;
// errors wrapping kv.ErrUnavailable when the store does not answer.
func (c *Codes) Consume(ctx context.Context, p Purpose, subject, code string) (string, error) {
	k := key(p, subject)
	raw, err := c.store.Get(ctx, k)
	if errors.Is(err, kv.ErrNotFound) {
		return "", ErrCodeInvalid
	}
	if err != nil {
		return "", fmt.Errorf("emailcode: consume: %w", err)
	}
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", fmt.Errorf("emailcode: decode: %w", err)
	}
	left := r.Expires.Sub(c.now())
	if left <= 0 {
		return "", ErrCodeInvalid
	}
	// Counted before comparing: the MaxTries+1-th try, right or wrong,
	// finds the code dead.
	tries, _, err := c.store.Incr(ctx, k+":tries:"+r.Gen, left+time.Second)
	if err != nil {
		return "", fmt.Errorf("emailcode: count try: %w", err)
	}
	// A dead code is left to expire rather than deleted: deleting it could
	// undo a right try that is still within the count, running concurrently.
	if tries > MaxTries {
		return "", ErrCodeInvalid
	}
	ok := len(code) == 6 && subtle.ConstantTimeCompare(digest(r.Salt, p, subject, r.Email, code), r.Hash) == 1
	if !ok {
		return "", ErrCodeInvalid
	}
	deleted, err := c.store.CompareAndDelete(ctx, k, raw)
	if err != nil {
		return "", fmt.Errorf("emailcode: consume: %w", err)
	}
	if !deleted { // used by a concurrent request, or replaced meanwhile
		return "", ErrCodeInvalid
	}
	return r.Email, nil // the try counter expires with the code
}
