package users

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/cache"
	"github.com/walletauth/walletauth/storage"
)

// Store keeps users and their wallets in the database.
type Store struct {
	db       *storage.DB
	now      func() time.Time
	onChange func(ctx context.Context, ids ...string)
	views    *cache.TTLMap[string, *User]  // nil: GetCached reads the database
	owners   *cache.TTLMap[string, string] // wallet address bytes → user ID: which record to try; the database confirms
	bus      *cache.Bus
	txHook   TxHook // nil: no one listens (see SetTxHook)

	events EventHook // nil: no activity log (see SetEventHook)
	// otherLogins counts a user's login methods other packages own (see
	// SetLoginMethodCounter); nil: none.
	otherLogins LoginMethodCounter
}

// CacheTTL is how long the user cache keeps an entry from its creation or
// last read.
const CacheTTL = time.Minute

// EnableCache lets GetCached serve users from memory: at most maxBytes of
// heap as estimated per entry (seven eighths for the records, one eighth
// for which user owns a wallet), each entry for at most ttl. Every change
// this store or its callers report (Changed) is published on bus, which
// drops the entry here and on every other instance.
func (s *Store) EnableCache(bus *cache.Bus, maxBytes int, ttl time.Duration) {
	s.views = cache.NewSizedTTLMap(maxBytes-maxBytes/8, cachedUserBytes, ttl, s.now)
	s.owners = cache.NewSizedTTLMap(maxBytes/8, walletOwnerBytes, ttl, s.now)
	s.bus = bus
	bus.OnEvent(func(e cache.Event) {
		if e.Kind == cache.KindUserChanged || e.Kind == cache.KindUserTokens {
			s.views.Delete(e.Key)
		}
	}, func() { s.views.Clear(); s.owners.Clear() })
	next := s.onChange
	s.onChange = func(ctx context.Context, ids ...string) {
		for _, id := range ids {
			_ = bus.Publish(ctx, cache.Event{Kind: cache.KindUserChanged, Key: id})
		}
		next(ctx, ids...)
	}
}

// GetCached is Get served from the cache when EnableCache was called and
// the invalidation bus is healthy. The returned user must not be modified.
func (s *Store) GetCached(ctx context.Context, id string) (*User, error) {
	if s.views == nil || !s.bus.Healthy() {
		return s.Get(ctx, id)
	}
	if u, ok := s.views.Get(id); ok {
		return u, nil
	}
	version := s.views.Version()
	u, err := s.Get(ctx, id)
	if err == nil {
		u.memoizeView()
		s.views.PutIf(id, u, version)
	}
	return u, err
}

// NewStore returns a store over db. onChange, when not nil, is called after
// every committed change of a user record with the IDs that changed (caches
// use it to drop what they hold).
func NewStore(db *storage.DB, now func() time.Time, onChange func(ctx context.Context, ids ...string)) *Store {
	if now == nil {
		now = time.Now
	}
	if onChange == nil {
		onChange = func(context.Context, ...string) {}
	}
	return &Store{db: db, now: now, onChange: onChange}
}

// Now is the store's clock at database resolution.
func (s *Store) Now() time.Time { return storage.Now(s.now()) }

// NewUser is what creating a user may be given.
type NewUser struct {
	Username     string  // optional; generated when empty
	Email        *string // optional
	PasswordHash *string // with Email
	Language     string  // default "en"
	ReferralCode string  // optional: the referrer's code
	// EmailVerified creates the user with Email verified (a sign-in by
	// mailed code proved the address).
	EmailVerified bool
}

// Attach runs inside the creating transaction, after the user row exists,
// to add what the login method owns (a wallet, a partner identity).
type Attach func(tx *Tx, u *User) error

const createAttempts = 5

