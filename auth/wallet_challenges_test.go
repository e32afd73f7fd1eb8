package auth_test

// Wallet login's challenge rules (contract v1.1), on every backend: the
// address form accepts any of the address's recent challenges, each once;
// a message may not be older than its nonce; failures naming an address do
// not lock its owner out.

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/wallet"
)

// doFrom sends a request from the client IP ip (apitest.NewRequest's
// bodies).
func (e *env) doFrom(tb testing.TB, ip, method, path string, body any) *httptest.ResponseRecorder {
	tb.Helper()
	return apitest.Do(tb, e.router, ip, method, path, body)
}

// addressLogin posts an {address, signature} body from clientIP.
func (e *env) addressLogin(tb testing.TB, s signer, msg string) *httptest.ResponseRecorder {
	tb.Helper()
	return e.do(tb, http.MethodPost, loginPath, map[string]string{"address": s.addr.Hex(), "signature": hex0x(s.sign(tb, msg))}, "")
}

// TestWalletLoginRecentChallenges: asking for a new challenge, the owner or
// anyone else, does not break the owner's {address, signature} login over
// an earlier one; each of the last auth.RecentChallenges is usable once.
func TestWalletLoginRecentChallenges(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			t.Run("someone else asks for the owner's address", func(t *testing.T) {
				s := newSigner(t)
				mine := e.challenge(t, s.addr.Hex())
				for range auth.RecentChallenges - 1 {
					if rec := e.doFrom(t, "203.0.113.66", http.MethodGet, "/v1/auth/wallet/challenge?address="+s.addr.Hex(), nil); rec.Code != http.StatusOK {
						t.Fatalf("attacker's challenge: %d %s", rec.Code, rec.Body)
					}
				}
				wantLogin(t, e.addressLogin(t, s, mine.Message), s.addr, true)
				apitest.WantError(t, e.addressLogin(t, s, mine.Message), http.StatusUnauthorized, "nonce_invalid")
				apitest.WantError(t, e.login(t, mine.Message, s.sign(t, mine.Message)), http.StatusUnauthorized, "nonce_invalid")
			})
			t.Run("each of the last challenges, in any order, once", func(t *testing.T) {
				s := newSigner(t)
				msgs := make([]string, auth.RecentChallenges)
				for i := range msgs {
					msgs[i] = e.challenge(t, s.addr.Hex()).Message
				}
				for _, i := range []int{2, 0, 4, 1, 3} {
					wantLogin(t, e.addressLogin(t, s, msgs[i]), s.addr, i == 2)
				}
				for _, m := range msgs {
					apitest.WantError(t, e.addressLogin(t, s, m), http.StatusUnauthorized, "nonce_invalid")
				}
			})
			t.Run("only the last ones", func(t *testing.T) {
				s := newSigner(t)
				oldest := e.challenge(t, s.addr.Hex())
				for range auth.RecentChallenges {
					e.challenge(t, s.addr.Hex())
				}
				apitest.WantError(t, e.addressLogin(t, s, oldest.Message), http.StatusUnauthorized, "signature_mismatch")
				// A signature over none of them, by another key or over
				// another text.
				apitest.WantError(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": s.addr.Hex(), "signature": hex0x(newSigner(t).sign(t, oldest.Message))}, ""),
					http.StatusUnauthorized, "signature_mismatch")
				apitest.WantError(t, e.addressLogin(t, s, "not a challenge"), http.StatusUnauthorized, "signature_mismatch")
				// The message form does not depend on the address's list:
				// the oldest challenge's nonce is still good there.
				wantLogin(t, e.login(t, oldest.Message, s.sign(t, oldest.Message)), s.addr, true)
			})
			t.Run("expired ones are skipped", func(t *testing.T) {
				s := newSigner(t)
				old := e.challenge(t, s.addr.Hex())
				e.clock.Advance(3 * time.Minute)
				fresh := e.challenge(t, s.addr.Hex())
				e.clock.Advance(challengeTTL - 3*time.Minute + skew + time.Second) // old is past its expiry and the skew
				apitest.WantError(t, e.addressLogin(t, s, old.Message), http.StatusUnauthorized, "signature_mismatch")
				wantLogin(t, e.addressLogin(t, s, fresh.Message), s.addr, true)
			})
			t.Run("no challenge", func(t *testing.T) {
				s := newSigner(t)
				apitest.WantError(t, e.addressLogin(t, s, "anything"), http.StatusUnauthorized, "nonce_invalid")
			})
		})
	}
}

