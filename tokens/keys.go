// Package tokens issues and checks the service's access tokens: ES256 JWTs
// (RFC 7519) any backend verifies offline against the published keys. It
// owns the signing keys (the signing_keys table: generated on first start,
// sealed under the server key, shared by every instance, rotated by the
// operator), the JWKS and OIDC discovery endpoints, and minting and parsing
// tokens with golang-jwt.
package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/storage"
)

// Sealer seals private keys under the server key (partners.Keyring does,
// from WALLETAUTH_SECRET_KEY), so the database alone never holds a usable
// signing key.
type Sealer interface {
	Seal(additionalData, secret []byte) ([]byte, error)
	Open(additionalData, sealed []byte) ([]byte, error)
}

// Errors of the key store.
var (
	ErrNoCurrentKey     = errors.New("tokens: no current signing key (the keys were not loaded)")
	ErrRotationConflict = errors.New("tokens: another rotation committed at the same time; run it again if a newer key is still wanted")
)

// row is a row of signing_keys.
type row struct {
	KID        string `gorm:"primaryKey;column:kid"`
	PrivateKey []byte // sealed PKCS #8
	PublicKey  []byte // PKIX
	IsCurrent  bool
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// oneCurrentKey is the unique index that lets one key be current: a
// violation means another instance created or rotated one first.
var oneCurrentKey = storage.Unique{Name: "signing_keys_one_current_key", Columns: "signing_keys.is_current"}

func (row) TableName() string { return "signing_keys" }

// KeyInfo is what an operator sees of a key: never its private part.
type KeyInfo struct {
	KID       string     `json:"kid"`
	CreatedAt time.Time  `json:"created"`
	Current   bool       `json:"current"`
	RetiredAt *time.Time `json:"retired"`
	// PublishedUntil is when a retired key leaves the JWKS (and is pruned):
	// its retirement plus the longest access-token lifetime.
	PublishedUntil *time.Time `json:"published_until,omitempty"`
}

// key is a loaded signing key.
type key struct {
	kid       string
	priv      *ecdsa.PrivateKey // nil for a key only published
	pub       *ecdsa.PublicKey
	createdAt time.Time
	retiredAt *time.Time
	current   bool
}

// keySet is an immutable snapshot of the keys, swapped atomically.
type keySet struct {
	current *key
	byKID   map[string]*key // every key still published
	jwks    []byte          // the JSON of /.well-known/jwks.json
}

// Keys is the store of signing keys with an in-memory snapshot: signing
// and verifying read only memory. The snapshot follows the database: at
// once on a KindSigningKeys event of the invalidation bus (a rotation on
// any instance or the CLI), and by polling (every PollShared with a
// healthy shared bus, else every PollLocal), so a rotation signs on every
// instance within a second even where no event can reach it.
type Keys struct {
	db      *storage.DB
	sealer  Sealer
	bus     *cache.Bus // nil: polling only
	now     func() time.Time
	publish time.Duration // how long a retired key stays published
	log     *slog.Logger

	set           atomic.Pointer[keySet]
	sem           chan struct{} // one reload at a time (a lock that gives up with ctx)
	reloadStarted time.Time     // held by the holder of sem
	changed       chan struct{}
}

// Polling periods of Run.
const (
	PollLocal  = 500 * time.Millisecond
	PollShared = 30 * time.Second
	pruneEvery = time.Minute
)

// PublishMargin is added to the longest token lifetime before a retired
// key leaves the JWKS: it covers instances that kept signing with it for up
// to a second after the rotation, and clock skew.
const PublishMargin = time.Minute

// NewKeys returns the key store. maxTokenTTL is the longest lifetime of an
// access token (WALLETAUTH_ACCESS_TOKEN_TTL): a retired key stays
// published that long (plus PublishMargin) after its rotation. bus may be
// nil (no other instance to hear from but by polling); log may be nil.
// Load must be called before use.
func NewKeys(db *storage.DB, sealer Sealer, bus *cache.Bus, maxTokenTTL time.Duration, now func() time.Time, log *slog.Logger) *Keys {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keys{db: db, sealer: sealer, bus: bus, now: now, publish: maxTokenTTL + PublishMargin, log: log, changed: make(chan struct{}, 1), sem: make(chan struct{}, 1)}
	if bus != nil {
		bus.OnEvent(func(e cache.Event) {
			if e.Kind == cache.KindSigningKeys {
				k.poke()
			}
		}, k.poke)
	}
	return k
}

// poke asks Run to reload (never blocks: the bus delivers synchronously).
func (k *Keys) poke() {
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

func aad(kid string) []byte { return []byte("walletauth access-token signing key v1\x00" + kid) }

// Load reads the keys, first creating one when there is none (the first
// start); concurrent first starts of several instances agree on one key.
func (k *Keys) Load(ctx context.Context) error {
	for range 3 {
		if err := k.Reload(ctx); err != nil {
			return err
		}
		if k.set.Load().current != nil {
			return nil
		}
		r, err := newRow(k.sealer, storage.Now(k.now()))
		if err != nil {
			return err
		}
		err = k.db.WithContext(ctx).Create(&r).Error
		if err != nil && !oneCurrentKey.Violates(err) {
			return fmt.Errorf("tokens: create the first signing key: %w", err)
		}
		if err == nil {
			k.log.Info("access-token signing key created", "kid", r.KID)
		}
	}
	if err := k.Reload(ctx); err != nil {
		return err
	}
	if k.set.Load().current == nil {
		return ErrNoCurrentKey
	}
	return nil
}

// newRow generates a P-256 key as the current one.
func newRow(sealer Sealer, now time.Time) (row, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return row{}, fmt.Errorf("tokens: generate key: %w", err)
	}
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return row{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return row{}, fmt.Errorf("tokens: encode key: %w", err)
	}
	sealed, err := sealer.Seal(aad(kid), der)
	if err != nil {
		return row{}, fmt.Errorf("tokens: seal key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return row{}, fmt.Errorf("tokens: encode public key: %w", err)
	}
	return row{KID: kid, PrivateKey: sealed, PublicKey: pub, IsCurrent: true, CreatedAt: now}, nil
}

// thumbprint is the key's RFC 7638 JWK thumbprint (SHA-256, base64url): its
// kid, the same on every instance and derivable by anyone from the JWKS.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("tokens: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Reload replaces the snapshot with the database's keys, opening only the
// private keys not already loaded. Keys whose publication ended are left
// out (Prune deletes them).
func (k *Keys) Reload(ctx context.Context) error {
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	return k.reloadLocked(ctx)
}

// lock waits for the reload lock until ctx ends.
func (k *Keys) lock(ctx context.Context) error {
	select {
	case k.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tokens: waiting for a reload of the signing keys: %w", ctx.Err())
	}
}

func (k *Keys) unlock() { <-k.sem }

// Fresh is Reload for a request that must see every rotation committed
// before it arrived (the JWKS): concurrent callers share one reload that
// started after they arrived.
func (k *Keys) Fresh(ctx context.Context) error {
	arrived := time.Now()
	if err := k.lock(ctx); err != nil {
		return err
	}
	defer k.unlock()
	if k.reloadStarted.After(arrived) {
		return nil
	}
	return k.reloadLocked(ctx)
}

func (k *Keys) reloadLocked(ctx context.Context) error {
	k.reloadStarted = time.Now()
	var rows []row
	if err := k.db.WithContext(ctx).Order("created_at DESC, kid").Find(&rows).Error; err != nil {
		return fmt.Errorf("tokens: load signing keys: %w", err)
	}
	old := k.set.Load()
	now := k.now()
	next := &keySet{byKID: make(map[string]*key, len(rows))}
	for _, r := range rows {
		if !r.IsCurrent && r.RetiredAt != nil && !now.Before(r.RetiredAt.Add(k.publish)) {
			continue
		}
		if old != nil {
			if o, ok := old.byKID[r.KID]; ok && o.current == r.IsCurrent && (o.priv != nil || !r.IsCurrent) {
				c := *o
				c.retiredAt = r.RetiredAt
				next.add(&c)
				continue
			}
		}
		kk, err := k.open(r)
		if err != nil {
			if r.IsCurrent {
				return err
			}
			// A retired key that cannot be opened still verifies: only
			// its public part is needed.
			k.log.Warn("retired signing key not opened; kept for verifying", "kid", r.KID, "error", err)
		}
		next.add(kk)
	}
	jwks, err := next.encodeJWKS()
	if err != nil {
		return err
	}
	next.jwks = jwks
	if old != nil && (old.current == nil) != (next.current == nil) || old != nil && old.current != nil && next.current != nil && old.current.kid != next.current.kid {
		k.log.Info("access tokens now signed with a new key", "kid", next.kidOrEmpty())
	}
	k.set.Store(next)
	return nil
}

func (s *keySet) kidOrEmpty() string {
	if s.current == nil {
		return ""
	}
	return s.current.kid
}

func (s *keySet) add(kk *key) {
	s.byKID[kk.kid] = kk
	if kk.current {
		s.current = kk
	}
}

// open reads a row's keys. The private key is opened for the current key
// only: a retired key never signs again.
func (k *Keys) open(r row) (*key, error) {
	pubAny, err := x509.ParsePKIXPublicKey(r.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("tokens: signing key %s: public key: %w", r.KID, err)
	}
	pub, ok := pubAny.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("tokens: signing key %s is not a P-256 key", r.KID)
	}
	kk := &key{kid: r.KID, pub: pub, createdAt: r.CreatedAt, retiredAt: r.RetiredAt, current: r.IsCurrent}
	if !r.IsCurrent {
		return kk, nil
	}
	der, err := k.sealer.Open(aad(r.KID), r.PrivateKey)
	if err != nil {
		return kk, fmt.Errorf("tokens: open signing key %s (is WALLETAUTH_SECRET_KEY the one it was sealed under?): %w", r.KID, err)
	}
	privAny, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return kk, fmt.Errorf("tokens: signing key %s: %w", r.KID, err)
	}
	priv, ok := privAny.(*ecdsa.PrivateKey)
	if !ok || !priv.PublicKey.Equal(pub) {
		return kk, fmt.Errorf("tokens: signing key %s: private and public parts differ", r.KID)
	}
	kk.priv = priv
	return kk, nil
}