// Create inserts a user and, in the same transaction, applies the referral
// code (setting the referrer and adding one to its referee_count) and runs
// attach. Errors: ErrInvalidUsername, ErrInvalidLanguage,
// ErrInvalidReferralCode, ErrUsernameTaken, ErrEmailTaken, or what attach
// returned (unique violations in attach are returned unchanged so the caller
// can recognise its own constraint).
func (s *Store) Create(ctx context.Context, nu NewUser, attach Attach) (*User, error) {
	username := ""
	if nu.Username != "" {
		var err error
		if username, err = NormalizeUsername(nu.Username); err != nil {
			return nil, err
		}
	}
	lang := nu.Language
	if lang == "" {
		lang = "en"
	}
	if !ValidLanguage(lang) {
		return nil, ErrInvalidLanguage
	}
	// Read before the transaction: an invalidation racing the create must
	// keep the new record out of the caches (see cacheNew).
	cached := s.views != nil && s.bus.Healthy()
	var viewsVersion, ownersVersion uint64
	if cached {
		viewsVersion, ownersVersion = s.views.Version(), s.owners.Version()
	}
	var lastErr error
	for attempt := 0; attempt < createAttempts; attempt++ {
		u := &User{
			ID:           uuid.Must(uuid.NewV7()).String(),
			Username:     username,
			PasswordHash: nu.PasswordHash,
			Language:     lang,
			ReferralCode: NewReferralCode(),
			JoinedAt:     s.Now(),
		}
		u.UpdatedAt = u.JoinedAt
		if nu.Email != nil {
			shown, key := normalizeEmail(*nu.Email)
			u.Email, u.EmailKey = &shown, &key
			u.EmailVerified = nu.EmailVerified
		}
		if u.Username == "" {
			u.Username = newUsername()
		}
		attachErr := errors.New("")
		_, err := s.inTx(ctx, func(t *Tx) error {
			tx := t.db
			if code := NormalizeReferralCode(nu.ReferralCode); code != "" {
				var referrer User
				err := tx.Select("id", "username").Where("referral_code = ?", code).Take(&referrer).Error
				if errors.Is(err, gorm.ErrRecordNotFound) {
					return ErrInvalidReferralCode
				}
				if err != nil {
					return fmt.Errorf("users: find referrer: %w", err)
				}
				u.ReferrerID = &referrer.ID
				u.ReferrerUsername = &referrer.Username
			}
			if err := tx.Create(u).Error; err != nil {
				return err
			}
			if u.ReferrerID != nil {
				res := tx.Model(&User{}).Where("id = ?", *u.ReferrerID).
					Updates(map[string]any{"referee_count": gorm.Expr("referee_count + 1"), "updated_at": u.JoinedAt})
				if res.Error != nil {
					return fmt.Errorf("users: count referee: %w", res.Error)
				}
				t.invalidate(*u.ReferrerID)
			}
			if attach != nil {
				if err := attach(t, u); err != nil {
					attachErr = err
					return err
				}
			}
			return nil
		})
		if err == nil {
			// Not with a referrer: its username, read without a lock, may
			// be renamed before this commit by a rename that does not yet
			// see this referee, so the view could keep the old name.
			if cached && u.ReferrerID == nil {
				s.cacheNew(u, viewsVersion, ownersVersion)
			}
			return u, nil
		}
		if errors.Is(err, attachErr) {
			return nil, err
		}
		if errors.Is(err, ErrInvalidReferralCode) {
			return nil, err
		}
		if storage.ForeignKeyViolation(err) { // the referrer was deleted meanwhile
			return nil, ErrInvalidReferralCode
		}
		switch {
		case uniqueEmail.Violates(err):
			return nil, ErrEmailTaken
		case uniqueUsername.Violates(err) && username != "":
			return nil, ErrUsernameTaken
		case !uniqueUsername.Violates(err) && !uniqueReferralCode.Violates(err):
			return nil, fmt.Errorf("users: create: %w", err)
		}
		lastErr = err // a generated username or code collided: try new ones
	}
	return nil, fmt.Errorf("users: create: %d collisions of generated values: %w", createAttempts, lastErr)
}