// TestWalletLoginRecentChallengesConcurrent: the owner signs several
// challenges of one address and sends each three times at once (two
// clients of one wallet, retries): every challenge signs in exactly once,
// the other requests get nonce_invalid, one user is created, and a later
// replay of each gets nonce_invalid, in either form.
func TestWalletLoginRecentChallengesConcurrent(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			s := newSigner(t)
			const n, copies = auth.RecentChallenges, 3
			msgs := make([]string, n)
			sigs := make([][]byte, n)
			for i := range msgs {
				msgs[i] = e.challenge(t, s.addr.Hex()).Message
				sigs[i] = s.sign(t, msgs[i])
			}
			recs := make([]*httptest.ResponseRecorder, n*copies)
			parallel(len(recs), func(i int) {
				recs[i] = e.do(t, http.MethodPost, loginPath, map[string]string{"address": s.addr.Hex(), "signature": hex0x(sigs[i%n])}, "")
			})
			wins := make([]int, n)
			created, users := 0, map[string]bool{}
			for i, rec := range recs {
				if rec.Code != http.StatusOK {
					apitest.WantError(t, rec, http.StatusUnauthorized, "nonce_invalid")
					continue
				}
				wins[i%n]++
				l := apitest.DecodeOK[apitest.Login](t, rec)
				if *l.Created {
					created++
				}
				users[l.User.ID] = true
			}
			for i, w := range wins {
				if w != 1 {
					t.Fatalf("challenge %d signed in %d times of %d, want exactly once (wins %v)", i, w, copies, wins)
				}
			}
			if created != 1 || len(users) != 1 {
				t.Fatalf("%d created, %d users; want 1 and 1", created, len(users))
			}
			for i := range msgs {
				apitest.WantError(t, e.do(t, http.MethodPost, loginPath, map[string]string{"address": s.addr.Hex(), "signature": hex0x(sigs[i])}, ""),
					http.StatusUnauthorized, "nonce_invalid")
				apitest.WantError(t, e.login(t, msgs[i], sigs[i]), http.StatusUnauthorized, "nonce_invalid")
			}
		})
	}
}

// TestWalletLoginIssuedBeforeNonce: v1.1 refuses a message whose Issued At
// is more than the skew before its nonce was issued (message_expired), and
// leaves the nonce usable by a correct message.
func TestWalletLoginIssuedBeforeNonce(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b.open(t)...)
			s := newSigner(t)
			now := e.clock.Now()
			nonce := e.nonce(t)
			for _, issued := range []time.Time{
				time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), // no expiry either
				now.Add(-skew - time.Second),
			} {
				msg := e.selfMessage(t, s.addr, nonce, func(m *wallet.Message) { m.IssuedAt = issued })
				apitest.WantError(t, e.login(t, msg, s.sign(t, msg)), http.StatusUnauthorized, "message_expired")
			}
			// A challenge's nonce, in a message the client built with an
			// older Issued At.
			ch := e.challenge(t, s.addr.Hex())
			old := e.selfMessage(t, s.addr, ch.Nonce, func(m *wallet.Message) { m.IssuedAt = now.Add(-time.Hour) })
			apitest.WantError(t, e.login(t, old, s.sign(t, old)), http.StatusUnauthorized, "message_expired")

			// Later, within the nonce's life, an Issued At up to the skew
			// before its issuance is fine, and the nonces were not used up.
			e.clock.Advance(time.Minute)
			msg := e.selfMessage(t, s.addr, nonce, func(m *wallet.Message) { m.IssuedAt = now.Add(-skew) })
			wantLogin(t, e.login(t, msg, s.sign(t, msg)), s.addr, true)
			wantLogin(t, e.login(t, ch.Message, s.sign(t, ch.Message)), s.addr, false)
		})
	}
}

