package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/errs"
	"github.com/walletauth/walletauth/kv"
	"github.com/walletauth/walletauth/storage"
	"github.com/walletauth/walletauth/users"
	"github.com/walletauth/walletauth/wallet"
)

// Errors of wallet login (their statuses: api's table).
var (
	ErrInvalidAddress         = errs.New("invalid_address", "not an Ethereum address: want 0x + 40 hex digits, all-lower, all-upper or EIP-55 checksummed")
	ErrChallengeChain         = errs.New("chain_not_allowed", "that chain ID is not allowed here")
	ErrInvalidMessage         = errs.New("invalid_message", "not a valid EIP-4361 message")
	ErrInvalidSignature       = errs.New("invalid_signature", "malformed signature: want 0x-prefixed hex")
	ErrRPCUnavailable         = errs.New("rpc_unavailable", "the chain's RPC endpoint could not verify the contract signature in time; retry later")
	ErrSignatureMismatch      = errs.New("signature_mismatch", "the signature was not made by the address in the message")
	ErrNonceInvalid           = errs.New("nonce_invalid", "the nonce is unknown, used or expired; ask for a new challenge")
	ErrMessageExpired         = errs.New("message_expired", "the message's Expiration Time has passed")
	ErrMessageNotYetValid     = errs.New("message_not_yet_valid", "the message is not valid yet (Issued At or Not Before in the future)")
	ErrDomainMismatch         = errs.New("domain_mismatch", "the message's domain or URI is not this service's")
	ErrChainNotAllowed        = errs.New("chain_not_allowed", "the message's chain ID is not allowed here")
	ErrInvalidWalletLoginBody = ErrInvalidMessage.WithMessage("give either message and signature, or address and signature")
)

// WalletConfig are the rules of wallet login.
type WalletConfig struct {
	Domain         string // named in issued challenges
	URI            string
	Statement      string
	AllowedDomains []string
	ChainIDs       []uint64 // the first is the challenge default
	ChallengeTTL   time.Duration
	Skew           time.Duration // 30 s by default
	PerAddress     Rate          // failed logins naming one address from one client IP
	PerIP          Rate          // failed logins from one client IP
	ChallengePerIP Rate          // challenges and nonces issued per client IP
}

// nonceStore is what wallet login needs of the shared store.
type nonceStore interface {
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Get(ctx context.Context, key string) ([]byte, error)
	CompareAndDelete(ctx context.Context, key string, value []byte) (bool, error)
	PushList(ctx context.Context, key string, value []byte, keep int, ttl time.Duration, entries ...kv.Entry) error
	CompareAndDeleteList(ctx context.Context, key string, value []byte) (bool, error)
	List(ctx context.Context, key string) ([][]byte, error)
}

// ContractVerifier checks smart-contract wallet signatures (EIP-1271/6492).
type ContractVerifier interface {
	Verify(ctx context.Context, chainID uint64, address common.Address, hash common.Hash, sig []byte) error
}

// LoginObserver is told the outcome of every login attempt (metrics).
type LoginObserver func(method, outcome string)

// Wallet serves EIP-4361 challenges, wallet login and wallet linking.
type Wallet struct {
	users     *users.Store
	sessions  *Sessions
	store     nonceStore
	contracts ContractVerifier // nil: key-signed wallets only
	limiter   limiter
	cfg       WalletConfig
	now       func() time.Time
	observe   LoginObserver
}

// NewWallet returns the wallet login service. contracts may be nil.
func NewWallet(us *users.Store, s *Sessions, store nonceStore, contracts ContractVerifier, l limiter, cfg WalletConfig, now func() time.Time, observe LoginObserver) *Wallet {
	if now == nil {
		now = time.Now
	}
	if cfg.Skew == 0 {
		cfg.Skew = wallet.DefaultSkew
	}
	if observe == nil {
		observe = func(string, string) {}
	}
	return &Wallet{users: us, sessions: s, store: store, contracts: contracts, limiter: l, cfg: cfg, now: now, observe: observe}
}

