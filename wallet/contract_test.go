package wallet

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/walletauth/walletauth/internal/clocktest"
)

// simChainID is the chain ID of go-ethereum's simulated backend.
const simChainID = 1337

// simChain is a simulated chain with a funded deployer key.
type simChain struct {
	backend  *simulated.Backend
	client   simulated.Client
	deployer *ecdsa.PrivateKey
}

func mustContractKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		tb.Fatalf("generate key: %v", err)
	}
	return key
}

func mustSimChain(tb testing.TB) *simChain {
	tb.Helper()
	deployer := mustContractKey(tb)
	funds := new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18))
	backend := simulated.NewBackend(types.GenesisAlloc{
		crypto.PubkeyToAddress(deployer.PublicKey): {Balance: funds},
	})
	tb.Cleanup(func() { _ = backend.Close() })
	return &simChain{backend: backend, client: backend.Client(), deployer: deployer}
}

// mustArtifact reads a compiled contract from testdata/contracts (see build.sh).
func mustArtifact(tb testing.TB, name string) (abi.ABI, []byte) {
	tb.Helper()
	dir := filepath.Join("testdata", "contracts")
	rawABI, err := os.ReadFile(filepath.Join(dir, name+".abi"))
	if err != nil {
		tb.Fatalf("read ABI: %v", err)
	}
	parsed, err := abi.JSON(strings.NewReader(string(rawABI)))
	if err != nil {
		tb.Fatalf("parse %s ABI: %v", name, err)
	}
	rawBin, err := os.ReadFile(filepath.Join(dir, name+".bin"))
	if err != nil {
		tb.Fatalf("read bytecode: %v", err)
	}
	return parsed, common.FromHex(strings.TrimSpace(string(rawBin)))
}

// send signs a transaction from the deployer (to == nil deploys data), mines it,
// and returns its successful receipt.
func (c *simChain) send(tb testing.TB, to *common.Address, data []byte) *types.Receipt {
	tb.Helper()
	ctx := context.Background()
	from := crypto.PubkeyToAddress(c.deployer.PublicKey)
	nonce, err := c.client.PendingNonceAt(ctx, from)
	if err != nil {
		tb.Fatalf("nonce: %v", err)
	}
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		tb.Fatalf("head: %v", err)
	}
	tip := big.NewInt(1e9)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(c.deployer, types.LatestSignerForChainID(big.NewInt(simChainID)), &types.DynamicFeeTx{
		ChainID:   big.NewInt(simChainID),
		Nonce:     nonce,
		GasTipCap: tip,
		GasFeeCap: feeCap,
		Gas:       5_000_000,
		To:        to,
		Data:      data,
	})
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	if err := c.client.SendTransaction(ctx, tx); err != nil {
		tb.Fatalf("send: %v", err)
	}
	c.backend.Commit()
	receipt, err := c.client.TransactionReceipt(ctx, tx.Hash())
	if err != nil {
		tb.Fatalf("receipt: %v", err)
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		tb.Fatalf("transaction %s failed (gas used %d)", tx.Hash(), receipt.GasUsed)
	}
	return receipt
}

// deploy deploys a compiled test contract with constructor args.
func (c *simChain) deploy(tb testing.TB, name string, args ...any) common.Address {
	tb.Helper()
	parsed, bin := mustArtifact(tb, name)
	ctorArgs, err := parsed.Pack("", args...)
	if err != nil {
		tb.Fatalf("pack %s constructor: %v", name, err)
	}
	receipt := c.send(tb, nil, append(append([]byte{}, bin...), ctorArgs...))
	return receipt.ContractAddress
}

func mustSignHash(tb testing.TB, hash common.Hash, key *ecdsa.PrivateKey) []byte {
	tb.Helper()
	sig, err := crypto.Sign(hash[:], key)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return sig
}

// mustWrap6492 returns abi.encode(factory, calldata, sig) ++ the ERC-6492 suffix.
func mustWrap6492(tb testing.TB, factory common.Address, calldata, sig []byte) []byte {
	tb.Helper()
	enc, err := mustArguments("address", "bytes", "bytes").Pack(factory, calldata, sig)
	if err != nil {
		tb.Fatalf("wrap: %v", err)
	}
	return append(enc, erc6492Suffix...)
}

