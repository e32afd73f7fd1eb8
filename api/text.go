package api

import (
	"bytes"
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/errs"
)

// The contract's text rule: every string a request carries is Unicode text
// that every database keeps as it is. A NUL character (PostgreSQL's text
// cannot hold one), invalid UTF-8 (PostgreSQL refuses it; encoding/json
// would replace it with U+FFFD) and, in JSON, a lone UTF-16 surrogate
// escape such as "\ud800" (encoding/json replaces it with U+FFFD, so two
// different passwords would become one) are refused with a 400 where the
// request enters: body decoding (Decode), path parameters (PathParam),
// query parameters (Query, GetQuery) and cursors (DecodeCursor). Handlers
// that read input only through these need no checks of their own.

// ValidText reports whether s is valid UTF-8 without a NUL character.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// textProblem says what makes s not text, for an error message.
func textProblem(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return "a NUL character"
	}
	return "invalid UTF-8"
}

// checkJSONText refuses a JSON document holding a string that would not
// decode to the text it spells: invalid UTF-8 anywhere, and in string
// tokens (keys included) a \u0000 escape or a \u escape of a UTF-16
// surrogate that is not a high one followed at once by an escaped low one.
// It does not validate the JSON otherwise: the decoder does.
func checkJSONText(body []byte) *errs.Error {
	if !utf8.Valid(body) {
		return ErrInvalidJSON.WithMessage("the request body is not valid UTF-8")
	}
	if !bytes.Contains(body, []byte(`\u`)) {
		return nil // the common case: no escape to look at
	}
	inString := false
	for i := 0; i < len(body); i++ {
		ch := body[i]
		if !inString {
			inString = ch == '"'
			continue
		}
		switch ch {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(body) {
				return nil
			}
			if body[i+1] != 'u' {
				i++ // a one-character escape, \" and \\ included
				continue
			}
			r, ok := hex4(body, i+2)
			if !ok {
				return nil // malformed: the decoder says so
			}
			i += 5 // on the escape's last digit
			switch {
			case r == 0:
				return ErrInvalidJSON.WithMessage(`a string in the request body holds a NUL character (\u0000)`)
			case r >= 0xDC00 && r <= 0xDFFF:
				return loneSurrogate(r)
			case r >= 0xD800 && r <= 0xDBFF:
				low, ok := hex4(body, i+3)
				if i+2 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' || !ok || low < 0xDC00 || low > 0xDFFF {
					return loneSurrogate(r)
				}
				i += 6
			}
		}
	}
	return nil
}

func loneSurrogate(r rune) *errs.Error {
	return ErrInvalidJSON.WithMessage(`a string in the request body holds a lone UTF-16 surrogate (\u%04x): not a character`, r)
}

// hex4 reads the four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Query returns the query parameter name ("" when absent). A value that is
// not text (ValidText) is refused with bad, the parameter's own error
// (ErrInvalidParam, ErrInvalidCursor, a feature's code).
func Query(c *gin.Context, name string, bad *errs.Error) (string, error) {
	v, _, err := GetQuery(c, name, bad)
	return v, err
}

// GetQuery is Query that also reports whether the parameter was given.
func GetQuery(c *gin.Context, name string, bad *errs.Error) (string, bool, error) {
	v, ok := c.GetQuery(name)
	if ok && !ValidText(v) {
		return "", true, bad.WithMessage("query parameter %s holds %s", name, textProblem(v))
	}
	return v, ok, nil
}

// EncodeCursor makes raw an opaque page cursor (base64url, no padding).
func EncodeCursor(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

// DecodeCursor reverses EncodeCursor: ErrInvalidCursor when s is not
// base64url or what it holds is not text, so that a made-up cursor cannot
// carry a NUL or invalid UTF-8 to the database.
func DecodeCursor(s string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !ValidText(string(raw)) {
		return nil, ErrInvalidCursor
	}
	return raw, nil
}