// Routes registers the public endpoints on /v1/auth/wallet.
func (w *Wallet) Routes(g *gin.RouterGroup) {
	g.GET("/challenge", api.Handle(w.challenge))
	g.POST("/challenge", api.Handle(w.challenge))
	g.GET("/nonce", api.Handle(w.nonce))
	g.POST("/login", api.Handle(w.login))
}

// MeRoutes registers wallet linking on the authenticated /v1/users/me group.
func (w *Wallet) MeRoutes(me *gin.RouterGroup) {
	me.POST("/wallets", api.Handle(w.link))
	me.DELETE("/wallets/:address", api.Handle(w.onWallet(w.users.RemoveWallet)))
	me.PUT("/wallets/:address/primary", api.Handle(w.onWallet(w.users.SetPrimaryWallet)))
}

// nonceRecord is what the store keeps under a nonce: the address it was
// issued to (empty for a bare nonce) so a nonce cannot be used by another,
// and when it was issued (Unix seconds; 0 in records written before it was
// kept), so a message cannot claim to be older than its nonce.
type nonceRecord struct {
	Address  string `json:"a,omitempty"`
	IssuedAt int64  `json:"t,omitempty"`
}

// challengeRecord is one of the recent challenges issued to an address, for
// the {address, signature} login form: its nonce, chain and Issued At, from
// which (with the configured domain, URI, statement and lifetime)
// challengeMessage makes its text again. A record of ~60 bytes instead of
// the ~450 of the text: without Redis the records of every address that
// signed in stay in process memory for the challenges' lifetime. Records
// written before this change carry the text itself (Message).
type challengeRecord struct {
	Nonce    string `json:"n"`
	Message  string `json:"m,omitempty"`
	ChainID  uint64 `json:"c,omitempty"`
	IssuedAt int64  `json:"t,omitempty"`
}

// challengeMessage is the challenge of addr on chainID with nonce, issued
// at issuedAt (whole seconds, UTC), as challenge issues it.
func (w *Wallet) challengeMessage(addr common.Address, chainID uint64, nonce string, issuedAt time.Time) *wallet.Message {
	exp := issuedAt.Add(w.cfg.ChallengeTTL)
	msg := &wallet.Message{
		Domain: w.cfg.Domain, Address: addr, URI: w.cfg.URI, Version: "1",
		ChainID: chainID, Nonce: nonce, IssuedAt: issuedAt, ExpirationTime: &exp,
	}
	if w.cfg.Statement != "" {
		st := w.cfg.Statement
		msg.Statement = &st
	}
	return msg
}

// RecentChallenges is how many of an address's latest challenges the
// {address, signature} form tries (each usable once, until it expires):
// the contract asks for at least 3, so a client that asked twice, or
// someone else asking for the address, does not break the owner's login.
const RecentChallenges = 5

func nonceKey(n string) string { return "nonce:" + n }

// challengesKey is the list of an address's recent challenges, newest
// first. (Before v1.1 "challenge:" held the last one alone.)
func challengesKey(a common.Address) string { return "challenges:" + wallet.LowerHex(a) }

// newNonce returns 26 characters of base32 (A-Z, 2-7: alphanumerics as
// EIP-4361 and the contract ask, at least 16) carrying 130 bits from the OS
// CSPRNG.
func newNonce() string { return rand.Text() }

type challengeRequest struct {
	Address string          `json:"address" form:"address"`
	ChainID json.RawMessage `json:"chain_id"`
}

type challengeResponse struct {
	Message   string `json:"message"`
	Nonce     string `json:"nonce"`
	ExpiresAt string `json:"expires_at"`
}

// challenge answers a chain ID it does not allow with 400: the chain is a
// bad parameter of the request here, where chain_not_allowed is otherwise
// 401 (a signed message's chain, at login).
func (w *Wallet) challenge(c *gin.Context) error {
	err := w.issueChallenge(c)
	if errors.Is(err, ErrChallengeChain) {
		return api.WithStatus(http.StatusBadRequest, err)
	}
	return err
}