func contractTestHash(msg string) common.Hash { return HashEIP191([]byte(msg)) }

func newContractClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// countingChain wraps a real ChainReader and counts its calls.
type countingChain struct {
	ChainReader
	codeAt atomic.Int64
	calls  atomic.Int64
}

func (c *countingChain) CodeAt(ctx context.Context, a common.Address, n *big.Int) ([]byte, error) {
	c.codeAt.Add(1)
	return c.ChainReader.CodeAt(ctx, a, n)
}

func (c *countingChain) CallContract(ctx context.Context, msg ethereum.CallMsg, n *big.Int) ([]byte, error) {
	c.calls.Add(1)
	return c.ChainReader.CallContract(ctx, msg, n)
}

// hangingChain is a fake ChainReader whose calls block until their context ends;
// code is what CodeAt answers when hangCode is false.
type hangingChain struct {
	hangCode bool
	code     []byte
}

func (h hangingChain) CodeAt(ctx context.Context, _ common.Address, _ *big.Int) ([]byte, error) {
	if !h.hangCode {
		return h.code, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (h hangingChain) CallContract(ctx context.Context, _ ethereum.CallMsg, _ *big.Int) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func wantVerifyErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Verify = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("Verify = %v, want %v", err, want)
	}
	if errors.Is(want, ErrContractSignatureInvalid) && errors.Is(err, ErrRPCUnavailable) {
		t.Fatalf("Verify = %v: both invalid and unavailable", err)
	}
}

func TestContractVerify1271(t *testing.T) {
	chain := mustSimChain(t)
	owner, other := mustContractKey(t), mustContractKey(t)
	ownerAddr := crypto.PubkeyToAddress(owner.PublicKey)
	good := chain.deploy(t, "OwnedWallet", ownerAddr)
	wrongMagic := chain.deploy(t, "WrongMagicWallet", ownerAddr)
	reverting := chain.deploy(t, "RevertingWallet")

	hash := contractTestHash("example.com wants you to sign in with your Ethereum account")
	ownerSig := mustSignHash(t, hash, owner)
	sig27 := append([]byte{}, ownerSig...)
	sig27[64] += 27

	v := NewContractVerifier(map[uint64]ChainReader{simChainID: chain.client}, 0, nil)
	tests := []struct {
		name    string
		address common.Address
		hash    common.Hash
		sig     []byte
		want    error
	}{
		{"owner signature", good, hash, ownerSig, nil},
		{"owner signature, v 27/28", good, hash, sig27, nil},
		{"another key", good, hash, mustSignHash(t, hash, other), ErrContractSignatureInvalid},
		{"owner signature over another hash", good, contractTestHash("other"), ownerSig, ErrContractSignatureInvalid},
		{"empty signature", good, hash, nil, ErrContractSignatureInvalid},
		{"wrong magic value", wrongMagic, hash, ownerSig, ErrContractSignatureInvalid},
		{"reverting wallet", reverting, hash, ownerSig, ErrContractSignatureInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(context.Background(), simChainID, tc.address, tc.hash, tc.sig)
			wantVerifyErr(t, err, tc.want)
			if tc.want != nil && !errors.Is(err, ErrSignatureMismatch) {
				t.Errorf("Verify = %v, want it to wrap ErrSignatureMismatch too", err)
			}
		})
	}
}