// cacheNew puts a committed new user in the caches, as GetByWallet would
// after reading it, so that its next sign-in and GET /v1/users/me find it
// warm. A copy: the caller may change the user it was given.
func (s *Store) cacheNew(u *User, viewsVersion, ownersVersion uint64) {
	c := *u
	c.Wallets = slices.Clone(u.Wallets)
	c.memo = nil
	c.memoizeView()
	s.views.PutIf(c.ID, &c, viewsVersion)
	for _, w := range c.Wallets {
		s.owners.PutIf(string(w.Address), c.ID, ownersVersion)
	}
}

// loadSQL reads a user, its referrer's username and its wallets in one
// query, a row per wallet (the wallet columns NULL when it has none).
const loadSQL = `SELECT u.id, u.username, u.email, u.email_verified, u.password_hash, u.language,
	u.points, u.referral_code, u.referrer_id, u.referee_count, u.joined_at, u.updated_at,
	r.username, w.address, w.chain_id, w.type, w.is_primary, w.linked_at
FROM users AS u
LEFT JOIN users AS r ON r.id = u.referrer_id
LEFT JOIN wallets AS w ON w.user_id = u.id
WHERE `

// load reads the user matching where (one user at most).
func (s *Store) load(ctx context.Context, tx *gorm.DB, where string, args ...any) (*User, error) {
	us, err := s.loadAll(ctx, tx, where+" ORDER BY w.linked_at, w.address", args...)
	switch {
	case err != nil:
		return nil, err
	case len(us) == 0:
		return nil, ErrNotFound
	case len(us) > 1:
		return nil, fmt.Errorf("users: get: %q matched more than one user", where)
	}
	return us[0], nil
}

// loadAll reads the users matching where, whose ORDER BY must keep each
// user's rows together. The rows are scanned by hand: on a wallet sign-in
// that is not cached this is the only query, and gorm's reflective Scan
// cost more CPU than the query itself.
func (s *Store) loadAll(ctx context.Context, tx *gorm.DB, whereOrder string, args ...any) ([]*User, error) {
	rows, err := tx.WithContext(ctx).Raw(loadSQL+whereOrder, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("users: get: %w", err)
	}
	defer rows.Close()
	var (
		us []*User
		u  *User
	)
	for rows.Next() {
		var (
			row      User
			referrer *string
			addr     []byte
			chainID  *uint64
			kind     *string
			primary  *bool
			linkedAt *time.Time
		)
		if err := rows.Scan(&row.ID, &row.Username, &row.Email, &row.EmailVerified, &row.PasswordHash, &row.Language,
			&row.Points, &row.ReferralCode, &row.ReferrerID, &row.RefereeCount, &row.JoinedAt, &row.UpdatedAt,
			&referrer, &addr, &chainID, &kind, &primary, &linkedAt); err != nil {
			return nil, fmt.Errorf("users: get: scan: %w", err)
		}
		if u == nil || row.ID != u.ID {
			row.ReferrerUsername = referrer
			u = &row
			us = append(us, u)
		}
		if addr == nil {
			continue
		}
		w := Wallet{Address: addr, UserID: u.ID}
		if chainID != nil {
			w.ChainID = *chainID
		}
		if kind != nil {
			w.Type = *kind
		}
		if primary != nil {
			w.IsPrimary = *primary
		}
		if linkedAt != nil {
			w.LinkedAt = *linkedAt
		}
		u.Wallets = append(u.Wallets, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: get: %w", err)
	}
	return us, nil
}

// getManyChunk bounds the IDs of one GetMany query (SQLite allows 32,766
// parameters, older builds 999).
const getManyChunk = 500

// GetMany returns the users with the given IDs, with their wallets, keyed by
// ID, in one query per 500 IDs; IDs of no user are absent from the map.
func (s *Store) GetMany(ctx context.Context, ids []string) (map[string]*User, error) {
	out := make(map[string]*User, len(ids))
	for chunk := range slices.Chunk(ids, getManyChunk) {
		us, err := s.loadAll(ctx, s.db.DB, "u.id IN ? ORDER BY u.id, w.linked_at, w.address", chunk)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			out[u.ID] = u
		}
	}
	return out, nil
}