func (w *Wallet) issueChallenge(c *gin.Context) error {
	var req challengeRequest
	chain := ""
	if c.Request.Method == http.MethodPost {
		if err := api.Bind(c, &req); err != nil {
			return err
		}
		var err error
		if chain, err = chainParam(req.ChainID); err != nil {
			return err
		}
	} else {
		var err error
		if req.Address, err = api.Query(c, "address", ErrInvalidAddress); err != nil {
			return err
		}
		if chain, err = api.Query(c, "chain_id", ErrChallengeChain); err != nil {
			return err
		}
	}
	addr, err := wallet.ParseAddress(strings.TrimSpace(req.Address))
	if err != nil {
		return ErrInvalidAddress
	}
	if addr == (common.Address{}) {
		// No key has it, and an EIP-4361 message may not name it: refused
		// here, or msg.Validate below would fail as a server error.
		return ErrInvalidAddress.WithMessage("the zero address cannot sign in")
	}
	chainID := w.cfg.ChainIDs[0]
	if chain != "" {
		id, err := strconv.ParseUint(chain, 10, 64)
		if err != nil || !allowedChain(w.cfg.ChainIDs, id) {
			return ErrChallengeChain.WithMessage("chain ID %q is not allowed here (allowed: %s)", truncate(chain, 32), chainList(w.cfg.ChainIDs))
		}
		chainID = id
	}
	if err := w.allowIssue(c); err != nil { // only what would be stored counts
		return err
	}
	nonce := newNonce()
	now := w.now().UTC().Truncate(time.Second)
	msg := w.challengeMessage(addr, chainID, nonce, now)
	exp := *msg.ExpirationTime
	if err := msg.Validate(); err != nil {
		return fmt.Errorf("auth: issue challenge: %w", err) // a configuration bug: 500
	}
	text := msg.String()
	// The nonce, and the challenge among the address's recent ones (for the
	// {address, signature} login form), in one round trip.
	bound, _ := json.Marshal(nonceRecord{Address: addr.Hex(), IssuedAt: now.Unix()})
	rec, _ := json.Marshal(challengeRecord{Nonce: nonce, ChainID: chainID, IssuedAt: now.Unix()})
	if err := w.store.PushList(c.Request.Context(), challengesKey(addr), rec, RecentChallenges, w.nonceTTL(),
		kv.Entry{Key: nonceKey(nonce), Value: bound}); err != nil {
		return err
	}
	c.JSON(http.StatusOK, challengeResponse{Message: text, Nonce: nonce, ExpiresAt: exp.Format(time.RFC3339)})
	return nil
}

// chainParam reads chain_id of a JSON body: an integer or a decimal string
// (as in the GET form); absent or null means the default. Any other JSON
// type is invalid_json.
func chainParam(raw json.RawMessage) (string, error) {
	raw = json.RawMessage(strings.TrimSpace(string(raw)))
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", api.ErrInvalidJSON
		}
		return s, nil
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return "", api.ErrInvalidJSON.WithMessage("chain_id must be an integer")
		}
	}
	return string(raw), nil
}

// nonceTTL keeps a nonce a little past its message's expiry, so an expired
// message is answered message_expired rather than nonce_invalid.
func (w *Wallet) nonceTTL() time.Duration { return w.cfg.ChallengeTTL + w.cfg.Skew }

func (w *Wallet) saveNonce(ctx context.Context, nonce string, rec nonceRecord) error {
	b, _ := json.Marshal(rec)
	return w.store.Set(ctx, nonceKey(nonce), b, w.nonceTTL())
}

// allowIssue counts a challenge or nonce against the client IP's limit:
// each is kept in the store for its lifetime, so issuing is limited even
// though using one is not.
func (w *Wallet) allowIssue(c *gin.Context) error {
	if w.cfg.ChallengePerIP.Max == 0 { // off: no need to work out the client IP
		return nil
	}
	return allow(c.Request.Context(), w.limiter, "wallet-issue-ip", c.ClientIP(), w.cfg.ChallengePerIP)
}

func (w *Wallet) nonce(c *gin.Context) error {
	if err := w.allowIssue(c); err != nil {
		return err
	}
	nonce := newNonce()
	now := w.now().UTC().Truncate(time.Second)
	if err := w.saveNonce(c.Request.Context(), nonce, nonceRecord{IssuedAt: now.Unix()}); err != nil {
		return err
	}
	exp := now.Add(w.cfg.ChallengeTTL)
	c.JSON(http.StatusOK, gin.H{"nonce": nonce, "expires_at": exp.Format(time.RFC3339)})
	return nil
}