// TestWalletLoginNoAddressLockout: 100 bogus logins naming a victim's
// address from a few IPs (the default limits) refuse the attacking IPs, not
// the owner: a signature cannot be guessed, so failures count per client
// IP and per address from one IP, never per address alone.
func TestWalletLoginNoAddressLockout(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, append(b.open(t), withWallet(func(c *auth.WalletConfig) {
				c.PerAddress = auth.Rate{Max: 100, Window: time.Minute} // WALLETAUTH_WALLET_PER_ADDRESS default
				c.PerIP = auth.Rate{Max: 300, Window: time.Minute}      // WALLETAUTH_WALLET_PER_IP default
			}))...)
			victim := newSigner(t)
			ch := e.challenge(t, victim.addr.Hex())
			attacker := newSigner(t)
			forged := attacker.sign(t, ch.Message)
			junk := make([]byte, 65)
			attack := func(ip string, i int) *httptest.ResponseRecorder {
				if i%2 == 0 {
					return e.doFrom(t, ip, http.MethodPost, loginPath, map[string]string{"message": ch.Message, "signature": hex0x(forged)})
				}
				_, _ = rand.Read(junk)
				return e.doFrom(t, ip, http.MethodPost, loginPath, map[string]string{"address": victim.addr.Hex(), "signature": hex0x(junk)})
			}
			const main = "203.0.113.10"
			for i := range 100 {
				if rec := attack(main, i); rec.Code != http.StatusUnauthorized && rec.Code != http.StatusBadRequest {
					t.Fatalf("bogus login %d: %d %s, want a 401 or 400", i, rec.Code, rec.Body)
				}
			}
			for _, ip := range []string{"203.0.113.11", "203.0.113.12"} {
				for i := range 50 {
					if rec := attack(ip, i); rec.Code == http.StatusTooManyRequests {
						t.Fatalf("bogus login %d from %s: 429 already", i, ip)
					}
				}
			}
			// The attacking IP has used up its count for the address.
			apitest.WantError(t, attack(main, 0), http.StatusTooManyRequests, "rate_limited")
			apitest.WantError(t, e.doFrom(t, main, http.MethodPost, loginPath, map[string]string{"message": ch.Message, "signature": hex0x(victim.sign(t, ch.Message))}),
				http.StatusTooManyRequests, "rate_limited")
			// The owner, from its own IP, signs in, in either form.
			const owner = "198.51.100.200"
			rec := e.doFrom(t, owner, http.MethodPost, loginPath, map[string]string{"message": ch.Message, "signature": hex0x(victim.sign(t, ch.Message))})
			wantLogin(t, rec, victim.addr, true)
			ch2 := e.challenge(t, victim.addr.Hex())
			rec = e.doFrom(t, owner, http.MethodPost, loginPath, map[string]string{"address": victim.addr.Hex(), "signature": hex0x(victim.sign(t, ch2.Message))})
			wantLogin(t, rec, victim.addr, false)
		})
	}
}

// TestWalletLoginRecentChallengesContractWallet: a smart-contract wallet's
// signature over an older challenge of its address is found too (by the
// contract, after key recovery matched none), on whichever chain that
// challenge names.
func TestWalletLoginRecentChallengesContractWallet(t *testing.T) {
	chain := newSimChain(t)
	owner := newSigner(t)
	contract := chain.deploy(t, "OwnedWallet", owner.addr)
	clock := newTestClock()
	v := wallet.NewContractVerifier(map[uint64]wallet.ChainReader{simChainID: chain.client}, 5*time.Second, clock.Now)
	e := newEnv(t, withClock(clock), withContracts(v), withWallet(func(c *auth.WalletConfig) {
		c.ChainIDs = []uint64{1, simChainID}
	}))
	onSim := func() challengeJSON {
		return apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge",
			map[string]any{"address": contract.Hex(), "chain_id": simChainID}, ""))
	}
	older := onSim()
	e.challenge(t, contract.Hex()) // chain 1: no RPC, so no contract there
	newer := onSim()
	body := func(sig []byte) map[string]string {
		return map[string]string{"address": contract.Hex(), "signature": hex0x(sig)}
	}
	apitest.WantError(t, e.do(t, http.MethodPost, loginPath, body(newSigner(t).sign(t, older.Message)), ""), http.StatusUnauthorized, "signature_mismatch")
	l := wantLogin(t, e.do(t, http.MethodPost, loginPath, body(owner.sign(t, older.Message)), ""), contract, true)
	if w := l.User.Wallets[0]; w.Type != "contract" || w.ChainID != simChainID {
		t.Fatalf("wallet %+v, want a contract on chain %d", w, simChainID)
	}
	apitest.WantError(t, e.do(t, http.MethodPost, loginPath, body(owner.sign(t, older.Message)), ""), http.StatusUnauthorized, "nonce_invalid")
	wantLogin(t, e.do(t, http.MethodPost, loginPath, body(owner.sign(t, newer.Message)), ""), contract, false)
}