// Get returns the user with its wallets: ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*User, error) {
	return s.load(ctx, s.db.DB, "u.id = ?", id)
}

// GetTx is Get inside a caller's transaction.
func (s *Store) GetTx(ctx context.Context, tx *gorm.DB, id string) (*User, error) {
	return s.load(ctx, tx, "u.id = ?", id)
}

// WalletOwner is a scalar SQL subquery of the ID of the user owning the
// wallet whose address is the SQL expression addr (NULL when no user
// does), for another package's statement that must check a wallet's owner
// in the statement itself (auth's session INSERT).
func WalletOwner(addr string) string {
	return "(SELECT w.user_id FROM wallets AS w WHERE w.address = " + addr + ")"
}

// JoinUpdated is the join by which another package's query orders its
// rows by the last change of their user (GET /v1/partner/users?updated_since=):
// it makes the user's u.id and u.updated_at available, on column (for
// example "pi.user_id").
func JoinUpdated(column string) string { return "JOIN users AS u ON u.id = " + column }

// Points returns user id's points balance, read from the database:
// ErrNotFound.
func (s *Store) Points(ctx context.Context, id string) (int64, error) {
	var u User
	err := s.db.WithContext(ctx).Select("id", "points").Where("id = ?", id).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, wrap("points", err)
	}
	return u.Points, nil
}

// GetByEmail finds a user by email, compared on EmailKey (case and Unicode
// normalisation ignored): ErrNotFound.
func (s *Store) GetByEmail(ctx context.Context, email string) (*User, error) {
	return s.load(ctx, s.db.DB, "u.email_key = ?", EmailKey(email))
}

// GetByWallet finds the user owning a 20-byte address: ErrNotFound. Who
// owns it is the database's answer, read with the user's record and
// wallets in one query; the record is then cached like GetCached's and
// remembered as the wallet's likely owner (see CachedByWallet). The
// returned user must not be modified.
func (s *Store) GetByWallet(ctx context.Context, addr []byte) (*User, error) {
	if s.owners == nil || !s.bus.Healthy() {
		return s.getByWallet(ctx, addr)
	}
	version := s.owners.Version()
	u, err := s.getByWallet(ctx, addr)
	if err == nil {
		s.owners.PutIf(string(addr), u.ID, version)
	}
	return u, err
}

// CachedByWallet is the cached record of the user that last owned addr,
// without reading the database: a hint, not an answer. A wallet unlinked,
// moved or deleted on another instance may still be listed here while the
// invalidation is on its way, so the caller must have the database confirm
// the owner in what it writes (auth.Sessions.IssueForWallet does). The
// returned user must not be modified.
func (s *Store) CachedByWallet(addr []byte) (*User, bool) {
	if s.owners == nil || !s.bus.Healthy() {
		return nil, false
	}
	id, ok := s.owners.Get(string(addr))
	if !ok {
		return nil, false
	}
	u, ok := s.views.Get(id)
	if !ok || !u.hasWallet(addr) {
		return nil, false
	}
	return u, true
}

// getByWallet reads the owner of addr and its wallets in one query, and
// caches the record like GetCached.
func (s *Store) getByWallet(ctx context.Context, addr []byte) (*User, error) {
	var version uint64
	cached := s.views != nil && s.bus.Healthy()
	if cached {
		version = s.views.Version()
	}
	u, err := s.load(ctx, s.db.DB, "u.id IN (SELECT user_id FROM wallets WHERE address = ?)", addr)
	if err != nil {
		return nil, err
	}
	if cached {
		u.memoizeView()
		s.views.PutIf(u.ID, u, version)
	}
	return u, nil
}