// LoginRequest is the body of wallet login and wallet linking.
type LoginRequest struct {
	Message      string `json:"message"`
	Address      string `json:"address"`
	Signature    string `json:"signature"`
	ReferralCode string `json:"referral_code"`

	parsed *wallet.Message // Message, once parsed (peekAddress), so it is parsed once
}

// verified is a message whose signature checked out.
type verified struct {
	msg       *wallet.Message
	kind      string // users.WalletEOA or users.WalletContract
	challenge bool   // came by the {address, signature} form
}

// verify runs every check of a login body (checkLogin) and counts its
// failures against the client IP, and against the address from that IP:
// the limits refuse further attempts only after repeated failures, so a
// legitimate login, or the losers of a replay race (answered nonce_invalid),
// never count against a wallet that signs correctly. No count is per
// address alone: a signature cannot be guessed, so failures naming an
// address from elsewhere must not lock its owner out.
func (w *Wallet) verify(ctx context.Context, req LoginRequest, ip string) (*verified, error) {
	var subject string
	v, err := w.checkLogin(ctx, req, ip, &subject)
	if err == nil {
		return v, nil
	}
	if s := api.Status(err); s == http.StatusBadRequest || s == http.StatusUnauthorized {
		if herr := hit(ctx, w.limiter, "wallet-fail-ip", ip, w.cfg.PerIP); herr != nil {
			return nil, herr
		}
		if subject != "" {
			if herr := hit(ctx, w.limiter, "wallet-fail-address-ip", addressIP(subject, ip), w.cfg.PerAddress); herr != nil {
				return nil, herr
			}
		}
	}
	return nil, err
}

// addressIP is the key of the per-address-and-IP failure count.
func addressIP(address, ip string) string { return address + "|" + ip }

// checkLogin runs every check of a login body, in an order that gives each
// failure its own code, and consumes the nonce last: a failed verification
// leaves the nonce usable, and of concurrent requests with one valid message
// exactly one gets past Consume.
func (w *Wallet) checkLogin(ctx context.Context, req LoginRequest, ip string, subject *string) (*verified, error) {
	if err := exceeded(ctx, w.limiter, "wallet-fail-ip", ip, w.cfg.PerIP); err != nil {
		return nil, err
	}
	// Stateless checks first: the body's shape, the message's syntax and a
	// malformed signature are refused before anything stateful is looked at.
	if req.Message == "" && req.Address == "" {
		return nil, ErrInvalidWalletLoginBody
	}
	var (
		msg       *wallet.Message
		text      = req.Message
		challenge bool
		kind      string
		err       error
	)
	if text != "" {
		if msg = req.parsed; msg == nil {
			if msg, err = wallet.ParseMessage(text); err != nil {
				return nil, ErrInvalidMessage.WithMessage("not an EIP-4361 message: %s", detail(err)).Wrap(err)
			}
		}
	}
	if req.Signature == "" {
		return nil, ErrInvalidSignature.WithMessage("signature is required")
	}
	sig, err := wallet.ParseSignature(req.Signature)
	if err != nil {
		return nil, ErrInvalidSignature.WithMessage("malformed signature: %s", detail(err))
	}
	if msg == nil { // the {address, signature} form: one of the address's recent challenges
		addr, err := wallet.ParseAddress(strings.TrimSpace(req.Address))
		if err != nil {
			return nil, ErrInvalidAddress
		}
		*subject = wallet.LowerHex(addr)
		if err := exceeded(ctx, w.limiter, "wallet-fail-address-ip", addressIP(*subject, ip), w.cfg.PerAddress); err != nil {
			return nil, err
		}
		if msg, _, kind, err = w.matchChallenge(ctx, addr, sig); err != nil {
			return nil, err
		}
		challenge = true
	} else {
		*subject = wallet.LowerHex(msg.Address)
		if err := exceeded(ctx, w.limiter, "wallet-fail-address-ip", addressIP(*subject, ip), w.cfg.PerAddress); err != nil {
			return nil, err
		}
		if err := msg.Check(w.checkOptions()); err != nil {
			return nil, checkError(err)
		}
		if kind, err = w.verifySignature(ctx, msg, []byte(text), sig); err != nil {
			return nil, err
		}
	}
	issued, err := w.consumeNonce(ctx, msg)
	if err != nil {
		return nil, err
	}
	if issued {
		w.forgetChallenge(ctx, msg)
	}
	return &verified{msg: msg, kind: kind, challenge: challenge}, nil
}

