package partners

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// Limits of what a partner sends about its users.
const (
	MaxExternalIDLength = 255 // bytes
	MaxNameLength       = 255 // bytes
)

// identityKey is partner_identities' primary key: a partner's external ID
// names one identity.
var identityKey = storage.Unique{Name: "partner_identities_pkey",
	Columns: "partner_identities.partner_id, partner_identities.external_id"}

// CountIdentities counts user userID's partner identities inside tx: the
// login methods this package owns (users.Store.SetLoginMethodCounter).
func CountIdentities(tx *gorm.DB, userID string) (int64, error) {
	var n int64
	if err := tx.Model(&Identity{}).Where("user_id = ?", userID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("partners: count identities: %w", err)
	}
	return n, nil
}

// Lock locks partner partnerID's row until tx ends, so that changes
// counted per partner (its webhook endpoints) run one after another. On
// PostgreSQL it is SELECT … FOR UPDATE; SQLite runs one transaction at a
// time on its single connection, so it does nothing there.
func Lock(tx *gorm.DB, d storage.Dialect, partnerID string) error {
	if d != storage.Postgres {
		return nil
	}
	if err := tx.Exec(`SELECT id FROM partners WHERE id = ? FOR UPDATE`, partnerID).Error; err != nil {
		return fmt.Errorf("partners: lock partner: %w", err)
	}
	return nil
}

// IdentityRef names one partner identity.
type IdentityRef struct{ PartnerID, ExternalID string }

// ActiveIdentities returns user userID's identities at partners that are
// not disabled, read inside tx (the webhooks outbox: whom to tell of a
// change).
func ActiveIdentities(tx *gorm.DB, userID string) ([]IdentityRef, error) {
	var out []IdentityRef
	err := tx.Raw(`SELECT pi.partner_id, pi.external_id FROM partner_identities AS pi
		JOIN partners AS p ON p.id = pi.partner_id
		WHERE pi.user_id = ? AND p.disabled = ?`, userID, false).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("partners: find identities: %w", err)
	}
	return out, nil
}

// Enabled tells which of the partners ids exist and are not disabled,
// read inside tx.
func Enabled(tx *gorm.DB, ids []string) (map[string]bool, error) {
	var got []string
	if err := tx.Model(&Partner{}).Where("id IN ? AND disabled = ?", ids, false).Pluck("id", &got).Error; err != nil {
		return nil, fmt.Errorf("partners: find partners: %w", err)
	}
	out := make(map[string]bool, len(got))
	for _, id := range got {
		out[id] = true
	}
	return out, nil
}

// RankScope restricts a ranking (users.Store.Rank) to partner partnerID's
// users, each named by its external ID (the smallest, when a user has
// several identities of the partner: it counts once).
func RankScope(partnerID string) users.Scope {
	return users.Scope{
		Where:      `EXISTS (SELECT 1 FROM partner_identities pi WHERE pi.partner_id = ? AND pi.user_id = u.id)`,
		ExternalID: `(SELECT MIN(pi.external_id) FROM partner_identities pi WHERE pi.partner_id = ? AND pi.user_id = u.id)`,
		Args:       []any{partnerID},
	}
}