// TestWalletChallengeRecords: an address's recent challenges are kept as
// their nonce, chain and Issued At (a few dozen bytes, not the ~450 of the
// text: without Redis they stay in process memory for their lifetime),
// and the {address, signature} form makes the text again from them; a
// record written before that change, holding the text, still signs in.
func TestWalletChallengeRecords(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b.open(t)...)
		s := newSigner(t)
		ch := e.challenge(t, s.addr.Hex())
		key := "challenges:" + wallet.LowerHex(s.addr)
		recs, err := e.store.List(t.Context(), key)
		if err != nil || len(recs) != 1 {
			t.Fatalf("List(%s) = %d records, %v", key, len(recs), err)
		}
		if len(recs[0]) > 80 || strings.Contains(string(recs[0]), "Sign in") {
			t.Fatalf("record %q: want the nonce, chain and Issued At, not the text", recs[0])
		}
		wantLogin(t, e.addressLogin(t, s, ch.Message), s.addr, true)
		listLen := func(want int) {
			t.Helper()
			if recs, err := e.store.List(t.Context(), key); err != nil || len(recs) != want {
				t.Fatalf("List(%s) = %d records, %v; want %d", key, len(recs), err, want)
			}
		}
		// The list held the used challenge alone: it is gone, and a replay
		// is still nonce_invalid.
		listLen(0)
		apitest.WantError(t, e.addressLogin(t, s, ch.Message), http.StatusUnauthorized, "nonce_invalid")
		// The message form too; with two challenges the list stays whole
		// (a replay of the used one: nonce_invalid, not signature_mismatch).
		one, two := e.challenge(t, s.addr.Hex()), e.challenge(t, s.addr.Hex())
		wantLogin(t, e.login(t, one.Message, s.sign(t, one.Message)), s.addr, false)
		listLen(2)
		apitest.WantError(t, e.addressLogin(t, s, one.Message), http.StatusUnauthorized, "nonce_invalid")
		wantLogin(t, e.login(t, two.Message, s.sign(t, two.Message)), s.addr, false)
		listLen(2)
		three := e.challenge(t, s.addr.Hex())
		listLen(3)
		wantLogin(t, e.login(t, three.Message, s.sign(t, three.Message)), s.addr, false)

		// A record of the earlier kind: the text itself, with its nonce.
		old := e.challenge(t, s.addr.Hex())
		legacy, err := json.Marshal(map[string]string{"n": old.Nonce, "m": old.Message})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.Delete(t.Context(), key); err != nil {
			t.Fatal(err)
		}
		if err := e.store.PushList(t.Context(), key, legacy, auth.RecentChallenges, challengeTTL+skew); err != nil {
			t.Fatal(err)
		}
		wantLogin(t, e.addressLogin(t, s, old.Message), s.addr, false)
		apitest.WantError(t, e.addressLogin(t, s, old.Message), http.StatusUnauthorized, "nonce_invalid")

		// A record this build cannot read (another version's, in a rolling
		// deploy) is skipped: the address's other challenges still sign in.
		if err := e.store.PushList(t.Context(), key, []byte(`{"x":1}`), auth.RecentChallenges, challengeTTL+skew); err != nil {
			t.Fatal(err)
		}
		if err := e.store.PushList(t.Context(), key, []byte(`not json`), auth.RecentChallenges, challengeTTL+skew); err != nil {
			t.Fatal(err)
		}
		fresh := e.challenge(t, s.addr.Hex())
		wantLogin(t, e.addressLogin(t, s, fresh.Message), s.addr, false)
	})
}