// Patch is a profile change; nil fields are left alone.
type Patch struct {
	Username *string
	Language *string
}

// Update changes the profile: ErrInvalidUsername, ErrInvalidLanguage,
// ErrUsernameTaken, ErrNotFound.
func (s *Store) Update(ctx context.Context, id string, p Patch) (*User, error) {
	set := map[string]any{"updated_at": s.Now()}
	if p.Username != nil {
		name, err := NormalizeUsername(*p.Username)
		if err != nil {
			return nil, err
		}
		set["username"] = name
	}
	if p.Language != nil {
		if !ValidLanguage(*p.Language) {
			return nil, ErrInvalidLanguage
		}
		set["language"] = *p.Language
	}
	err := s.InTx(ctx, func(t *Tx) error {
		res := t.db.Model(&User{}).Where("id = ?", id).Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return t.updated(id)
	})
	if uniqueUsername.Violates(err) {
		return nil, ErrUsernameTaken
	}
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("users: update: %w", err)
	}
	if p.Username != nil {
		// Referees show this user's username as their referrer. Read after
		// the commit, so a referee created meanwhile is dropped too.
		var referees []string
		if err := s.db.WithContext(ctx).Model(&User{}).Where("referrer_id = ?", id).Pluck("id", &referees).Error; err != nil {
			return nil, wrap("update", err)
		}
		if len(referees) > 0 {
			s.onChange(ctx, referees...)
		}
	}
	return s.Get(ctx, id)
}

// SetEmail adds email login to an account: ErrEmailAlreadySet,
// ErrEmailTaken, ErrNotFound. Each non-nil attach runs in the same
// transaction after the change (to queue the verification mail).
// An email is taken when another account's has the same EmailKey.
func (s *Store) SetEmail(ctx context.Context, id, email, passwordHash string, attach ...Attach) (*User, error) {
	shown, key := normalizeEmail(email)
	err := s.InTx(ctx, func(t *Tx) error {
		tx := t.db
		var u User
		if err := tx.Select("id", "email", "language").Where("id = ?", id).Take(&u).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrNotFound
			}
			return err
		}
		if u.Email != nil {
			return ErrEmailAlreadySet
		}
		if err := tx.Model(&User{}).Where("id = ? AND email IS NULL", id).
			Updates(map[string]any{"email": shown, "email_key": key, "password_hash": passwordHash, "updated_at": s.Now()}).Error; err != nil {
			return err
		}
		for _, a := range attach {
			if a != nil {
				if err := a(t, &u); err != nil {
					return err
				}
			}
		}
		return t.updated(id)
	})
	if uniqueEmail.Violates(err) {
		return nil, ErrEmailTaken
	}
	if err != nil {
		return nil, wrap("set email", err)
	}
	return s.Get(ctx, id)
}

// Delete removes a user and everything it owns (wallets, sessions,
// identities, points history cascade in the database; its referees'
// referrer becomes null) and takes one from its referrer's referee_count,
// in one transaction: ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.InTx(ctx, func(t *Tx) error { return t.Delete(id) }); err != nil {
		return wrap("delete", err)
	}
	return nil
}

// deleteUser deletes user id inside tx, whose referees (read by the
// caller in tx) lose their referrer, and returns the IDs of users whose
// record changed (the user, its referrer, its referees): ErrNotFound.
func deleteUser(tx *gorm.DB, id string, referees []string, now time.Time) ([]string, error) {
	if len(referees) > 0 {
		if err := tx.Where("referrer_id = ?", id).Model(&User{}).
			Updates(map[string]any{"referrer_id": nil, "updated_at": now}).Error; err != nil {
			return nil, err
		}
	}
	// The referrer is read by the DELETE itself: a referrer set by a
	// concurrent transaction meanwhile must still lose its count.
	var gone []struct{ ReferrerID *string }
	if err := tx.Raw(`DELETE FROM users WHERE id = ? RETURNING referrer_id`, id).Scan(&gone).Error; err != nil {
		return nil, err
	}
	if len(gone) == 0 {
		return nil, ErrNotFound
	}
	changed := append([]string{id}, referees...)
	if ref := gone[0].ReferrerID; ref != nil {
		if err := tx.Model(&User{}).Where("id = ?", *ref).
			Updates(map[string]any{"referee_count": gorm.Expr("referee_count - 1"), "updated_at": now}).Error; err != nil {
			return nil, err
		}
		changed = append(changed, *ref)
	}
	return changed, nil
}