func TestContractVerify6492(t *testing.T) {
	ctx := context.Background()
	chain := mustSimChain(t)
	owner, other := mustContractKey(t), mustContractKey(t)
	ownerAddr := crypto.PubkeyToAddress(owner.PublicKey)
	factory := chain.deploy(t, "WalletFactory")
	factoryABI, _ := mustArtifact(t, "WalletFactory")
	_, walletBin := mustArtifact(t, "OwnedWallet")
	salt := common.HexToHash("0x01")

	// The counterfactual address, computed off-chain and by the factory.
	ownerArg, err := mustArguments("address").Pack(ownerAddr)
	if err != nil {
		t.Fatal(err)
	}
	saltArg, err := mustArguments("address", "bytes32").Pack(ownerAddr, salt)
	if err != nil {
		t.Fatal(err)
	}
	initCode := append(append([]byte{}, walletBin...), ownerArg...)
	counterfactual := crypto.CreateAddress2(factory, crypto.Keccak256Hash(saltArg), crypto.Keccak256(initCode))
	addressOf, err := factoryABI.Pack("addressOf", ownerAddr, salt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := chain.client.CallContract(ctx, ethereum.CallMsg{To: &factory, Data: addressOf}, nil)
	if err != nil {
		t.Fatalf("addressOf: %v", err)
	}
	if got := common.BytesToAddress(out); got != counterfactual {
		t.Fatalf("factory addressOf = %s, computed %s", got, counterfactual)
	}
	if code, _ := chain.client.CodeAt(ctx, counterfactual, nil); len(code) != 0 {
		t.Fatal("wallet deployed before the test deploys it")
	}

	hash := contractTestHash("sign in before the wallet exists")
	deployCall, err := factoryABI.Pack("deploy", ownerAddr, salt)
	if err != nil {
		t.Fatal(err)
	}
	otherSaltCall, err := factoryABI.Pack("deploy", ownerAddr, common.HexToHash("0x02"))
	if err != nil {
		t.Fatal(err)
	}
	badSelector := append([]byte{0xde, 0xad, 0xbe, 0xef}, deployCall[4:]...)
	ownerSig := mustSignHash(t, hash, owner)
	flipped := append([]byte{}, ownerSig...)
	flipped[10] ^= 0x01

	clock := newContractClock()
	counting := &countingChain{ChainReader: chain.client}
	v := NewContractVerifier(map[uint64]ChainReader{simChainID: counting}, 0, clock.Now)

	counterfactualTests := []struct {
		name string
		sig  []byte
		want error
	}{
		{"wrapped owner signature", mustWrap6492(t, factory, deployCall, ownerSig), nil},
		{"tampered factory calldata (other salt)", mustWrap6492(t, factory, otherSaltCall, ownerSig), ErrContractSignatureInvalid},
		{"tampered factory calldata (bad selector)", mustWrap6492(t, factory, badSelector, ownerSig), ErrContractSignatureInvalid},
		{"wrong factory", mustWrap6492(t, common.HexToAddress("0x1234"), deployCall, ownerSig), ErrContractSignatureInvalid},
		{"tampered inner signature", mustWrap6492(t, factory, deployCall, flipped), ErrContractSignatureInvalid},
		{"another key", mustWrap6492(t, factory, deployCall, mustSignHash(t, hash, other)), ErrContractSignatureInvalid},
		{"unwrapped signature, no code", ownerSig, ErrContractSignatureInvalid},
	}
	for _, tc := range counterfactualTests {
		t.Run("counterfactual/"+tc.name, func(t *testing.T) {
			wantVerifyErr(t, v.Verify(ctx, simChainID, counterfactual, hash, tc.sig), tc.want)
		})
	}
	// The deploy-less call leaves no trace on the chain.
	if code, _ := chain.client.CodeAt(ctx, counterfactual, nil); len(code) != 0 {
		t.Fatal("verification deployed the wallet")
	}

	// Deploy the wallet for real: a wrapped signature now goes through EIP-1271
	// on the inner signature, and a plain one verifies at once, although the
	// verifier saw the address without code a moment ago (the clock does not
	// move: no "no code" answer may be remembered).
	chain.send(t, &factory, deployCall)
	if code, _ := chain.client.CodeAt(ctx, counterfactual, nil); len(code) == 0 {
		t.Fatal("factory did not deploy the wallet")
	}
	deployedTests := []struct {
		name string
		sig  []byte
		want error
	}{
		{"wrapped owner signature", mustWrap6492(t, factory, deployCall, ownerSig), nil},
		{"wrapped, calldata no longer matters", mustWrap6492(t, factory, badSelector, ownerSig), nil},
		{"wrapped, another key", mustWrap6492(t, factory, deployCall, mustSignHash(t, hash, other)), ErrContractSignatureInvalid},
		{"unwrapped owner signature", ownerSig, nil},
	}
	for _, tc := range deployedTests {
		t.Run("deployed/"+tc.name, func(t *testing.T) {
			wantVerifyErr(t, v.Verify(ctx, simChainID, counterfactual, hash, tc.sig), tc.want)
		})
	}
}

func TestContractVerifyMalformed6492(t *testing.T) {
	counting := &countingChain{ChainReader: hangingChain{}}
	v := NewContractVerifier(map[uint64]ChainReader{1: counting}, time.Second, nil)
	suffix := []byte(erc6492Suffix)
	for name, sig := range map[string][]byte{
		"suffix only":      suffix,
		"garbage + suffix": append([]byte("not an abi encoding"), suffix...),
	} {
		t.Run(name, func(t *testing.T) {
			err := v.Verify(context.Background(), 1, common.HexToAddress("0x1"), common.Hash{}, sig)
			wantVerifyErr(t, err, ErrContractSignatureInvalid)
		})
	}
	if n := counting.calls.Load() + counting.codeAt.Load(); n != 0 {
		t.Errorf("malformed wrappers made %d RPC calls, want 0", n)
	}
}

func TestContractVerifyNoCodeOrNoRPC(t *testing.T) {
	chain := mustSimChain(t)
	eoa := mustContractKey(t)
	eoaAddr := crypto.PubkeyToAddress(eoa.PublicKey)
	hash := contractTestHash("hello")
	v := NewContractVerifier(map[uint64]ChainReader{simChainID: chain.client}, 0, nil)

	tests := []struct {
		name    string
		chainID uint64
		sig     []byte
		want    error
	}{
		// A key signature of an EOA is VerifyEOA's business, not the contract verifier's.
		{"EOA, its own key signature", simChainID, mustSignHash(t, hash, eoa), ErrContractSignatureInvalid},
		{"EOA, long non-6492 signature", simChainID, make([]byte, 200), ErrContractSignatureInvalid},
		{"chain without reader", 1, mustSignHash(t, hash, eoa), ErrNoRPC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantVerifyErr(t, v.Verify(context.Background(), tc.chainID, eoaAddr, hash, tc.sig), tc.want)
		})
	}
}

func TestContractVerifyTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	addr := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	hash := contractTestHash("hello")
	plain := make([]byte, 65)
	wrapped := mustWrap6492(t, common.HexToAddress("0xf0"), []byte{1, 2, 3}, plain)

	t.Run("hangingChain", func(t *testing.T) {
		tests := []struct {
			name  string
			chain hangingChain
			sig   []byte
		}{
			{"eth_getCode hangs", hangingChain{hangCode: true}, plain},
			{"isValidSignature hangs", hangingChain{code: []byte{0x60}}, plain},
			{"ERC-6492 validation hangs", hangingChain{hangCode: true}, wrapped},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				v := NewContractVerifier(map[uint64]ChainReader{1: tc.chain}, timeout, nil)
				err := v.Verify(context.Background(), 1, addr, hash, tc.sig)
				wantVerifyErr(t, err, ErrRPCUnavailable)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Verify = %v, want it to wrap context.DeadlineExceeded", err)
				}
			})
		}
	})

	t.Run("caller context canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		v := NewContractVerifier(map[uint64]ChainReader{1: hangingChain{hangCode: true}}, time.Hour, nil)
		wantVerifyErr(t, v.Verify(ctx, 1, addr, hash, plain), ErrRPCUnavailable)
	})

	t.Run("hanging HTTP JSON-RPC", func(t *testing.T) {
		stop := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			// Read the body first: the server notices a client hanging up (and
			// cancels r.Context()) only once the request body is consumed.
			_, _ = io.Copy(io.Discard, r.Body)
			select { // never answers
			case <-r.Context().Done():
			case <-stop:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(stop) }) // runs before srv.Close
		chains, closeChains, err := DialChains(context.Background(), map[uint64]string{1: srv.URL})
		if err != nil {
			t.Fatalf("DialChains: %v", err)
		}
		t.Cleanup(closeChains)
		v := NewContractVerifier(chains, timeout, nil)
		for _, sig := range [][]byte{plain, wrapped} {
			wantVerifyErr(t, v.Verify(context.Background(), 1, addr, hash, sig), ErrRPCUnavailable)
		}
	})
}