// Identity is a row of partner_identities: a partner's own id of one of
// its users, with what the partner told about that user. The email here is
// the partner's word only: it is never the user's login email and never
// merges accounts.
type Identity struct {
	PartnerID  string `gorm:"primaryKey"`
	ExternalID string `gorm:"primaryKey"`
	UserID     string
	FirstName  *string
	LastName   *string
	Email      *string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TableName is the identities' table.
func (Identity) TableName() string { return "partner_identities" }

// LoginInput is an external-ID login. A nil name or email leaves the stored
// one as it is; an empty one clears it.
type LoginInput struct {
	ExternalID   string
	FirstName    *string
	LastName     *string
	Email        *string
	ReferralCode string // applied only when this login creates the user
	UserAgent    string // the client's, recorded on the session
	IP           string // the client's, recorded in the activity log
}

// LoginResult is what an external-ID login answers.
type LoginResult struct {
	Registered         bool // this call created the identity
	Created            bool // this call created the user (v1.1 `created`)
	AuthToken          string
	LoginCode          string
	LoginCodeExpiresAt time.Time
	User               *users.User
}

var (
	errNoIdentity     = errors.New("partners: no such identity")
	errIdentityExists = errors.New("partners: identity created concurrently")
)

// loginAttempts bounds the find-or-create loop: an identity deleted and
// created again between its steps makes it go round once more.
const loginAttempts = 4

// Login logs partner p's user in by external ID, creating the user on the
// first login of that ID, and returns a fresh auth token and a single-use
// login code. It is idempotent per (partner, external ID): concurrent first
// logins create one user, and only the call that created it reports
// Registered. Names and email are validated and kept on the identity,
// updated on later logins.
//
// Errors: ErrExternalIDMissing, ErrInvalidExternalID, ErrInvalidName,
// auth.ErrInvalidEmail, users.ErrInvalidReferralCode.
func (s *Service) Login(ctx context.Context, p Partner, in LoginInput) (*LoginResult, error) {
	if err := in.normalize(); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < loginAttempts; attempt++ {
		res, err := s.loginExisting(ctx, p, in)
		if !errors.Is(err, errNoIdentity) {
			return res, err
		}
		res, err = s.register(ctx, p, in)
		if !errors.Is(err, errIdentityExists) {
			return res, err
		}
		lastErr = err // a concurrent first login won: log in as its user
	}
	return nil, fmt.Errorf("partners: login: %w", lastErr)
}

func (in *LoginInput) normalize() error {
	var err error
	if in.ExternalID, err = checkExternalID(in.ExternalID); err != nil {
		return err
	}
	for _, f := range []**string{&in.FirstName, &in.LastName} {
		if *f == nil {
			continue
		}
		v := strings.TrimSpace(**f)
		if len(v) > MaxNameLength || !printable(v) {
			return ErrInvalidName
		}
		*f = &v
	}
	if in.Email != nil {
		v := strings.TrimSpace(*in.Email)
		if v != "" {
			if v, err = auth.NormalizeEmail(v); err != nil {
				return err
			}
		}
		in.Email = &v
	}
	return nil
}

// loginExisting logs in through an existing identity, updating what the
// partner told: errNoIdentity when there is none.
func (s *Service) loginExisting(ctx context.Context, p Partner, in LoginInput) (*LoginResult, error) {
	res := &LoginResult{}
	issue := s.sessions.NewTxIssue(auth.Origin{Method: auth.MethodPartner, UserAgent: in.UserAgent, IP: in.IP})
	err := s.users.InTx(ctx, func(t *users.Tx) error {
		tx := t.DB()
		var id Identity
		err := tx.Where("partner_id = ? AND external_id = ?", p.ID, in.ExternalID).Take(&id).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return errNoIdentity
		}
		if err != nil {
			return fmt.Errorf("find identity: %w", err)
		}
		if set := identityChanges(id, in); len(set) > 0 {
			set["updated_at"] = t.Now()
			if err := tx.Model(&Identity{}).Where("partner_id = ? AND external_id = ?", p.ID, in.ExternalID).
				Updates(set).Error; err != nil {
				return fmt.Errorf("update identity: %w", err)
			}
			// What the partner knows of its user changed: the user moves to
			// the end of GET /v1/partner/users?updated_since= for sync.
			if err := t.Touch(id.UserID); err != nil {
				return err
			}
		}
		if err := s.issue(ctx, tx, issue, id.UserID, res); err != nil {
			return err
		}
		u, err := t.Get(id.UserID)
		if err != nil {
			return err
		}
		res.User = u
		return nil
	})
	switch {
	case err == nil:
		issue.Committed()
		return res, nil
	case errors.Is(err, errNoIdentity), errors.Is(err, users.ErrNotFound), storage.ForeignKeyViolation(err):
		return nil, errNoIdentity // deleted meanwhile: register anew
	}
	return nil, wrap("login", err)
}

// register creates the user and its identity in one transaction, with its
// session and login code: errIdentityExists when a concurrent call created
// the identity first.
func (s *Service) register(ctx context.Context, p Partner, in LoginInput) (*LoginResult, error) {
	// The identity and its user are created together: a first login of an
	// external ID always creates the user.
	res := &LoginResult{Registered: true, Created: true}
	issue := s.sessions.NewTxIssue(auth.Origin{Method: auth.MethodPartner, UserAgent: in.UserAgent, IP: in.IP})
	u, err := s.users.Create(ctx, users.NewUser{ReferralCode: in.ReferralCode}, func(t *users.Tx, u *users.User) error {
		tx := t.DB()
		now := t.Now()
		id := Identity{
			PartnerID: p.ID, ExternalID: in.ExternalID, UserID: u.ID,
			FirstName: emptyIsNil(in.FirstName), LastName: emptyIsNil(in.LastName), Email: emptyIsNil(in.Email),
			CreatedAt: now, UpdatedAt: now,
		}
		if err := tx.Create(&id).Error; err != nil {
			if identityKey.Violates(err) {
				return errIdentityExists
			}
			return fmt.Errorf("insert identity: %w", err)
		}
		if err := t.Changed(users.Change{Kind: users.ChangeCreated, UserID: u.ID}); err != nil {
			return err
		}
		return s.issue(ctx, tx, issue, u.ID, res)
	})
	if err != nil {
		if errors.Is(err, errIdentityExists) || errors.Is(err, users.ErrInvalidReferralCode) {
			return nil, err
		}
		return nil, wrap("register", err)
	}
	issue.Committed()
	res.User = u
	return res, nil
}

