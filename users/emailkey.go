package users

import (
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// EmailKey is the form under which an email address is compared: Unicode
// NFC, then full case folding, then NFC again (folding can denormalise), so
// `Ärger@x.org`, `ärger@x.org` and their NFD spellings are one key. Codes,
// rate limits and lookups of email verification use it.
func EmailKey(email string) string {
	s := norm.NFC.String(strings.TrimSpace(email))
	return norm.NFC.String(cases.Fold().String(s))
}