// TestContractVerifyRPCErrors checks which JSON-RPC answers read as "invalid"
// (the EVM ran and failed) and which as "unavailable".
func TestContractVerifyRPCErrors(t *testing.T) {
	addr := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	tests := []struct {
		name   string
		status int
		error  string // JSON-RPC error object for eth_call
		want   error
	}{
		// A definite "no", in each node's words (fakes of nodes we do not run
		// here; geth's own answer is tested against the simulated backend).
		{"geth: reverted, no data", http.StatusOK, `{"code":3,"message":"execution reverted","data":"0x"}`, ErrContractSignatureInvalid},
		{"geth: reverted with reason", http.StatusOK, `{"code":3,"message":"execution reverted: no","data":"0x08c379a0"}`, ErrContractSignatureInvalid},
		{"geth: out of gas", http.StatusOK, `{"code":-32000,"message":"out of gas"}`, ErrContractSignatureInvalid},
		{"nethermind: -32000 reverted", http.StatusOK, `{"code":-32000,"message":"execution reverted","data":"0xf4f28e99"}`, ErrContractSignatureInvalid},
		{"nethermind: VM execution error", http.StatusOK, `{"code":-32015,"message":"VM execution error.","data":"Reverted 0x7a933234"}`, ErrContractSignatureInvalid},
		{"nethermind: -32003 stack underflow", http.StatusOK, `{"code":-32003,"message":"stack underflow"}`, ErrContractSignatureInvalid},
		{"besu: Execution reverted", http.StatusOK, `{"code":-32000,"message":"Execution reverted","data":"0x"}`, ErrContractSignatureInvalid},
		{"ganache: VM Exception revert", http.StatusOK, `{"code":-32000,"message":"VM Exception while processing transaction: revert","data":{"return":"0x"}}`, ErrContractSignatureInvalid},
		// The chain did not answer.
		{"rate limited", http.StatusOK, `{"code":-32005,"message":"limit exceeded"}`, ErrRPCUnavailable},
		{"header not found", http.StatusOK, `{"code":-32000,"message":"header not found"}`, ErrRPCUnavailable},
		{"method not found", http.StatusOK, `{"code":-32601,"message":"the method eth_call does not exist/is not available"}`, ErrRPCUnavailable},
		{"revert-like text without data", http.StatusOK, `{"code":-32000,"message":"upstream reverted to backup"}`, ErrRPCUnavailable},
		{"internal error", http.StatusOK, `{"code":-32603,"message":"internal error"}`, ErrRPCUnavailable},
		{"HTTP 503", http.StatusServiceUnavailable, "", ErrRPCUnavailable},
		{"HTTP 500", http.StatusInternalServerError, "", ErrRPCUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req struct {
					ID     json.RawMessage `json:"id"`
					Method string          `json:"method"`
				}
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				if tc.status != http.StatusOK {
					http.Error(w, "unavailable", tc.status)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				if req.Method == "eth_getCode" {
					_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":"0x6000"}`))
					return
				}
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"error":` + tc.error + `}`))
			}))
			t.Cleanup(srv.Close)
			chains, closeChains, err := DialChains(context.Background(), map[uint64]string{1: srv.URL})
			if err != nil {
				t.Fatalf("DialChains: %v", err)
			}
			t.Cleanup(closeChains)
			v := NewContractVerifier(chains, time.Second, nil)
			wantVerifyErr(t, v.Verify(context.Background(), 1, addr, common.Hash{}, make([]byte, 65)), tc.want)
		})
	}
}

func TestContractCodeCache(t *testing.T) {
	ctx := context.Background()
	chain := mustSimChain(t)
	owner := mustContractKey(t)
	ownerAddr := crypto.PubkeyToAddress(owner.PublicKey)
	wallet := chain.deploy(t, "OwnedWallet", ownerAddr)
	hash := contractTestHash("cache me")
	sig := mustSignHash(t, hash, owner)

	clock := newContractClock()
	counting := &countingChain{ChainReader: chain.client}
	v := NewContractVerifier(map[uint64]ChainReader{simChainID: counting}, 0, clock.Now)
	verify := func(addr common.Address, want error) {
		t.Helper()
		wantVerifyErr(t, v.Verify(ctx, simChainID, addr, hash, sig), want)
	}
	codeAt := func(want int64) {
		t.Helper()
		if got := counting.codeAt.Load(); got != want {
			t.Fatalf("CodeAt called %d times, want %d", got, want)
		}
	}

	verify(wallet, nil)
	verify(wallet, nil)
	codeAt(1)
	clock.Advance(codeCacheHitTTL - time.Second)
	verify(wallet, nil)
	codeAt(1)
	clock.Advance(time.Second)
	verify(wallet, nil)
	codeAt(2)

	// No code: never remembered, each check asks the chain.
	verify(ownerAddr, ErrContractSignatureInvalid)
	verify(ownerAddr, ErrContractSignatureInvalid)
	codeAt(4)
	v.mu.Lock()
	_, cached := v.codes[codeKey{chainID: simChainID, address: ownerAddr}]
	v.mu.Unlock()
	if cached {
		t.Error("an address without code is cached")
	}

	// A failed lookup is not cached.
	failing := NewContractVerifier(map[uint64]ChainReader{1: hangingChain{hangCode: true}}, time.Millisecond, clock.Now)
	for range 2 {
		wantVerifyErr(t, failing.Verify(ctx, 1, wallet, hash, sig), ErrRPCUnavailable)
	}
	if n := len(failing.codes); n != 0 {
		t.Errorf("cache holds %d entries after failed lookups, want 0", n)
	}
}

// codeChain is a fake ChainReader: every address has code, and every call
// answers 32 zero bytes (not the EIP-1271 magic value).
type codeChain struct{}

func (codeChain) CodeAt(context.Context, common.Address, *big.Int) ([]byte, error) {
	return []byte{0x60}, nil
}

func (codeChain) CallContract(context.Context, ethereum.CallMsg, *big.Int) ([]byte, error) {
	return make([]byte, 32), nil
}

func TestContractCodeCacheBounded(t *testing.T) {
	clock := newContractClock()
	v := NewContractVerifier(map[uint64]ChainReader{1: codeChain{}}, time.Second, clock.Now)
	ctx := context.Background()
	for i := range codeCacheMaxSize + 100 {
		addr := common.BigToAddress(big.NewInt(int64(i + 1)))
		wantVerifyErr(t, v.Verify(ctx, 1, addr, common.Hash{}, nil), ErrContractSignatureInvalid)
		if i%1000 == 0 {
			clock.Advance(time.Millisecond)
		}
	}
	v.mu.Lock()
	n := len(v.codes)
	v.mu.Unlock()
	if n > codeCacheMaxSize {
		t.Errorf("cache holds %d entries, want at most %d", n, codeCacheMaxSize)
	}
}

func TestContractDialChains(t *testing.T) {
	chains, closeChains, err := DialChains(context.Background(), map[uint64]string{
		1:    "http://127.0.0.1:1",
		8453: "https://example.invalid/v2/secret-key",
	})
	if err != nil {
		t.Fatalf("DialChains: %v", err)
	}
	closeChains()
	if len(chains) != 2 {
		t.Fatalf("DialChains returned %d chains, want 2", len(chains))
	}

	_, _, err = DialChains(context.Background(), map[uint64]string{1: "ftp://user:secret-key@host/"})
	if err == nil {
		t.Fatal("DialChains accepted an ftp URL")
	}
	if strings.Contains(err.Error(), "secret-key") {
		t.Errorf("DialChains error leaks the URL: %v", err)
	}
}

// TestEIP1271Vectors checks only the shape of the SIWE project's EIP-1271
// vectors: verifying them needs mainnet.
func TestEIP1271Vectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "siwe", "eip1271.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var vectors map[string]struct {
		Message   string `json:"message"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for name, vec := range vectors {
		t.Run(name, func(t *testing.T) {
			lines := strings.Split(vec.Message, "\n")
			if len(lines) < 2 || !strings.HasSuffix(lines[0], " wants you to sign in with your Ethereum account:") {
				t.Fatalf("message does not look like EIP-4361: %q", vec.Message)
			}
			if !common.IsHexAddress(lines[1]) {
				t.Errorf("second line %q is not an address", lines[1])
			}
			sig, err := ParseSignature(vec.Signature)
			if err != nil || len(sig) < 65 {
				t.Errorf("signature %q: %d bytes, err %v", vec.Signature, len(sig), err)
			}
		})
	}
}