// LoginMethodCounter counts, inside tx, the login methods of user userID
// that another package owns (a partner's identities).
type LoginMethodCounter func(tx *gorm.DB, userID string) (int64, error)

// SetLoginMethodCounter installs the counter of other packages' login
// methods (at wiring, before serving): Tx.LoginMethods adds its count.
func (s *Store) SetLoginMethodCounter(c LoginMethodCounter) { s.otherLogins = c }

// ownLoginMethods counts the login methods of user id this package owns:
// its wallets and its email (with a password, or a mailed code: any email
// will do for that).
func ownLoginMethods(tx *gorm.DB, id string) (int64, error) {
	var n struct{ W, P int64 }
	err := tx.Raw(`SELECT
		(SELECT COUNT(*) FROM wallets WHERE user_id = ?) AS w,
		(SELECT COUNT(*) FROM users WHERE id = ? AND (password_hash IS NOT NULL OR email IS NOT NULL)) AS p`, id, id).Scan(&n).Error
	if err != nil {
		return 0, fmt.Errorf("users: count login methods: %w", err)
	}
	return n.W + n.P, nil
}

func wrap(op string, err error) error { return fmt.Errorf("users: %s: %w", op, err) }

const referralAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ" // no 0 O 1 I L

// NewReferralCode returns 8 characters from an unambiguous alphabet
// (31^8 ≈ 8.5e11 codes), from a CSPRNG.
func NewReferralCode() string { return randomString(referralAlphabet, 8) }

// newUsername is "user_" and 10 characters of crypto/rand.Text (a-z2-7:
// 50 bits).
func newUsername() string { return "user_" + strings.ToLower(rand.Text()[:10]) }

// randomString draws n characters of alphabet from the CSPRNG. Referral
// codes need it: rand.Text's base32 alphabet has I, L and O, which a person
// copying a code mistakes for 1 and 0.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // the OS CSPRNG failing is not recoverable
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

// CheckAvailable answers, before any costly work, what Create would refuse
// of a new user with email, username (normalised; "" for a generated one)
// and referralCode (""  for none): ErrEmailTaken, ErrUsernameTaken,
// ErrInvalidReferralCode. It decides nothing: Create's unique constraints
// still do, so a user created meanwhile is refused there.
func (s *Store) CheckAvailable(ctx context.Context, email, username, referralCode string) error {
	if email != "" {
		_, err := s.GetByEmail(ctx, email)
		if err == nil {
			return ErrEmailTaken
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if username != "" {
		var n int64
		if err := s.db.WithContext(ctx).Model(&User{}).Where("username = ?", username).Count(&n).Error; err != nil {
			return wrap("check username", err)
		}
		if n > 0 {
			return ErrUsernameTaken
		}
	}
	if NormalizeReferralCode(referralCode) != "" {
		return s.CheckReferralCode(ctx, referralCode)
	}
	return nil
}

// CheckReferralCode reports whether code belongs to a user:
// ErrInvalidReferralCode when it does not.
func (s *Store) CheckReferralCode(ctx context.Context, code string) error {
	var n int64
	if err := s.db.WithContext(ctx).Model(&User{}).Where("referral_code = ?", NormalizeReferralCode(code)).Count(&n).Error; err != nil {
		return wrap("check referral code", err)
	}
	if n == 0 {
		return ErrInvalidReferralCode
	}
	return nil
}