// jwkJSON is one key of the JWKS, made by go-jose.
func (s *keySet) encodeJWKS() ([]byte, error) {
	keys := make([]*key, 0, len(s.byKID))
	for _, kk := range s.byKID {
		keys = append(keys, kk)
	}
	// The current key first, then the newest.
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].current != keys[j].current {
			return keys[i].current
		}
		return keys[i].createdAt.After(keys[j].createdAt)
	})
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, kk := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: kk.pub, KeyID: kk.kid, Algorithm: "ES256", Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("tokens: encode JWKS: %w", err)
	}
	return b, nil
}

// JWKS is the JSON of the published keys (the current one first).
func (k *Keys) JWKS() []byte {
	if s := k.set.Load(); s != nil {
		return s.jwks
	}
	return []byte(`{"keys":[]}`)
}

// signer is the current key: ErrNoCurrentKey before Load.
func (k *Keys) signer() (*key, error) {
	s := k.set.Load()
	if s == nil || s.current == nil || s.current.priv == nil {
		return nil, ErrNoCurrentKey
	}
	return s.current, nil
}

// verifier is the published key kid.
func (k *Keys) verifier(kid string) (*ecdsa.PublicKey, bool) {
	s := k.set.Load()
	if s == nil {
		return nil, false
	}
	kk, ok := s.byKID[kid]
	if !ok {
		return nil, false
	}
	if kk.retiredAt != nil && !k.now().Before(kk.retiredAt.Add(k.publish)) {
		return nil, false
	}
	return kk.pub, true
}