// forgetChallenge drops the address's list of recent challenges when the
// challenge just used is all it holds (the common case: one challenge, one
// sign-in), so an address that signed in leaves nothing behind in the
// store: without Redis the records would otherwise stay in process memory
// for the challenge's lifetime (a few hundred bytes per address, 30 MiB
// after 100k sign-ins). A list with other challenges is left whole. A
// replay of the used challenge in the {address, signature} form is
// nonce_invalid either way (its nonce is gone; with the list gone, no
// challenge is live); so, with the list gone, is any other signature, which
// a list holding only used challenges answered signature_mismatch. Best
// effort: the sign-in has succeeded, and a list left behind expires. With
// Redis it is one more command per sign-in (auto-pipelined), kept for the
// same answers on every backend.
func (w *Wallet) forgetChallenge(ctx context.Context, msg *wallet.Message) {
	rec, _ := json.Marshal(challengeRecord{Nonce: msg.Nonce, ChainID: msg.ChainID, IssuedAt: msg.IssuedAt.Unix()})
	_, _ = w.store.CompareAndDeleteList(ctx, challengesKey(msg.Address), rec)
}

func (w *Wallet) checkOptions() wallet.CheckOptions {
	return wallet.CheckOptions{Now: w.now(), Skew: w.cfg.Skew, AllowedDomains: w.cfg.AllowedDomains, ChainIDs: w.cfg.ChainIDs}
}

// matchChallenge finds the one of addr's recent challenges (newest first,
// expired ones skipped) that sig signs, and how: by key recovery over all
// of them first (cheap), then, when none recovers to addr and contracts are
// checked, by the wallet contract, one challenge after the other. Only the
// nonce decides whether it is still unused (consumeNonce, after this).
// Errors: nonce_invalid when no challenge is live, the newest expired one's
// message_expired, signature_mismatch (or invalid_signature) when sig signs
// none of them, and rpc_unavailable as verifySignature gives it.
func (w *Wallet) matchChallenge(ctx context.Context, addr common.Address, sig []byte) (*wallet.Message, string, string, error) {
	vals, err := w.store.List(ctx, challengesKey(addr))
	if err != nil {
		return nil, "", "", err
	}
	type candidate struct {
		msg  *wallet.Message
		text string
	}
	live := make([]candidate, 0, len(vals))
	var expired error
	opts := w.checkOptions()
	for _, v := range vals {
		// A record this build cannot read (another version's, during a
		// rolling deploy) is skipped, not an error of the whole login.
		var rec challengeRecord
		if err := json.Unmarshal(v, &rec); err != nil || rec.Nonce == "" {
			continue
		}
		var m *wallet.Message
		text := rec.Message
		if text == "" {
			m = w.challengeMessage(addr, rec.ChainID, rec.Nonce, time.Unix(rec.IssuedAt, 0).UTC())
			text = m.String()
		} else if m, err = wallet.ParseMessage(text); err != nil {
			continue
		}
		if err := m.Check(opts); err != nil {
			if expired == nil {
				expired = err
			}
			continue
		}
		live = append(live, candidate{m, text})
	}
	if len(live) == 0 {
		if expired != nil {
			return nil, "", "", checkError(expired)
		}
		return nil, "", "", ErrNonceInvalid.WithMessage("no live challenge for this address; ask for a new one")
	}
	for _, c := range live {
		if got, err := wallet.Recover(wallet.HashEIP191([]byte(c.text)), sig); err == nil && got == addr {
			return c.msg, c.text, users.WalletEOA, nil
		}
	}
	if w.contracts == nil { // nothing else can accept it: one answer says why
		live = live[:1]
	}
	var first error
	for _, c := range live {
		kind, err := w.verifySignature(ctx, c.msg, []byte(c.text), sig)
		if err == nil {
			return c.msg, c.text, kind, nil
		}
		if !errors.Is(err, ErrSignatureMismatch) && !errors.Is(err, ErrInvalidSignature) {
			return nil, "", "", err
		}
		if first == nil {
			first = err
		}
	}
	if errors.Is(first, ErrSignatureMismatch) {
		return nil, "", "", ErrSignatureMismatch.WithMessage("the signature is over none of this address's %d recent challenges (or not by its key or wallet contract)", len(live))
	}
	return nil, "", "", first
}

