package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"gorm.io/gorm"
)

// EmailKey is what emails are compared on (users.email_key, uniquely
// indexed): the Unicode canonical caseless form of email, NFC(fold(NFD)),
// so that "Ärger@x.org", "ärger@x.org" and the NFD spelling "a\u0308rger@x.org"
// are one address on every database. Changing it needs a migration that
// recomputes the column.
func EmailKey(email string) string {
	if isASCII(email) { // ASCII is NFC, and folds to lower case within ASCII
		return strings.ToLower(email)
	}
	// cases.Fold does not normalise: decompose first, compose after.
	return norm.NFC.String(cases.Fold().String(norm.NFD.String(email)))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// EmailCollision is a set of existing accounts whose emails have the same
// EmailKey: the migration that adds the key refuses to choose between them.
type EmailCollision struct {
	Key   string
	Users []CollidingUser // oldest first
}

// CollidingUser is one account of an EmailCollision.
type CollidingUser struct {
	ID       string
	Email    string
	JoinedAt time.Time
}

// EmailCollisionError is migration 0004's refusal: the accounts listed
// share an email once case and Unicode normalisation are ignored. Nothing
// was changed; an operator decides which account keeps the address (see
// docs/email.md, "Email login"), and migrates again.
type EmailCollisionError struct {
	Collisions []EmailCollision
}

// maxListedCollisions bounds the groups an EmailCollisionError's message
// spells out.
const maxListedCollisions = 20

func (e *EmailCollisionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d email address(es) belong to more than one account once compared without case and Unicode normalisation; nothing was changed. "+
		"Leave each address on one account: delete each other account, or, if it has another way to log in, clear its email login "+
		"(UPDATE users SET email = NULL, email_verified = FALSE, password_hash = NULL WHERE id = '…'); then run migrate again (see docs/email.md, Email login):", len(e.Collisions))
	// %+q: NFC and NFD spellings look alike, their escapes do not.
	for i, c := range e.Collisions {
		if i == maxListedCollisions {
			fmt.Fprintf(&b, " … and %d more", len(e.Collisions)-i)
			break
		}
		fmt.Fprintf(&b, " [%q:", c.Key)
		for j, u := range c.Users {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " user %s (%+q, joined %s)", u.ID, u.Email, u.JoinedAt.UTC().Format(time.RFC3339))
		}
		b.WriteString("]")
	}
	return b.String()
}

// emailKeyPage is how many users fillEmailKeys reads at a time.
const emailKeyPage = 1000

// fillEmailKeys sets email_key of every user with an email (the email is
// left as it was typed; new ones are stored in NFC), then refuses (*EmailCollisionError) when two
// accounts have the same key, before the unique index is created.
func fillEmailKeys(ctx context.Context, tx *gorm.DB) error {
	tx = tx.WithContext(ctx)
	after := ""
	for {
		var page []struct {
			ID    string
			Email string
		}
		if err := tx.Raw(`SELECT id, email FROM users WHERE email IS NOT NULL AND id > ? ORDER BY id LIMIT ?`, after, emailKeyPage).
			Scan(&page).Error; err != nil {
			return fmt.Errorf("read emails: %w", err)
		}
		for _, u := range page {
			if err := tx.Exec(`UPDATE users SET email_key = ? WHERE id = ?`, EmailKey(u.Email), u.ID).Error; err != nil {
				return fmt.Errorf("set email key of user %s: %w", u.ID, err)
			}
		}
		if len(page) < emailKeyPage {
			break
		}
		after = page[len(page)-1].ID
	}
	var rows []struct {
		EmailKey string
		ID       string
		Email    string
		JoinedAt time.Time
	}
	if err := tx.Raw(`SELECT email_key, id, email, joined_at FROM users
		WHERE email_key IN (SELECT email_key FROM users WHERE email_key IS NOT NULL GROUP BY email_key HAVING COUNT(*) > 1)
		ORDER BY email_key, joined_at, id`).Scan(&rows).Error; err != nil {
		return fmt.Errorf("find email collisions: %w", err)
	}
	if len(rows) == 0 {
		return nil
	}
	var ce EmailCollisionError
	for _, r := range rows {
		if n := len(ce.Collisions); n == 0 || ce.Collisions[n-1].Key != r.EmailKey {
			ce.Collisions = append(ce.Collisions, EmailCollision{Key: r.EmailKey})
		}
		c := &ce.Collisions[len(ce.Collisions)-1]
		c.Users = append(c.Users, CollidingUser{ID: r.ID, Email: r.Email, JoinedAt: r.JoinedAt})
	}
	return &ce
}