// published reports whether key kid is still published (a token it
// signed may be accepted).
func (k *Keys) published(kid string) bool {
	_, ok := k.verifier(kid)
	return ok
}

// Rotate makes a new key current and retires the current one, in one
// transaction; the new key is in this instance's JWKS when Rotate returns
// and, through the bus and polling, signs on every instance within a
// second. ErrRotationConflict when a concurrent rotation won.
func (k *Keys) Rotate(ctx context.Context) (KeyInfo, error) {
	now := storage.Now(k.now())
	r, err := newRow(k.sealer, now)
	if err != nil {
		return KeyInfo{}, err
	}
	err = k.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&row{}).Where("is_current").Updates(map[string]any{"is_current": false, "retired_at": now}).Error; err != nil {
			return fmt.Errorf("retire the current key: %w", err)
		}
		if err := tx.Create(&r).Error; err != nil {
			return err
		}
		return nil
	})
	if oneCurrentKey.Violates(err) {
		return KeyInfo{}, ErrRotationConflict
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("tokens: rotate: %w", err)
	}
	k.log.Info("access-token signing key rotated", "kid", r.KID)
	if err := k.Reload(ctx); err != nil {
		return KeyInfo{}, err
	}
	if k.bus != nil {
		// Not an error of the rotation when it fails: every instance polls.
		_ = k.bus.Publish(ctx, cache.Event{Kind: cache.KindSigningKeys, Key: r.KID})
	}
	return KeyInfo{KID: r.KID, CreatedAt: r.CreatedAt, Current: true}, nil
}

