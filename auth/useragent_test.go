package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// What is stored of a User-Agent is text PostgreSQL takes (no NUL, valid
// UTF-8), without control characters, at most maxUserAgent bytes, cut on
// a character boundary; nothing left is NULL.
func TestCleanUserAgent(t *testing.T) {
	long := strings.Repeat("é", maxUserAgent) // 2 bytes each
	for _, tc := range []struct {
		in   string
		want *string
	}{
		{"", nil},
		{"   ", nil},
		{"\x00\x01", nil},
		{"Mozilla/5.0 (X11)", ptr("Mozilla/5.0 (X11)")},
		{"a\x00b\tc\x7fd\xffe", ptr("abcde")},
		{long, ptr(long[:maxUserAgent])},
		{"x" + long, ptr(("x" + long)[:maxUserAgent-1])},
	} {
		got := cleanUserAgent(tc.in)
		switch {
		case (got == nil) != (tc.want == nil):
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		case got != nil && *got != *tc.want:
			t.Errorf("%q: got %q, want %q", tc.in, *got, *tc.want)
		case got != nil && (!utf8.ValidString(*got) || len(*got) > maxUserAgent):
			t.Errorf("%q: %q is not valid or too long", tc.in, *got)
		}
	}
}

func ptr(s string) *string { return &s }