// verifySignature checks sig by EIP-191 recovery first, then, when recovery
// does not give the address and the chain has an RPC, as a contract wallet
// (EIP-1271, or EIP-6492 for a wallet not deployed yet).
func (w *Wallet) verifySignature(ctx context.Context, msg *wallet.Message, text, sig []byte) (string, error) {
	hash := wallet.HashEIP191(text)
	got, err := wallet.Recover(hash, sig)
	if err == nil && got == msg.Address {
		return users.WalletEOA, nil
	}
	keyShaped := !errors.Is(err, wallet.ErrNotKeySignature)
	if w.contracts == nil {
		return "", noContractError(keyShaped, msg.ChainID)
	}
	cerr := w.contracts.Verify(ctx, msg.ChainID, msg.Address, hash, sig)
	switch {
	case cerr == nil:
		return users.WalletContract, nil
	case errors.Is(cerr, wallet.ErrNoRPC):
		return "", noContractError(keyShaped, msg.ChainID)
	case errors.Is(cerr, wallet.ErrRPCUnavailable):
		return "", ErrRPCUnavailable.Wrap(cerr)
	case errors.Is(cerr, wallet.ErrContractSignatureInvalid):
		return "", ErrSignatureMismatch.WithMessage("the signature is neither the address's key signature nor accepted by a wallet contract at it on chain %d", msg.ChainID)
	}
	return "", cerr
}

func noContractError(keyShaped bool, chain uint64) error {
	if keyShaped {
		return ErrSignatureMismatch.WithMessage("the signature was not made by the address in the message (chain %d has no RPC configured, so only key-signed wallets are verified there)", chain)
	}
	return ErrInvalidSignature.WithMessage("not a 64/65-byte key signature, and chain %d has no RPC configured to verify smart-contract wallet signatures", chain)
}

// consumeNonce uses up the nonce atomically, if it was issued here to this
// address (a challenge) or to nobody (a bare nonce), and no later than the
// message's Issued At (with the skew): message_expired otherwise, and the
// nonce is left alone, as it is when issued to another address
// (nonce_invalid). A challenge's own text (shaped as challenge issues it:
// Expiration Time = Issued At + the lifetime) names its nonce's record
// exactly, so it costs one compare-and-delete on the store; any other
// message, or a guess that missed, a read and a compare-and-delete.
func (w *Wallet) consumeNonce(ctx context.Context, msg *wallet.Message) (issued bool, err error) {
	key := nonceKey(msg.Nonce)
	if exp := msg.ExpirationTime; exp != nil && exp.Equal(msg.IssuedAt.Add(w.cfg.ChallengeTTL)) {
		guess, _ := json.Marshal(nonceRecord{Address: msg.AddressHex(), IssuedAt: msg.IssuedAt.Unix()})
		ok, err := w.store.CompareAndDelete(ctx, key, guess)
		if err != nil || ok {
			return ok, err
		}
	}
	b, err := w.store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return false, ErrNonceInvalid
	}
	if err != nil {
		return false, err
	}
	var rec nonceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return false, fmt.Errorf("auth: nonce record: %w", err)
	}
	if rec.Address != "" && rec.Address != msg.AddressHex() {
		return false, ErrNonceInvalid
	}
	if issued := time.Unix(rec.IssuedAt, 0); rec.IssuedAt != 0 && msg.IssuedAt.Before(issued.Add(-w.cfg.Skew)) {
		return false, ErrMessageExpired.WithMessage("the message's Issued At (%s) is before its nonce was issued (%s); sign a new message",
			msg.IssuedAt.UTC().Format(time.RFC3339), issued.UTC().Format(time.RFC3339))
	}
	ok, err := w.store.CompareAndDelete(ctx, key, b)
	if err != nil {
		return false, err
	}
	if !ok {
		return false, ErrNonceInvalid
	}
	return rec.Address != "", nil
}

