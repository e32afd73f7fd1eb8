package wallet_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	siwe "github.com/spruceid/siwe-go"

	"github.com/walletauth/walletauth/wallet"
)

// differentialInput is a text both parsers read.
type differentialInput struct {
	name, text string
}

// differentialInputs are the shared EIP-4361 vectors (testdata/siwe) and the
// FuzzParseMessage seed corpus.
func differentialInputs(t *testing.T) []differentialInput {
	t.Helper()
	var in []differentialInput
	type positive struct {
		Message string `json:"message"`
	}
	for name, v := range loadVectors[positive](t, "parsing_positive.json") {
		in = append(in, differentialInput{"parsing_positive/" + name, v.Message})
	}
	for name, msg := range loadVectors[string](t, "parsing_negative.json") {
		in = append(in, differentialInput{"parsing_negative/" + name, msg})
	}
	for name, f := range loadVectors[vectorFields](t, "parsing_negative_objects.json") {
		in = append(in, differentialInput{"parsing_negative_objects/" + name, render(f)})
	}
	for _, file := range []string{"verification_positive.json", "verification_negative.json"} {
		for name, f := range loadVectors[vectorFields](t, file) {
			in = append(in, differentialInput{strings.TrimSuffix(file, ".json") + "/" + name, render(f)})
		}
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseMessage")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		header, lit, ok := strings.Cut(strings.TrimSpace(string(raw)), "\n")
		if !ok || header != "go test fuzz v1" || !strings.HasPrefix(lit, "string(") || !strings.HasSuffix(lit, ")") {
			t.Fatalf("%s: not a one-string corpus file", e.Name())
		}
		text, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lit, "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		in = append(in, differentialInput{"fuzz/" + e.Name(), text})
	}
	sort.Slice(in, func(i, j int) bool { return in[i].name < in[j].name })
	return in
}

// siweParse runs siwe-go's parser, turning a panic into an error.
func siweParse(text string) (m *siwe.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return siwe.ParseMessage(text)
}

// siweTime reads a timestamp siwe-go kept as text.
func siweTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		return "unparsable " + strconv.Quote(s)
	}
	return instant(t)
}

func siweTimeOrNil(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return siweTime(*s)
}

// difference describes how siwe-go's reading of text differs from ours:
// "" when they agree (both refuse, or both accept with the same fields and
// siwe-go writes the text back unchanged), else one of "siwe-go refuses",
// "siwe-go accepts", "siwe-go panics" or "fields: F1 F2 …".
func difference(text string) string {
	ours, ourErr := wallet.ParseMessage(text)
	theirs, theirErr := siweParse(text)
	switch {
	case theirErr != nil && strings.HasPrefix(theirErr.Error(), "panic:"):
		return "siwe-go panics"
	case ourErr != nil && theirErr != nil:
		return ""
	case ourErr == nil && theirErr != nil:
		return "siwe-go refuses"
	case ourErr != nil:
		return "siwe-go accepts"
	}
	var fields []string
	cmp := func(name string, a, b any) {
		if a != b {
			fields = append(fields, name)
		}
	}
	cmp("Domain", ours.Domain, theirs.GetDomain())
	cmp("Address", ours.Address, theirs.GetAddress())
	cmp("Statement", deref(ours.Statement), deref(theirs.GetStatement()))
	uri := theirs.GetURI()
	cmp("URI", ours.URI, uri.String())
	cmp("Version", ours.Version, theirs.GetVersion())
	cmp("ChainID", strconv.FormatUint(ours.ChainID, 10), strconv.Itoa(theirs.GetChainID()))
	cmp("Nonce", ours.Nonce, theirs.GetNonce())
	cmp("IssuedAt", instant(ours.IssuedAt), siweTime(theirs.GetIssuedAt()))
	cmp("ExpirationTime", timeOrNil(ours.ExpirationTime), siweTimeOrNil(theirs.GetExpirationTime()))
	cmp("NotBefore", timeOrNil(ours.NotBefore), siweTimeOrNil(theirs.GetNotBefore()))
	cmp("RequestID", deref(ours.RequestID), deref(theirs.GetRequestID()))
	var res []string
	for _, r := range theirs.GetResources() {
		res = append(res, r.String())
	}
	cmp("Resources", strings.Join(ours.Resources, "\n"), strings.Join(res, "\n"))
	cmp("String", text, theirs.String())
	if len(fields) == 0 {
		return ""
	}
	return "fields: " + strings.Join(fields, " ")
}

// knownDifference is a documented way siwe-go (v0.2.1) reads a text
// differently from ParseMessage: want is what difference reports.
type knownDifference struct {
	want, why string
}

