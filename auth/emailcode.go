package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/emailcode"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/mail"
	"github.com/walletauth/walletauth/passwords"
	"github.com/walletauth/walletauth/users"
)

// Errors of email verification.
var (
	ErrEmailNotSet          = errs.New("email_not_set", "this account has no email address")
	ErrEmailAlreadyVerified = errs.New("email_already_verified", "this account's email is already verified")
)

// Mailer queues mail in the caller's transaction (mail.Outbox).
type Mailer interface {
	Enqueue(ctx context.Context, tx *gorm.DB, m mail.Message) (string, error)
	// Discard deletes in tx a mail enqueued in tx.
	Discard(ctx context.Context, tx *gorm.DB, id string) error
}

// Renderer renders a mail (mail.Templates).
type Renderer interface {
	Render(kind, language string, d mail.Data) (mail.Message, error)
}

// CodeLimits are the limits on asking for mailed codes.
type CodeLimits struct {
	PerAddress Rate
	PerIP      Rate
}

// EmailCodes serves the flows that prove a mailbox with a mailed code:
// passwordless sign-in, password reset, email verification and change, and
// the password change.
type EmailCodes struct {
	email  *Email
	codes  *emailcode.Codes
	mailer Mailer
	render Renderer
	notify func() // a mail was queued: wake the sender
	limits CodeLimits
}

// NewEmailCodes returns the code flows over the email login service e. It
// also makes e mail a verification code after signup and POST
// /v1/users/me/email. notify may be nil.
func NewEmailCodes(e *Email, codes *emailcode.Codes, mailer Mailer, render Renderer, notify func(), limits CodeLimits) *EmailCodes {
	if notify == nil {
		notify = func() {}
	}
	ec := &EmailCodes{email: e, codes: codes, mailer: mailer, render: render, notify: notify, limits: limits}
	e.verify = ec
	return ec
}

// Routes registers the public endpoints on /v1/auth.
func (ec *EmailCodes) Routes(authGroup *gin.RouterGroup) {
	authGroup.POST("/email/otp", api.Handle(ec.otp))
	authGroup.POST("/email/otp/verify", api.Handle(ec.otpVerify))
	authGroup.POST("/password/forgot", api.Handle(ec.forgot))
	authGroup.POST("/password/reset", api.Handle(ec.reset))
}

// MeRoutes registers the authenticated endpoints on /v1/users/me.
func (ec *EmailCodes) MeRoutes(me *gin.RouterGroup) {
	me.POST("/email/verification", api.Handle(ec.sendVerification))
	me.POST("/email/verification/confirm", api.Handle(ec.confirmVerification))
	me.PUT("/password", api.Handle(ec.changePassword))
}

type emailRequest struct {
	Email string `json:"email"`
}

type expiresResponse struct {
	ExpiresAt string `json:"expires_at"`
}

// limit counts one code request for the address and the client IP.
func (ec *EmailCodes) limit(ctx context.Context, key, ip string) error {
	if err := allow(ctx, ec.email.limiter, "email-send-ip", ip, ec.limits.PerIP); err != nil {
		return err
	}
	return allow(ctx, ec.email.limiter, "email-send-address", key, ec.limits.PerAddress)
}

// queue issues a code and writes its mail in one transaction; the sender
// is woken after the commit.
func (ec *EmailCodes) queue(ctx context.Context, p emailcode.Purpose, subject, kind, to, language string) (time.Time, error) {
	code, exp, err := ec.codes.Issue(ctx, p, subject, to)
	if err != nil {
		return time.Time{}, err
	}
	m, err := ec.render.Render(kind, language, mail.Data{Code: code, Email: to, Minutes: int(ec.codes.TTL().Round(time.Minute) / time.Minute)})
	if err != nil {
		return time.Time{}, err
	}
	err = ec.email.sessions.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		_, err := ec.mailer.Enqueue(ctx, tx, m)
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	ec.notify()
	return exp, nil
}

