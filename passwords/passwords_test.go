package passwords

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func newPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := NewPolicy()
	if err != nil {
		t.Fatalf("NewPolicy: %v", err)
	}
	return p
}

func TestListSize(t *testing.T) {
	p := newPolicy(t)
	if p.Size() < 10000 {
		t.Fatalf("common list has %d entries, want at least 10,000", p.Size())
	}
	// Entries shorter than MinLength are refused by length anyway; the list
	// must still refuse at least 10,000 passwords that pass the length rule.
	long := 0
	for w := range p.common {
		if n := utf8.RuneCountInString(w); n >= MinLength && n <= MaxLength {
			long++
		}
	}
	if long < 10000 {
		t.Fatalf("only %d common entries are %d..%d characters long", long, MinLength, MaxLength)
	}
	t.Logf("%d common passwords, %d of them %d+ characters", p.Size(), long, MinLength)
}

func TestCheck(t *testing.T) {
	p := newPolicy(t)
	cases := []struct {
		pw   string
		want error
	}{
		{"password", ErrCommon},
		{"PASSWORD", ErrCommon},
		{"PassWord", ErrCommon},
		{"12345678", ErrCommon},
		{"qwertyuiop", ErrCommon},
		{"QwertyUIOP", ErrCommon},
		{"1234567890", ErrCommon},
		{"k7#vQz9!w", nil}, // 9 random characters
		{"Tr0ub4dor&3x", nil},
		{"", ErrTooShort},
		{"abc", ErrTooShort},
		{"x9$kQ2m", ErrTooShort}, // 7 characters
		{strings.Repeat("a", 256), nil},
		{strings.Repeat("a", 257), ErrTooLong},
		// Multibyte: 8 runes (24 bytes) is long enough, 7 runes (21 bytes) is not.
		{"日本語のパスワ", ErrTooShort},
		{"日本語のパスワー", nil},
		// 256 runes of 4 bytes (1024 bytes) fits; 257 does not.
		{strings.Repeat("😀", 256), nil},
		{strings.Repeat("😀", 257), ErrTooLong},
	}
	for _, c := range cases {
		err := p.Check(c.pw)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("Check(%.20q) (%d runes) = %v, want %v", c.pw, utf8.RuneCountInString(c.pw), err, c.want)
		}
		if err != nil && !errors.Is(err, ErrWeak) {
			t.Errorf("Check(%.20q) = %v, which does not wrap ErrWeak", c.pw, err)
		}
	}
}

func TestSentinelsWrapErrWeak(t *testing.T) {
	for _, e := range []error{ErrTooShort, ErrTooLong, ErrCommon} {
		if !errors.Is(e, ErrWeak) {
			t.Errorf("%v does not wrap ErrWeak", e)
		}
	}
	if errors.Is(ErrTooShort, ErrCommon) || errors.Is(ErrCommon, ErrTooLong) {
		t.Error("sentinels must be distinct")
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	params := TestParams()
	for _, pw := range []string{"correct horse battery staple", "日本語のパスワード", strings.Repeat("z", MaxLength)} {
		enc, err := Hash(pw, params)
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("unexpected encoding %q", enc)
		}
		ok, err := Verify(pw, enc)
		if err != nil || !ok {
			t.Fatalf("Verify(right password) = %v, %v", ok, err)
		}
		ok, err = Verify(pw+"x", enc)
		if err != nil || ok {
			t.Fatalf("Verify(wrong password) = %v, %v", ok, err)
		}
		if NeedsRehash(enc, params) {
			t.Error("NeedsRehash with the same params")
		}
		if !NeedsRehash(enc, DefaultParams()) {
			t.Error("NeedsRehash with other params should be true")
		}
	}
}

func TestSaltIsRandom(t *testing.T) {
	a, _ := Hash("same password", TestParams())
	b, _ := Hash("same password", TestParams())
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestDefaultParamsEncoding(t *testing.T) {
	enc, err := Hash("a default-params password", DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected encoding %q", enc)
	}
	parts := strings.Split(enc, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 { // 16 and 32 bytes, unpadded base64
		t.Fatalf("salt/hash lengths: %q %q", parts[4], parts[5])
	}
	if ok, err := Verify("a default-params password", enc); err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
}

// Unlike bcrypt, which ignores everything after 72 bytes, every character
// counts: two passwords differing only at character 200 do not verify
// against each other.
func TestNoTruncation(t *testing.T) {
	base := []rune(strings.Repeat("long-passphrase-", 16)) // 256 runes
	other := append([]rune(nil), base...)
	other[199] = '#'
	pw1, pw2 := string(base), string(other)
	if pw1 == pw2 {
		t.Fatal("test passwords are equal")
	}
	p := newPolicy(t)
	if err := p.Check(pw1); err != nil {
		t.Fatalf("Check(256 runes) = %v", err)
	}
	enc, err := Hash(pw1, TestParams())
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := Verify(pw1, enc); !ok {
		t.Fatal("right password refused")
	}
	if ok, _ := Verify(pw2, enc); ok {
		t.Fatal("password differing at character 200 accepted: input is truncated")
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, err := Hash("password-for-parsing", TestParams())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	bad := []string{
		"",
		"$",
		"plaintext",
		"$argon2id$",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$2a$10$abcdefghijklmnopqrstuuKq4vV0f2p0oQ1mCkQ4iJ3gR8m2r6S2m", // bcrypt
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=x$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,k=3$" + salt + "$" + key,
		"$argon2id$v=19$m=-1,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, // would allocate 4 TiB
		"$argon2id$v=19$m=64,t=4294967295,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "==",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10],
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$extra",
		"argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key,
	}
	for _, enc := range bad {
		ok, err := Verify("password-for-parsing", enc)
		if err == nil || ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want false, ErrMalformedHash", enc, ok, err)
		}
		if !NeedsRehash(enc, TestParams()) {
			t.Errorf("NeedsRehash(%q) = false for a malformed hash", enc)
		}
	}
}

func TestHashRejectsBadParams(t *testing.T) {
	for _, p := range []Params{
		{},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 4},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
	} {
		if _, err := Hash("whatever-password", p); err == nil {
			t.Errorf("Hash with %+v succeeded", p)
		}
	}
}

func TestDummyVerify(t *testing.T) {
	// It must run without panicking, whatever the params.
	DummyVerifyWith("some password", TestParams())
	DummyVerifyWith("some password", Params{})
	if testing.Short() {
		return
	}
	DummyVerify("some password")
}

func FuzzVerify(f *testing.F) {
	good, _ := Hash("seed", TestParams())
	f.Add("seed", good)
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, pw, enc string) {
		// Keep the fuzzer cheap: skip encodings asking for a lot of work.
		if p, _, _, err := decode(enc); err == nil && (p.Memory > 1024 || p.Time > 4) {
			return
		}
		ok, err := Verify(pw, enc)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
	})
}

func BenchmarkHashDefault(b *testing.B) {
	params := DefaultParams()
	for b.Loop() {
		if _, err := Hash("correct horse battery staple", params); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	enc, err := Hash("correct horse battery staple", DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _ := Verify("correct horse battery staple", enc); !ok {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkDummyVerify(b *testing.B) {
	for b.Loop() {
		DummyVerify("correct horse battery staple")
	}
}

func BenchmarkCheck(b *testing.B) {
	p := newPolicy(b)
	for b.Loop() {
		_ = p.Check("Correct-Horse-Battery")
	}
}

func BenchmarkNewPolicy(b *testing.B) {
	for b.Loop() {
		if _, err := NewPolicy(); err != nil {
			b.Fatal(err)
		}
	}
}
