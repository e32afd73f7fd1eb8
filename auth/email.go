package auth

import (
	"context"
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/passwords"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
)

// Errors of email login.
var (
	ErrInvalidEmail       = errs.New("invalid_email", "not a valid email address")
	ErrWeakPassword       = errs.New("weak_password", "the password is too weak")
	ErrInvalidCredentials = errs.New("invalid_credentials", "wrong email or password")
)

// EmailLimits are the email-login rate limits.
type EmailLimits struct {
	FailPerAccount Rate
	FailPerIP      Rate
	SignupPerIP    Rate
}

// Hasher makes the slow salted hash a new password is stored as.
type Hasher interface {
	Hash(pw string) (string, error)
}

// argon2id is the Hasher of NewEmail: passwords.Hash with its parameters.
type argon2id passwords.Params

func (p argon2id) Hash(pw string) (string, error) { return passwords.Hash(pw, passwords.Params(p)) }

// Email serves email signup and login.
type Email struct {
	users    *users.Store
	sessions *Sessions
	policy   *passwords.Policy
	params   passwords.Params
	hasher   Hasher
	limiter  limiter
	limits   EmailLimits
	// hashing bounds concurrent argon2id computations: each takes ~19 MiB,
	// so a burst of logins must queue rather than exhaust memory.
	hashing chan struct{}
	observe LoginObserver
	verify  *EmailCodes // set by NewEmailCodes: signup and addEmail mail a verification code
}

// Observe sets the observer told every login attempt's outcome (metrics).
func (e *Email) Observe(o LoginObserver) { e.observe = o }

// NewEmail returns the email login service.
func NewEmail(us *users.Store, s *Sessions, policy *passwords.Policy, params passwords.Params, l limiter, limits EmailLimits, maxConcurrentHashes int) *Email {
	if maxConcurrentHashes < 1 {
		maxConcurrentHashes = 1
	}
	return &Email{users: us, sessions: s, policy: policy, params: params, hasher: argon2id(params), limiter: l, limits: limits,
		hashing: make(chan struct{}, maxConcurrentHashes), observe: func(string, string) {}}
}

// SetHasher replaces the argon2id hasher NewEmail made from its params
// (tests count its calls through it). Verification still reads the
// parameters from each stored hash.
func (e *Email) SetHasher(h Hasher) { e.hasher = h }

// Routes registers signup and login on the public /v1/auth/email group.
func (e *Email) Routes(g *gin.RouterGroup) {
	g.POST("/signup", api.Handle(e.signup))
	g.POST("/login", api.Handle(e.login))
}

// MeRoutes registers POST /email on the authenticated /v1/users/me group.
func (e *Email) MeRoutes(me *gin.RouterGroup) {
	me.POST("/email", api.Handle(e.addEmail))
}

// NormalizeEmail validates an address (a bare addr-spec, at most 254
// characters) and returns it trimmed: ErrInvalidEmail.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 254 {
		return "", ErrInvalidEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", ErrInvalidEmail
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") {
		return "", ErrInvalidEmail
	}
	return s, nil
}

func (e *Email) checkPassword(pw string) error {
	if err := e.policy.Check(pw); err != nil {
		switch {
		case errors.Is(err, passwords.ErrTooShort):
			return ErrWeakPassword.WithMessage("the password must have at least 8 characters")
		case errors.Is(err, passwords.ErrTooLong):
			return ErrWeakPassword.WithMessage("the password must have at most 256 characters")
		case errors.Is(err, passwords.ErrCommon):
			return ErrWeakPassword.WithMessage("this password is one of the most commonly used; choose another")
		}
		return ErrWeakPassword
	}
	return nil
}

func (e *Email) hash(ctx context.Context, pw string) (string, error) {
	if err := e.acquire(ctx); err != nil {
		return "", err
	}
	defer e.release()
	return e.hasher.Hash(pw)
}

func (e *Email) acquire(ctx context.Context) error {
	select {
	case e.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Email) release() { <-e.hashing }

type signupRequest struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	Username     string `json:"username"`
	Language     string `json:"language"`
	ReferralCode string `json:"referral_code"`
}