// lookup finds the account of an email; nil, nil when there is none.
func (ec *EmailCodes) lookup(ctx context.Context, email string) (*users.User, error) {
	u, err := ec.email.users.GetByEmail(ctx, email)
	if errors.Is(err, users.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

// otp mails a sign-in code; the same answer whether or not an account has
// the address (a code is mailed either way: the first sign-in creates one).
func (ec *EmailCodes) otp(c *gin.Context) error {
	var req emailRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	key := users.EmailKey(email)
	if err := ec.limit(ctx, key, c.ClientIP()); err != nil {
		return err
	}
	u, err := ec.lookup(ctx, email)
	if err != nil {
		return err
	}
	lang := ""
	if u != nil {
		lang = u.Language
	}
	exp, err := ec.queue(ctx, emailcode.Login, key, mail.KindLoginCode, email, lang)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, expiresResponse{ExpiresAt: exp.Format(users.TimeFormat)})
	return nil
}

type otpVerifyRequest struct {
	Email        string `json:"email"`
	Code         string `json:"code"`
	ReferralCode string `json:"referral_code"`
}

// otpVerify signs in with a mailed code: into the account of the address,
// verified or not, or into a new one; the address is verified either way.
func (ec *EmailCodes) otpVerify(c *gin.Context) error {
	var req otpVerifyRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	// Checked before the code is used up: a typo in the referral code must
	// not cost the code.
	if strings.TrimSpace(req.ReferralCode) != "" {
		if err := ec.email.users.CheckReferralCode(ctx, req.ReferralCode); err != nil {
			return err
		}
	}
	// The account is made with the address as the code was mailed to.
	if email, err = ec.codes.Consume(ctx, emailcode.Login, users.EmailKey(email), strings.TrimSpace(req.Code)); err != nil {
		return err
	}
	s := ec.email.sessions
	for attempt := 0; attempt < 2; attempt++ {
		u, err := ec.lookup(ctx, email)
		if err != nil {
			return err
		}
		if u != nil {
			// A password on an account whose mailbox was never proven was
			// set by whoever signed up with the address, perhaps not its
			// owner (account pre-hijacking): the first proof of the mailbox
			// removes it and ends the account's other sessions. The owner
			// sets a password again with PUT /v1/users/me/password.
			var set passwordChange
			if !u.EmailVerified && u.PasswordHash != nil {
				set.clearPassword = true
			}
			tok, err := ec.loginVerified(ctx, u, OriginOf(c, MethodEmailCode), set)
			if err != nil {
				return err
			}
			if set.clearPassword {
				u.PasswordHash = nil
			}
			return s.WriteLogin(c, http.StatusOK, MethodEmailCode, tok, u, false)
		}
		var tok string
		issue := s.NewTxIssue(OriginOf(c, MethodEmailCode))
		u, err = ec.email.users.Create(ctx, users.NewUser{Email: &email, EmailVerified: true, ReferralCode: req.ReferralCode},
			func(tx *users.Tx, u *users.User) error {
				var err error
				tok, _, err = issue.Issue(ctx, tx.DB(), u.ID)
				return err
			})
		if errors.Is(err, users.ErrEmailTaken) {
			continue // created concurrently: sign into it
		}
		if err != nil {
			return err
		}
		issue.Committed()
		return s.WriteLogin(c, http.StatusOK, MethodEmailCode, tok, u, true)
	}
	return fmt.Errorf("auth: code sign-in: the account of the address kept changing")
}

// passwordChange is what a sign-in by mailed code does to the password:
// nothing (the zero value), remove it (clearPassword), or set a new one
// (newPassword, a reset). Either change ends every other session.
type passwordChange struct {
	clearPassword bool
	newPassword   *string
}

func (p passwordChange) endSessions() bool { return p.clearPassword || p.newPassword != nil }

// loginVerified marks u's email verified and opens a session, in one
// transaction; with set (a password reset) it also applies set and ends
// every other session of u. u is updated to what was committed.
func (ec *EmailCodes) loginVerified(ctx context.Context, u *users.User, o Origin, set passwordChange) (string, error) {
	s := ec.email.sessions
	issue := s.NewTxIssue(o)
	var tok string
	err := ec.email.users.InTx(ctx, func(t *users.Tx) error {
		tx := t.DB()
		// Partners hear of email_verified when it changes (user.updated).
		err := t.VerifyEmail(u.ID, u.EmailVerified, set.endSessions(), set.newPassword)
		if errors.Is(err, users.ErrNotFound) {
			return emailcode.ErrCodeInvalid // the account was deleted meanwhile
		}
		if err != nil {
			return err
		}
		if !u.EmailVerified {
			if err := s.record(tx, o.event(u.ID, activity.EmailVerified)); err != nil {
				return err
			}
		}
		if set.newPassword != nil {
			if err := s.record(tx, o.event(u.ID, activity.PasswordReset)); err != nil {
				return err
			}
		}
		if set.endSessions() {
			if err := tx.Where("user_id = ?", u.ID).Delete(&Session{}).Error; err != nil {
				return fmt.Errorf("auth: end sessions: %w", err)
			}
		}
		tok, _, err = issue.Issue(ctx, tx, u.ID)
		return err
	})
	if err != nil {
		return "", err
	}
	if set.endSessions() {
		if err := s.forgetUser(ctx, u.ID); err != nil {
			return "", err
		}
	}
	issue.Committed()
	u.EmailVerified = true
	return tok, nil
}

// forgetUser drops the cached sessions of userID on every instance, as
// RevokeAll does after deleting them.
func (s *Sessions) forgetUser(ctx context.Context, userID string) error {
	if s.cache == nil {
		return nil
	}
	if err := s.cache.ForgetUser(ctx, userID); err != nil {
		return fmt.Errorf("auth: end other sessions: %w", err)
	}
	return nil
}

// forgot mails a reset code when an account has the address, and answers
// 202 either way, after the same work (a code is issued and a mail
// rendered for an unknown address too, then dropped).
func (ec *EmailCodes) forgot(c *gin.Context) error {
	var req emailRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		c.Status(http.StatusAccepted) // nothing to mail; the same answer
		return nil
	}
	ctx := c.Request.Context()
	key := users.EmailKey(email)
	if err := ec.limit(ctx, key, c.ClientIP()); err != nil {
		return err
	}
	u, err := ec.lookup(ctx, email)
	if err != nil {
		return err
	}
	if u != nil && u.Email != nil {
		if _, err := ec.queue(ctx, emailcode.Reset, key, mail.KindPasswordReset, *u.Email, u.Language); err != nil {
			return err
		}
	} else {
		// The same store, rendering and database work as a real reset
		// request, so the time does not tell either; nothing is mailed,
		// and the code cannot reset anything: no account has the address.
		code, _, err := ec.codes.Issue(ctx, emailcode.Reset, key, email)
		if err != nil {
			return err
		}
		m, err := ec.render.Render(mail.KindPasswordReset, "", mail.Data{Code: code, Email: email, Minutes: int(ec.codes.TTL() / time.Minute)})
		if err != nil {
			return err
		}
		err = ec.email.sessions.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			id, err := ec.mailer.Enqueue(ctx, tx, m)
			if err != nil {
				return err
			}
			return ec.mailer.Discard(ctx, tx, id)
		})
		if err != nil {
			return err
		}
	}
	c.Status(http.StatusAccepted)
	return nil
}

