package partners

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/storage"
)

// Registry keeps the partners: created, listed, rotated and disabled by
// operators through the CLI, read on every partner request.
type Registry struct {
	db   *storage.DB
	keys *Keyring
	now  func() time.Time
}

// NewRegistry returns the registry over db; keys seals the partners'
// signing keys (a Keyring with no keys stores them unsealed).
func NewRegistry(db *storage.DB, keys *Keyring, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	if keys == nil {
		keys = &Keyring{}
	}
	return &Registry{db: db, keys: keys, now: now}
}

// Keyring returns the registry's keyring.
func (r *Registry) Keyring() *Keyring { return r.keys }

// NewPartner is what creating a partner takes.
type NewPartner struct {
	Name           string
	Origins        []string // scheme://host[:port] of the pages allowed to call client-side login
	ClientLogin    bool
	SignedRequests bool // accept only HS256 request JWTs, never the plain secret
}

// Create registers a partner and returns it with its secret, which is
// shown this once: only its hash and its sealed copy are stored. Errors:
// ErrInvalidPartnerName, ErrInvalidOrigin.
func (r *Registry) Create(ctx context.Context, np NewPartner) (Partner, string, error) {
	name := strings.TrimSpace(np.Name)
	if name == "" || utf8.RuneCountInString(name) > 200 || !utf8.ValidString(name) || strings.ContainsAny(name, "\r\n") {
		return Partner{}, "", ErrInvalidPartnerName
	}
	origins := make([]string, 0, len(np.Origins))
	for _, o := range np.Origins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return Partner{}, "", ErrInvalidOrigin.WithMessage("%q: an origin is scheme://host[:port] with scheme http or https", o)
		}
		if !slices.Contains(origins, n) {
			origins = append(origins, n)
		}
	}
	now := storage.Now(r.now())
	p := Partner{
		ID:             newID(),
		Name:           name,
		Origins:        strings.Join(origins, "\n"),
		ClientLogin:    np.ClientLogin,
		SignedRequests: np.SignedRequests,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	secret, err := r.setSecret(&p)
	if err != nil {
		return Partner{}, "", err
	}
	if err := r.db.WithContext(ctx).Create(&p).Error; err != nil {
		return Partner{}, "", fmt.Errorf("partners: create: %w", err)
	}
	return p, secret, nil
}

// setSecret gives p a new secret: its hash and its sealed copy.
func (r *Registry) setSecret(p *Partner) (string, error) {
	secret := newSecret()
	sealed, err := r.keys.seal(p.ID, secret)
	if err != nil {
		return "", err
	}
	p.SecretHash = hashSecret(secret)
	p.SigningKey = sealed
	return secret, nil
}

// List returns every partner, oldest first.
func (r *Registry) List(ctx context.Context) ([]Partner, error) {
	var ps []Partner
	if err := r.db.WithContext(ctx).Order("created_at, id").Find(&ps).Error; err != nil {
		return nil, fmt.Errorf("partners: list: %w", err)
	}
	return ps, nil
}

// Get returns the partner id, enabled or not: ErrPartnerNotFound.
func (r *Registry) Get(ctx context.Context, id string) (Partner, error) {
	if !api.ValidText(id) {
		// No partner has such an ID, and PostgreSQL would refuse the query:
		// a request JWT's iss is read from a header, not by the api helpers.
		return Partner{}, ErrPartnerNotFound
	}
	var p Partner
	err := r.db.WithContext(ctx).Where("id = ?", id).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Partner{}, ErrPartnerNotFound
	}
	if err != nil {
		return Partner{}, fmt.Errorf("partners: get: %w", err)
	}
	return p, nil
}

// BySecret returns the partner whose current secret is secret, enabled or
// not: ErrPartnerUnauthorized when none (unknown or rotated).
func (r *Registry) BySecret(ctx context.Context, secret string) (Partner, error) {
	h := hashSecret(secret)
	var p Partner
	err := r.db.WithContext(ctx).Where("secret_hash = ?", h).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Partner{}, ErrPartnerUnauthorized
	}
	if err != nil {
		return Partner{}, fmt.Errorf("partners: find by secret: %w", err)
	}
	// The lookup is by hash; comparing again in constant time keeps the
	// decision itself independent of how the database compared.
	if subtle.ConstantTimeCompare(p.SecretHash, h) != 1 {
		return Partner{}, ErrPartnerUnauthorized
	}
	return p, nil
}

// SigningKey returns the HS256 key of p's request JWTs: the UTF-8 bytes of
// its current secret, opened from the sealed copy.
func (r *Registry) SigningKey(p Partner) ([]byte, error) {
	return r.keys.open(p.ID, p.SigningKey)
}

// RotateSecret gives partner id a new secret and returns it; the old one
// (as a Bearer secret and as an HS256 key) stops working at once.
// ErrPartnerNotFound.
func (r *Registry) RotateSecret(ctx context.Context, id string) (string, error) {
	p := Partner{ID: id}
	secret, err := r.setSecret(&p)
	if err != nil {
		return "", err
	}
	res := r.db.WithContext(ctx).Model(&Partner{}).Where("id = ?", id).Updates(map[string]any{
		"secret_hash": p.SecretHash, "signing_key": p.SigningKey, "updated_at": storage.Now(r.now()),
	})
	if res.Error != nil {
		return "", fmt.Errorf("partners: rotate secret: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return "", ErrPartnerNotFound
	}
	return secret, nil
}

// Disable stops partner id: its requests get partner_unauthorized, its
// client-side login partner_not_found. Its users stay. ErrPartnerNotFound.
func (r *Registry) Disable(ctx context.Context, id string) error {
	return r.setDisabled(ctx, id, true)
}

// Enable undoes Disable: ErrPartnerNotFound.
func (r *Registry) Enable(ctx context.Context, id string) error {
	return r.setDisabled(ctx, id, false)
}

func (r *Registry) setDisabled(ctx context.Context, id string, disabled bool) error {
	res := r.db.WithContext(ctx).Model(&Partner{}).Where("id = ?", id).
		Updates(map[string]any{"disabled": disabled, "updated_at": storage.Now(r.now())})
	if res.Error != nil {
		return fmt.Errorf("partners: set disabled: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrPartnerNotFound
	}
	return nil
}

// Reseal rewrites every signing key not sealed under the keyring's first
// key: unsealed ones (written while no server key was configured) and ones
// sealed under an older key. It returns how many it rewrote and how many it
// could not open (sealed under a key no longer configured; those partners
// need a new secret). With no server key configured it does nothing.
func (r *Registry) Reseal(ctx context.Context) (resealed, unreadable int, err error) {
	if !r.keys.Sealed() {
		return 0, 0, nil
	}
	ps, err := r.List(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range ps {
		if len(p.SigningKey) == 0 || r.keys.current(p.SigningKey) {
			continue
		}
		secret, err := r.keys.open(p.ID, p.SigningKey)
		if err != nil {
			unreadable++
			continue
		}
		sealed, err := r.keys.seal(p.ID, string(secret))
		if err != nil {
			return resealed, unreadable, err
		}
		// Only if the row still holds what was read: a concurrent rotation wins.
		res := r.db.WithContext(ctx).Model(&Partner{}).Where("id = ? AND signing_key = ?", p.ID, p.SigningKey).
			Update("signing_key", sealed)
		if res.Error != nil {
			return resealed, unreadable, fmt.Errorf("partners: reseal: %w", res.Error)
		}
		resealed += int(res.RowsAffected)
	}
	return resealed, unreadable, nil
}