func (e *Email) signup(c *gin.Context) error {
	var req signupRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	if err := e.checkPassword(req.Password); err != nil {
		return err
	}
	username := ""
	if req.Username != "" {
		if username, err = users.NormalizeUsername(req.Username); err != nil {
			return err
		}
	}
	if req.Language != "" && !users.ValidLanguage(req.Language) {
		return users.ErrInvalidLanguage
	}
	// Every sign-up that reaches the database counts, refused ones too:
	// the limit also bounds probing which emails have accounts.
	if err := allow(ctx, e.limiter, "signup-ip", c.ClientIP(), e.limits.SignupPerIP); err != nil {
		return err
	}
	// The cheap refusals before argon2id's memory and CPU are spent. They
	// decide nothing: the unique constraints do at insert, so a sign-up that
	// races another for the same email or username still gets a 409 there.
	if err := e.users.CheckAvailable(ctx, email, username, req.ReferralCode); err != nil {
		return err
	}
	h, err := e.hash(ctx, req.Password)
	if err != nil {
		return err
	}
	// The session is created in the user's transaction: a signup answered
	// 503 leaves no account behind that a retry would find taken.
	var tok string
	issue := e.sessions.NewTxIssue(OriginOf(c, MethodEmail))
	u, err := e.users.Create(ctx, users.NewUser{
		Username: req.Username, Email: &email, PasswordHash: &h,
		Language: req.Language, ReferralCode: req.ReferralCode,
	}, func(tx *users.Tx, u *users.User) error {
		var err error
		if tok, _, err = issue.Issue(ctx, tx.DB(), u.ID); err != nil {
			return err
		}
		if e.verify != nil {
			return e.verify.verificationMail(ctx, tx.DB(), u, email)
		}
		return nil
	})
	if err != nil {
		return err
	}
	issue.Committed()
	if e.verify != nil {
		e.verify.mailed()
	}
	return e.sessions.WriteLogin(c, http.StatusCreated, MethodEmail, tok, u, true)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login answers invalid_credentials for an unknown email and a wrong
// password alike, after the same argon2id work (DummyVerify), and counts
// failures per account and per client IP.
func (e *Email) login(c *gin.Context) error {
	err := e.doLogin(c)
	if err != nil {
		e.observe("email", api.Classify(err).Code)
	} else {
		e.observe("email", "ok")
	}
	return err
}

func (e *Email) doLogin(c *gin.Context) error {
	var req loginRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	account := users.EmailKey(req.Email) // also the failure counter's key: one per account, however spelt
	ip := c.ClientIP()
	if err := exceeded(ctx, e.limiter, "email-fail-ip", ip, e.limits.FailPerIP); err != nil {
		return err
	}
	if err := exceeded(ctx, e.limiter, "email-fail-account", account, e.limits.FailPerAccount); err != nil {
		return err
	}
	fail := func() error {
		if err := hit(ctx, e.limiter, "email-fail-ip", ip, e.limits.FailPerIP); err != nil {
			return err
		}
		if err := hit(ctx, e.limiter, "email-fail-account", account, e.limits.FailPerAccount); err != nil {
			return err
		}
		return ErrInvalidCredentials
	}
	if req.Password == "" || len(req.Password) > 4*256 || account == "" {
		return fail()
	}
	u, err := e.users.GetByEmail(ctx, account)
	if err != nil && !errors.Is(err, users.ErrNotFound) {
		return err
	}
	if err := e.acquire(ctx); err != nil {
		return err
	}
	var (
		ok   bool
		verr error // not err: that may still hold GetByEmail's ErrNotFound
	)
	if u == nil || u.PasswordHash == nil {
		passwords.DummyVerifyWith(req.Password, e.params)
	} else {
		ok, verr = passwords.Verify(req.Password, *u.PasswordHash)
	}
	e.release()
	if verr != nil {
		return verr
	}
	if !ok {
		err := fail()
		if errors.Is(err, ErrInvalidCredentials) && u != nil && u.PasswordHash != nil && e.sessions.log != nil {
			// A wrong password for an existing account, under the failure
			// limit (so the limit bounds these writes too). A user deleted
			// meanwhile has no log to write to.
			rerr := e.sessions.log.RecordAlone(ctx, OriginOf(c, MethodEmail).event(u.ID, activity.LoginFailed))
			if rerr != nil && !storage.ForeignKeyViolation(rerr) {
				return rerr
			}
		}
		return err
	}
	tok, _, err := e.sessions.Issue(ctx, u.ID, OriginOf(c, MethodEmail))
	if err != nil {
		return err
	}
	return e.sessions.WriteLogin(c, http.StatusOK, MethodEmail, tok, u, false)
}

func (e *Email) addEmail(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	var req loginRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	if err := e.checkPassword(req.Password); err != nil {
		return err
	}
	// The cheap refusals before argon2id, as for sign-up; SetEmail still
	// decides (an email taken meanwhile is refused there).
	if u, err := e.users.Get(c.Request.Context(), id); err != nil {
		return err
	} else if u.Email != nil {
		return users.ErrEmailAlreadySet
	}
	if err := e.users.CheckAvailable(c.Request.Context(), email, "", ""); err != nil {
		return err
	}
	h, err := e.hash(c.Request.Context(), req.Password)
	if err != nil {
		return err
	}
	var mailVerification users.Attach
	if e.verify != nil {
		mailVerification = func(tx *users.Tx, u *users.User) error {
			return e.verify.verificationMail(c.Request.Context(), tx.DB(), u, email)
		}
	}
	u, err := e.users.SetEmail(c.Request.Context(), id, email, h, mailVerification)
	if err != nil {
		return err
	}
	if e.verify != nil {
		e.verify.mailed()
	}
	c.JSON(http.StatusOK, u.View())
	return nil
}