var (
	diffScheme = knownDifference{"siwe-go refuses",
		"the optional scheme before the domain (EIP-4361 added it after siwe-go v0.2.1): siwe-go's domain pattern excludes \"/\", so it refuses a valid vector"}
	diffURICase = knownDifference{"fields: URI String",
		"siwe-go keeps the URI as a net/url URL, whose String() lower-cases the scheme and drops an empty \"#\": its URI and its text are not the signed ones"}
	diffChainZero = knownDifference{"siwe-go accepts",
		"a Chain ID with a leading zero: siwe-go reads any digits; ParseMessage wants a canonical decimal, so one message has one text"}
	diffChainBig = knownDifference{"siwe-go refuses",
		"a Chain ID above 2^63-1: siwe-go holds it in an int; ParseMessage takes any uint64"}
	diffTimeCase = knownDifference{"siwe-go refuses",
		"a lower-case \"t\" or \"z\" in a timestamp: RFC 3339 allows it, siwe-go's ISO 8601 library does not"}
	diffRequestIDEmpty = knownDifference{"fields: RequestID String",
		"an empty Request ID (EIP-4361: *pchar): siwe-go drops it, so its text loses the line that was signed"}
	diffResourcesEmpty = knownDifference{"siwe-go refuses",
		"a \"Resources:\" line with no entries (EIP-4361: *( LF resource )): siwe-go's pattern needs one"}
	diffStatementControl = knownDifference{"siwe-go accepts",
		"a control character (a tab) in the statement: siwe-go takes any line; ParseMessage refuses what could disguise the layout"}
)

// knownDifferences lists every input of differentialInputs that siwe-go reads
// differently, with the reason. The package documentation sums it up.
var knownDifferences = map[string]knownDifference{
	"parsing_positive/domain contains optional scheme": diffScheme,
	"fuzz/b435052f9c574dbc":                            diffScheme,
	"fuzz/v11-56b1157f6c21":                            diffScheme,
	"fuzz/v11-dea06d6934d6":                            diffScheme,
	"fuzz/v11-ee3fd584143a":                            diffScheme,
	"fuzz/7096729de20728cc":                            diffURICase,
	"fuzz/78eaf6c518fb36a8":                            diffURICase,
	"fuzz/977fefb2bb453f97":                            diffURICase,
	"fuzz/bb5a5e5ba2013b3c":                            diffURICase,
	"fuzz/diff-uri-empty-fragment":                     diffURICase,
	"fuzz/diff-chain-leading-zero":                     diffChainZero,
	"fuzz/diff-chain-max-uint64":                       diffChainBig,
	"fuzz/diff-lowercase-t-z":                          diffTimeCase,
	"fuzz/diff-request-id-empty":                       diffRequestIDEmpty,
	"fuzz/diff-resources-empty":                        diffResourcesEmpty,
	"fuzz/diff-statement-tab":                          diffStatementControl,
}

// TestSiweGoDifferential holds siwe-go's parser against ParseMessage over the
// shared EIP-4361 vectors and the fuzz seed corpus: they must agree (accept
// the same texts with the same fields, refuse the same texts) except where
// knownDifferences says otherwise. A new difference fails, and so does a
// listed one that went away.
func TestSiweGoDifferential(t *testing.T) {
	inputs := differentialInputs(t)
	seen := map[string]bool{}
	agreedAccept := 0
	for _, in := range inputs {
		seen[in.name] = true
		got := difference(in.text)
		known, listed := knownDifferences[in.name]
		switch {
		case got == "" && !listed:
			if _, err := wallet.ParseMessage(in.text); err == nil {
				agreedAccept++
			}
		case got == "" && listed:
			t.Errorf("%s: siwe-go now agrees; drop it from knownDifferences (%s)", in.name, known.why)
		case !listed:
			t.Errorf("%s: a difference not in knownDifferences: %s\n%q", in.name, got, in.text)
		case got != known.want:
			t.Errorf("%s: difference %q, knownDifferences says %q (%s)", in.name, got, known.want, known.why)
		}
	}
	for name := range knownDifferences {
		if !seen[name] {
			t.Errorf("knownDifferences lists %q, which is no input", name)
		}
	}
	if agreedAccept < 10 {
		t.Errorf("only %d inputs accepted alike: the differential compares too little", agreedAccept)
	}
}

// TestSiweGoVerifierPanics shows why verification stays in this package:
// siwe-go's verifier indexes byte 64 of any signature, and panics on a
// short one, where VerifyEOA returns ErrInvalidSignature.
func TestSiweGoVerifierPanics(t *testing.T) {
	sm, err := siwe.ParseMessage(fullMessageNoScheme)
	if err != nil {
		t.Fatalf("siwe-go ParseMessage: %v", err)
	}
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		_, _ = sm.VerifyEIP191("0x1234")
		return false
	}()
	if !panicked {
		t.Error("siwe-go no longer panics on a 2-byte signature: reconsider using its verifier")
	}
	m, err := wallet.ParseMessage(fullMessageNoScheme)
	if err != nil {
		t.Fatal(err)
	}
	if err := wallet.VerifyEOA([]byte(m.String()), []byte{0x12, 0x34}, m.Address); !errors.Is(err, wallet.ErrInvalidSignature) {
		t.Errorf("VerifyEOA = %v, want ErrInvalidSignature", err)
	}
}

// fullMessageNoScheme is fullMessage without its scheme, which siwe-go reads.
var fullMessageNoScheme = strings.TrimPrefix(fullMessage, "https://")