// checkError maps wallet.Check's errors to the contract's.
func checkError(err error) error {
	switch {
	case errors.Is(err, wallet.ErrChainNotAllowed):
		return ErrChainNotAllowed
	case errors.Is(err, wallet.ErrDomainMismatch):
		return ErrDomainMismatch.WithMessage("%s", detail(err))
	case errors.Is(err, wallet.ErrMessageExpired):
		return ErrMessageExpired
	case errors.Is(err, wallet.ErrMessageNotYetValid):
		return ErrMessageNotYetValid.WithMessage("the message is not valid yet: %s", detail(err))
	case errors.Is(err, wallet.ErrInvalidMessage):
		return ErrInvalidMessage.WithMessage("%s", detail(err))
	}
	return err
}

// walletSentinels are package wallet's sentinel errors, whose texts
// ("wallet: invalid message") open the errors it wraps with detail.
var walletSentinels = []error{
	wallet.ErrInvalidAddress, wallet.ErrInvalidMessage, wallet.ErrInvalidSignature, wallet.ErrNotKeySignature,
	wallet.ErrSignatureMismatch, wallet.ErrMessageExpired, wallet.ErrMessageNotYetValid,
	wallet.ErrDomainMismatch, wallet.ErrChainNotAllowed,
}

// detail is the text of an error from package wallet for a person, in an
// API message: its detail without the sentinels' "wallet: …: " prefixes
// (nested ones included); the contract's code already says which error.
func detail(err error) string {
	s := err.Error()
	for _, e := range walletSentinels {
		s = strings.ReplaceAll(s, e.Error()+": ", "")
	}
	return strings.ReplaceAll(s, "wallet: ", "")
}

func (w *Wallet) login(c *gin.Context) error {
	var req LoginRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request.Context()
	u, tok, created, err := w.doLogin(ctx, req, c.ClientIP(), OriginOf(c, MethodWallet))
	if err != nil {
		w.observe("wallet", api.Classify(err).Code)
		return err
	}
	w.observe("wallet", "ok")
	return w.sessions.WriteLogin(c, http.StatusOK, MethodWallet, tok, u, created)
}

func (w *Wallet) doLogin(ctx context.Context, req LoginRequest, ip string, o Origin) (*users.User, string, bool, error) {
	// An invalid referral code must not use up the nonce: check it first,
	// when it can matter (the address has no user yet).
	if req.ReferralCode != "" {
		if addr, ok := w.peekAddress(&req); ok {
			if _, err := w.users.GetByWallet(ctx, addr.Bytes()); errors.Is(err, users.ErrNotFound) {
				if err := w.users.CheckReferralCode(ctx, req.ReferralCode); err != nil {
					return nil, "", false, err
				}
			} else if err != nil {
				return nil, "", false, err
			}
		}
	}
	v, err := w.verify(ctx, req, ip)
	if err != nil {
		return nil, "", false, err
	}
	return w.signIn(ctx, v, req.ReferralCode, o)
}

// peekAddress returns the address a login body is about, without checks.
func (w *Wallet) peekAddress(req *LoginRequest) (common.Address, bool) {
	if req.Message != "" {
		m, err := wallet.ParseMessage(req.Message)
		if err != nil {
			return common.Address{}, false
		}
		req.parsed = m
		return m.Address, true
	}
	a, err := wallet.ParseAddress(strings.TrimSpace(req.Address))
	return a, err == nil
}

