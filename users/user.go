// Package users owns the unified user record: its GORM models and store,
// the JSON view every login answers with, the profile handlers, and the
// helpers that carry the current user in a request.
package users

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/text/unicode/norm"

	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/storage"
)

// Wallet types.
const (
	WalletEOA      = "eoa"
	WalletContract = "contract"
)

// User is a row of users, with its wallets when loaded by the store.
type User struct {
	ID            string `gorm:"primaryKey"`
	Username      string
	Email         *string // as typed, in NFC
	EmailKey      *string `gorm:"column:email_key"` // EmailKey(Email), what lookups and uniqueness use; written with Email, not read back
	EmailVerified bool
	PasswordHash  *string
	Language      string
	Points        int64
	ReferralCode  string
	ReferrerID    *string
	RefereeCount  int64
	JoinedAt      time.Time
	UpdatedAt     time.Time

	Wallets          []Wallet `gorm:"-"`
	ReferrerUsername *string  `gorm:"-"`

	memo *viewMemo `gorm:"-"` // set once, before the record is shared through the cache
}

// viewMemo is the JSON of a cached record's View, made when it is cached:
// GET /v1/users/me then writes bytes instead of building and encoding the
// view on every request. It belongs to one *User (owner): a copy of the
// record, which may have been changed, encodes afresh.
type viewMemo struct {
	owner *User
	json  []byte
}

// memoizeView makes u's view JSON once. Only for a record about to be
// cached, which nobody may change afterwards.
func (u *User) memoizeView() {
	if b, err := json.Marshal(u.View()); err == nil {
		u.memo = &viewMemo{owner: u, json: b}
	}
}

// ViewJSON is json.Marshal(u.View()), made once for a cached record.
func (u *User) ViewJSON() ([]byte, error) {
	if m := u.memo; m != nil && m.owner == u {
		return m.json, nil
	}
	return json.Marshal(u.View())
}

// Wallet is a row of wallets: an address linked to a user, keyed by its 20
// bytes so one wallet typed in two letter cases is one wallet.
type Wallet struct {
	Address   []byte `gorm:"primaryKey"`
	UserID    string
	ChainID   uint64
	Type      string
	IsPrimary bool `gorm:"column:is_primary"`
	LinkedAt  time.Time
}

// hasWallet reports whether addr is one of u's wallets.
func (u *User) hasWallet(addr []byte) bool {
	for i := range u.Wallets {
		if bytes.Equal(u.Wallets[i].Address, addr) {
			return true
		}
	}
	return false
}

// Hex returns the wallet's EIP-55 address.
func (w Wallet) Hex() string { return common.BytesToAddress(w.Address).Hex() }

// Errors of the user record.
var (
	ErrNotFound            = errs.New("user_not_found", "no such user")
	ErrUsernameTaken       = errs.New("username_taken", "that username is taken")
	ErrInvalidUsername     = errs.New("invalid_username", "a username is 3-32 characters of a-z, 0-9 and _")
	ErrInvalidLanguage     = errs.New("invalid_language", "language must be a BCP 47 tag such as en or pt-BR")
	ErrEmailTaken          = errs.New("email_taken", "that email belongs to another account")
	ErrEmailAlreadySet     = errs.New("email_already_set", "this account already has an email")
	ErrWalletTaken         = errs.New("wallet_taken", "that wallet belongs to another account")
	ErrWalletNotFound      = errs.New("wallet_not_found", "this account has no such wallet")
	ErrLastLoginMethod     = errs.New("last_login_method", "this is the account's last way to log in")
	ErrInvalidReferralCode = errs.New("invalid_referral_code", "unknown referral code")
)

var (
	usernameRE = regexp.MustCompile(`^[a-z0-9_]{3,32}$`)
	languageRE = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$`)
)

// NormalizeUsername lowercases and validates a username (3-32 of a-z 0-9 _,
// unique case-insensitively): ErrInvalidUsername.
func NormalizeUsername(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if !usernameRE.MatchString(s) {
		return "", ErrInvalidUsername
	}
	return s, nil
}

// EmailKey is the form emails are compared on (storage.EmailKey: NFC and
// full Unicode case folding), so that "Ärger@x.org", "ärger@x.org" and its
// NFD spelling are one account on every database. Every lookup and
// uniqueness check of an email goes through it.
func EmailKey(email string) string { return storage.EmailKey(strings.TrimSpace(email)) }

// normalizeEmail is the email stored and shown: what the user typed, in
// NFC, and its key.
func normalizeEmail(email string) (shown, key string) {
	shown = norm.NFC.String(strings.TrimSpace(email))
	return shown, storage.EmailKey(shown)
}

// ValidLanguage reports whether s looks like a BCP 47 language tag.
func ValidLanguage(s string) bool { return languageRE.MatchString(s) }

// NormalizeReferralCode uppercases a code as typed by a person.
func NormalizeReferralCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// View is the contract's user object.
type View struct {
	ID            string       `json:"id"`
	Username      string       `json:"username"`
	Email         *string      `json:"email"`
	EmailVerified bool         `json:"email_verified"`
	Language      string       `json:"language"`
	Address       *string      `json:"address"`
	Wallets       []WalletView `json:"wallets"`
	Points        int64        `json:"points"`
	ReferralCode  string       `json:"referral_code"`
	Referrer      *string      `json:"referrer"`
	RefereeCount  int64        `json:"referee_count"`
	JoinedAt      string       `json:"joined_at"`
}

// WalletView is one entry of View.Wallets.
type WalletView struct {
	Address  string `json:"address"`
	ChainID  uint64 `json:"chain_id"`
	Type     string `json:"type"`
	Primary  bool   `json:"primary"`
	LinkedAt string `json:"linked_at"`
}

// TimeFormat is how the API writes times: RFC 3339 in UTC.
const TimeFormat = time.RFC3339

// View renders u as the contract's user object.
func (u *User) View() View {
	v := View{
		ID:            u.ID,
		Username:      u.Username,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Language:      u.Language,
		Wallets:       make([]WalletView, 0, len(u.Wallets)),
		Points:        u.Points,
		ReferralCode:  u.ReferralCode,
		Referrer:      u.ReferrerUsername,
		RefereeCount:  u.RefereeCount,
		JoinedAt:      u.JoinedAt.UTC().Format(TimeFormat),
	}
	for _, w := range u.Wallets {
		wv := WalletView{Address: w.Hex(), ChainID: w.ChainID, Type: w.Type, Primary: w.IsPrimary, LinkedAt: w.LinkedAt.UTC().Format(TimeFormat)}
		if w.IsPrimary {
			a := wv.Address
			v.Address = &a
		}
		v.Wallets = append(v.Wallets, wv)
	}
	return v
}