// issue creates the session and the login code of a login inside its
// transaction: if the code cannot be stored, nothing of the login is kept.
// The caller calls issue.Committed after the commit.
func (s *Service) issue(ctx context.Context, tx *gorm.DB, issue *auth.TxIssue, userID string, res *LoginResult) error {
	tok, _, err := issue.Issue(ctx, tx, userID)
	if err != nil {
		return err
	}
	code, exp, err := s.newLoginCode(ctx, userID)
	if err != nil {
		return err
	}
	res.AuthToken, res.LoginCode, res.LoginCodeExpiresAt = tok, code, exp
	return nil
}

// identityChanges returns the columns of id that in changes.
func identityChanges(id Identity, in LoginInput) map[string]any {
	set := map[string]any{}
	for col, f := range map[string]struct{ have, give *string }{
		"first_name": {id.FirstName, in.FirstName},
		"last_name":  {id.LastName, in.LastName},
		"email":      {id.Email, in.Email},
	} {
		if f.give == nil {
			continue
		}
		want := emptyIsNil(f.give)
		if (want == nil) != (f.have == nil) || (want != nil && *want != *f.have) {
			set[col] = want
		}
	}
	return set
}

func emptyIsNil(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

var integerRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// ParseExternalID reads the external_id of a request body: a non-empty
// string, or an integer taken as its decimal string. Errors:
// ErrExternalIDMissing (absent, null, empty), ErrInvalidExternalID (too
// long, control characters), api.ErrInvalidJSON (another JSON type, a
// fraction or an exponent).
func ParseExternalID(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", ErrExternalIDMissing
	}
	switch {
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", api.ErrInvalidJSON
		}
		return checkExternalID(s)
	case integerRE.Match(raw):
		return checkExternalID(string(raw))
	}
	return "", api.ErrInvalidJSON.WithMessage("external_id must be a string or an integer")
}

func checkExternalID(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", ErrExternalIDMissing
	}
	if len(s) > MaxExternalIDLength || !printable(s) {
		return "", ErrInvalidExternalID
	}
	return s, nil
}

// Login codes.

const (
	loginCodePrefix = "plc_"
	loginCodeBytes  = 32
)

// loginCodeKey is the shared-store key of a code: its hash, so the store
// holds no usable code.
func loginCodeKey(code string) string {
	h := sha256.Sum256([]byte(code))
	return "plc:" + hex.EncodeToString(h[:])
}

// newLoginCode stores a single-use code for userID in the shared store.
func (s *Service) newLoginCode(ctx context.Context, userID string) (string, time.Time, error) {
	var b [loginCodeBytes]byte
	mustRandom(b[:])
	code := loginCodePrefix + base64.RawURLEncoding.EncodeToString(b[:])
	exp := s.now().UTC().Truncate(time.Second).Add(s.opt.LoginCodeTTL)
	val := userID + "\n" + strconv.FormatInt(exp.UnixNano(), 10)
	if err := s.store.Set(ctx, loginCodeKey(code), []byte(val), s.opt.LoginCodeTTL); err != nil {
		return "", time.Time{}, fmt.Errorf("store login code: %w", err)
	}
	return code, exp, nil
}

// ExchangeCode uses up a login code and logs its user in with a new
// session. Of concurrent exchanges of one code exactly one succeeds.
// Errors: ErrLoginCodeInvalid (unknown, used or expired, or its user was
// deleted); a store or database outage (503) — the code is then used up.
func (s *Service) ExchangeCode(ctx context.Context, code string, o auth.Origin) (string, *users.User, error) {
	if !strings.HasPrefix(code, loginCodePrefix) || len(code) != len(loginCodePrefix)+43 {
		return "", nil, ErrLoginCodeInvalid
	}
	val, err := s.store.Consume(ctx, loginCodeKey(code))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil, ErrLoginCodeInvalid
	}
	if err != nil {
		return "", nil, wrap("use login code", err)
	}
	userID, expS, ok := strings.Cut(string(val), "\n")
	expNano, perr := strconv.ParseInt(expS, 10, 64)
	if !ok || perr != nil {
		return "", nil, ErrLoginCodeInvalid
	}
	// The store expires codes too; this check holds under the injected clock.
	if !s.now().Before(time.Unix(0, expNano)) {
		return "", nil, ErrLoginCodeInvalid
	}
	tok, _, err := s.sessions.Issue(ctx, userID, o)
	if storage.ForeignKeyViolation(err) {
		return "", nil, ErrLoginCodeInvalid
	}
	if err != nil {
		return "", nil, err
	}
	u, err := s.users.Get(ctx, userID)
	if errors.Is(err, users.ErrNotFound) {
		return "", nil, ErrLoginCodeInvalid
	}
	if err != nil {
		return "", nil, err
	}
	return tok, u, nil
}

func wrap(op string, err error) error {
	var ae *errs.Error
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("partners: %s: %w", op, err)
}