// List returns every stored key, newest first (never private parts).
func (k *Keys) List(ctx context.Context) ([]KeyInfo, error) {
	var rows []row
	if err := k.db.WithContext(ctx).Select("kid", "is_current", "created_at", "retired_at").
		Order("created_at DESC, kid").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("tokens: list signing keys: %w", err)
	}
	out := make([]KeyInfo, len(rows))
	for i, r := range rows {
		out[i] = KeyInfo{KID: r.KID, CreatedAt: r.CreatedAt.UTC(), Current: r.IsCurrent}
		if r.RetiredAt != nil {
			ret := r.RetiredAt.UTC()
			until := ret.Add(k.publish)
			out[i].RetiredAt, out[i].PublishedUntil = &ret, &until
		}
	}
	return out, nil
}

// Prune deletes the retired keys whose publication has ended: no token
// they signed is still valid.
func (k *Keys) Prune(ctx context.Context) (int64, error) {
	cutoff := storage.Now(k.now().Add(-k.publish))
	res := k.db.WithContext(ctx).Where("NOT is_current AND retired_at IS NOT NULL AND retired_at <= ?", cutoff).Delete(&row{})
	if res.Error != nil {
		return 0, fmt.Errorf("tokens: prune signing keys: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// Run keeps the snapshot in step with the database until ctx ends: it
// reloads on every bus event and poll, and prunes expired keys every
// minute. Failures are logged; the last snapshot keeps serving.
func (k *Keys) Run(ctx context.Context) {
	t := time.NewTimer(k.pollEvery())
	defer t.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.changed:
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if time.Since(lastPrune) >= pruneEvery {
			lastPrune = time.Now()
			if n, err := k.Prune(rctx); err != nil {
				k.log.Warn("pruning signing keys", "error", err)
			} else if n > 0 {
				k.log.Info("retired signing keys pruned", "count", n)
			}
		}
		if err := k.Reload(rctx); err != nil && ctx.Err() == nil {
			k.log.Warn("reloading signing keys", "error", err)
		}
		cancel()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(k.pollEvery())
	}
}

// pollEvery is PollShared while a healthy shared bus brings rotations at
// once, else PollLocal.
func (k *Keys) pollEvery() time.Duration {
	if k.bus != nil && k.bus.Shared() && k.bus.Healthy() {
		return PollShared
	}
	return PollLocal
}