type resetRequest struct {
	Email    string `json:"email"`
	Code     string `json:"code"`
	Password string `json:"password"`
}

// reset sets a new password with a mailed code, verifies the address and
// ends every other session of the account.
func (ec *EmailCodes) reset(c *gin.Context) error {
	var req resetRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return emailcode.ErrCodeInvalid // no code was mailed to a malformed address
	}
	if err := ec.email.checkPassword(req.Password); err != nil {
		return err // before the code is used up
	}
	ctx := c.Request.Context()
	if _, err := ec.codes.Consume(ctx, emailcode.Reset, users.EmailKey(email), strings.TrimSpace(req.Code)); err != nil {
		return err
	}
	u, err := ec.lookup(ctx, email)
	if err != nil {
		return err
	}
	if u == nil {
		return emailcode.ErrCodeInvalid
	}
	h, err := ec.email.hash(ctx, req.Password)
	if err != nil {
		return err
	}
	tok, err := ec.loginVerified(ctx, u, OriginOf(c, MethodPasswordReset), passwordChange{newPassword: &h})
	if err != nil {
		return err
	}
	u.PasswordHash = &h
	return ec.email.sessions.WriteLogin(c, http.StatusOK, MethodPasswordReset, tok, u, false)
}

// sendVerification mails a verification code: to the given address (an
// email change) or to the account's own.
func (ec *EmailCodes) sendVerification(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	var req struct {
		Email *string `json:"email"`
	}
	body, err := api.ReadBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 { // the body is optional here
		if err := api.Decode(body, &req); err != nil {
			return err
		}
	}
	ctx := c.Request.Context()
	u, err := ec.email.users.Get(ctx, id)
	if errors.Is(err, users.ErrNotFound) {
		return api.ErrUnauthorized
	}
	if err != nil {
		return err
	}
	var to string
	own := func() error {
		switch {
		case u.Email == nil:
			return ErrEmailNotSet
		case u.EmailVerified:
			return ErrEmailAlreadyVerified
		}
		to = *u.Email
		return nil
	}
	if req.Email != nil {
		email, err := NormalizeEmail(*req.Email)
		if err != nil {
			return err
		}
		if u.Email != nil && users.EmailKey(*u.Email) == users.EmailKey(email) {
			if err := own(); err != nil {
				return err
			}
		} else {
			other, err := ec.lookup(ctx, email)
			if err != nil {
				return err
			}
			if other != nil && other.ID != u.ID {
				return users.ErrEmailTaken
			}
			to = email
		}
	} else if err := own(); err != nil {
		return err
	}
	if err := ec.limit(ctx, users.EmailKey(to), c.ClientIP()); err != nil {
		return err
	}
	exp, err := ec.queue(ctx, emailcode.Verify, u.ID, mail.KindVerifyEmail, to, u.Language)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, expiresResponse{ExpiresAt: exp.Format(users.TimeFormat)})
	return nil
}