// signIn returns the user owning the wallet and a new session's token,
// creating the user (with its wallet and session, in one transaction) on
// the first login. A returning wallet whose owner is cached costs one
// statement: the session INSERT, which checks the ownership itself. Every
// returning session is written on that condition, the owner read from the
// database too, so a wallet moving between the read and the write is
// looked up again rather than signed in to its former owner.
func (w *Wallet) signIn(ctx context.Context, v *verified, referral string, o Origin) (*users.User, string, bool, error) {
	addr := v.msg.Address.Bytes()
	if hint, ok := w.users.CachedByWallet(addr); ok {
		tok, _, err := w.sessions.IssueForWallet(ctx, hint.ID, addr, o)
		if err == nil {
			return hint, tok, false, nil
		}
		if !errors.Is(err, ErrNotOwner) {
			return nil, "", false, err
		}
		// Moved or unlinked meanwhile: the database says who owns it now.
	}
	for range 3 {
		u, tok, err := w.findOrCreate(ctx, v, referral, o)
		if err != nil {
			return nil, "", false, err
		}
		if tok != "" {
			return u, tok, true, nil
		}
		tok, _, err = w.sessions.IssueForWallet(ctx, u.ID, addr, o)
		if err == nil {
			return u, tok, false, nil
		}
		if !errors.Is(err, ErrNotOwner) {
			return nil, "", false, err
		}
	}
	return nil, "", false, api.ErrUnavailable.WithMessage("the wallet changed owner during the sign-in; retry")
}

// findOrCreate returns the user owning the wallet, creating it on the first
// login together with its wallet and session in one transaction (the token
// is returned only then). Concurrent first logins of one address race on
// the wallets primary key: the loser reads the winner's user.
func (w *Wallet) findOrCreate(ctx context.Context, v *verified, referral string, o Origin) (*users.User, string, error) {
	addr := v.msg.Address.Bytes()
	u, err := w.users.GetByWallet(ctx, addr)
	if err == nil {
		return u, "", nil
	}
	if !errors.Is(err, users.ErrNotFound) {
		return nil, "", err
	}
	var tok string
	issue := w.sessions.NewTxIssue(o)
	u, err = w.users.Create(ctx, users.NewUser{ReferralCode: referral}, func(tx *users.Tx, u *users.User) error {
		wl := &users.Wallet{Address: addr, UserID: u.ID, ChainID: v.msg.ChainID, Type: v.kind, LinkedAt: u.JoinedAt}
		if err := tx.InsertFirstWallet(wl); err != nil {
			return err
		}
		u.Wallets = []users.Wallet{*wl}
		var err error
		tok, _, err = issue.Issue(ctx, tx.DB(), u.ID)
		return err
	})
	if errors.Is(err, users.ErrWalletTaken) || storage.IsUnique(err) {
		u, err = w.users.GetByWallet(ctx, addr)
		return u, "", err
	}
	if err != nil {
		return nil, "", err
	}
	issue.Committed()
	return u, tok, nil
}

func (w *Wallet) link(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	var req LoginRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx := activity.WithClient(c.Request.Context(), c.ClientIP(), c.Request.UserAgent())
	// Refuse a wallet owned by someone else before using up the nonce.
	if addr, ok := w.peekAddress(&req); ok {
		if owner, err := w.users.GetByWallet(ctx, addr.Bytes()); err == nil && owner.ID != id {
			return users.ErrWalletTaken
		}
	}
	v, err := w.verify(ctx, req, c.ClientIP())
	if err != nil {
		return err
	}
	u, err := w.users.AddWallet(ctx, users.Wallet{Address: v.msg.Address.Bytes(), UserID: id, ChainID: v.msg.ChainID, Type: v.kind})
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, u.View())
	return nil
}

// onWallet serves the /v1/users/me/wallets/{address} endpoints: op runs on
// the current user and the path's address (unlink, make primary).
func (w *Wallet) onWallet(op func(ctx context.Context, userID string, addr []byte) (*users.User, error)) api.HandlerFunc {
	return func(c *gin.Context) error {
		id, err := users.CurrentUserID(c)
		if err != nil {
			return err
		}
		raw, err := api.PathParam(c, "address", ErrInvalidAddress)
		if err != nil {
			return err
		}
		addr, err := wallet.ParseAddress(raw)
		if err != nil {
			return ErrInvalidAddress
		}
		u, err := op(activity.WithClient(c.Request.Context(), c.ClientIP(), c.Request.UserAgent()), id, addr.Bytes())
		if err != nil {
			return err
		}
		c.JSON(http.StatusOK, u.View())
		return nil
	}
}

func allowedChain(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// chainList writes chain IDs for a person: "1, 5".
func chainList(ids []uint64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, ", ")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