// verificationMail issues the verification code of a new account or newly
// added address and queues its mail in tx (signup, POST /v1/users/me/email).
// The caller calls mailed after its commit.
func (ec *EmailCodes) verificationMail(ctx context.Context, tx *gorm.DB, u *users.User, email string) error {
	code, _, err := ec.codes.Issue(ctx, emailcode.Verify, u.ID, email)
	if err != nil {
		return err
	}
	m, err := ec.render.Render(mail.KindVerifyEmail, u.Language, mail.Data{Code: code, Email: email, Minutes: int(ec.codes.TTL().Round(time.Minute) / time.Minute)})
	if err != nil {
		return err
	}
	_, err = ec.mailer.Enqueue(ctx, tx, m)
	return err
}

func (ec *EmailCodes) mailed() { ec.notify() }

// confirmVerification makes the address the code was mailed to the
// account's email, verified.
func (ec *EmailCodes) confirmVerification(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	var req struct {
		Code string `json:"code"`
	}
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	email, err := ec.codes.Consume(ctx, emailcode.Verify, id, strings.TrimSpace(req.Code))
	if err != nil {
		return err
	}
	us := ec.email.users
	err = us.InTx(ctx, func(t *users.Tx) error {
		// Partners hear of the new, verified email (user.updated).
		before, err := t.ConfirmEmail(id, email)
		if errors.Is(err, users.ErrNotFound) {
			return api.ErrUnauthorized
		}
		if err != nil {
			return err
		}
		typ := activity.EmailVerified // its address before: a new one is email.changed
		if before == nil || *before != email {
			typ = activity.EmailChanged
		}
		return ec.email.sessions.record(t.DB(), OriginOf(c, "").event(id, typ))
	})
	if err != nil {
		return err
	}
	u, err := us.Get(ctx, id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, u.View())
	return nil
}

type changePasswordRequest struct {
	CurrentPassword *string `json:"current_password"`
	Password        string  `json:"password"`
}

// changePassword sets a new password (the current one required when the
// account has one) and ends every other session of the account.
func (ec *EmailCodes) changePassword(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	var req changePasswordRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	e := ec.email
	u, err := e.users.Get(ctx, id)
	if errors.Is(err, users.ErrNotFound) {
		return api.ErrUnauthorized
	}
	if err != nil {
		return err
	}
	if u.Email == nil {
		return ErrEmailNotSet
	}
	if u.PasswordHash != nil {
		account := strings.ToLower(strings.TrimSpace(*u.Email))
		if err := exceeded(ctx, e.limiter, "email-fail-account", account, e.limits.FailPerAccount); err != nil {
			return err
		}
		cur := ""
		if req.CurrentPassword != nil {
			cur = *req.CurrentPassword
		}
		ok := false
		if cur != "" && len(cur) <= 4*256 {
			if err := e.acquire(ctx); err != nil {
				return err
			}
			var verr error
			ok, verr = passwords.Verify(cur, *u.PasswordHash)
			e.release()
			if verr != nil {
				return verr
			}
		}
		if !ok {
			if err := hit(ctx, e.limiter, "email-fail-account", account, e.limits.FailPerAccount); err != nil {
				return err
			}
			return ErrInvalidCredentials
		}
	}
	if err := e.checkPassword(req.Password); err != nil {
		return err
	}
	h, err := e.hash(ctx, req.Password)
	if err != nil {
		return err
	}
	cur, err := currentSession(c)
	if err != nil {
		return err
	}
	keep := cur.hash
	err = e.users.InTx(ctx, func(t *users.Tx) error {
		err := t.SetPasswordHash(id, &h)
		if errors.Is(err, users.ErrNotFound) {
			return api.ErrUnauthorized
		}
		if err != nil {
			return err
		}
		if err := t.DB().Where("user_id = ? AND token_hash <> ?", id, keep[:]).Delete(&Session{}).Error; err != nil {
			return fmt.Errorf("auth: end other sessions: %w", err)
		}
		return e.sessions.record(t.DB(), OriginOf(c, "").event(id, activity.PasswordChanged))
	})
	if err != nil {
		return err
	}
	if err := e.sessions.forgetUser(ctx, id); err != nil {
		return err
	}
	u.PasswordHash = &h
	c.JSON(http.StatusOK, u.View())
	return nil
}
