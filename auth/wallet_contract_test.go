package auth_test

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/walletauth/walletauth/api/apitest"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/wallet"
)

// Hand-assembled runtime code of contracts that have no isValidSignature
// function, or answer it wrongly. Each is deployed with deployRuntime.
var (
	// revertAll: REVERT(0, 0) on every call, as a Solidity contract without
	// the function and without a fallback does.
	revertAll = common.FromHex("60006000fd")
	// stopAll: STOP on every call, an empty fallback: success, no return data.
	stopAll = common.FromHex("00")
	// invalidOp: the INVALID opcode (0xfe): an EVM error other than a revert.
	invalidOp = common.FromHex("fe")
	// shortMagic returns the 4 bytes 0x1626ba7e, not the 32-byte ABI word.
	shortMagic = common.FromHex("631626ba7e6000526004601cf3")
	// garbage32 returns 32 bytes of 0xff.
	garbage32 = common.FromHex("7f" + strings.Repeat("ff", 32) + "60005260206000f3")
)

// deployRuntime deploys a contract whose code is runtime: an init code that
// copies runtime into memory and returns it, then runtime.
func (c *simChain) deployRuntime(tb testing.TB, runtime []byte) common.Address {
	tb.Helper()
	if len(runtime) > 0xff {
		tb.Fatalf("runtime of %d bytes: the init code handles up to 255", len(runtime))
	}
	n := byte(len(runtime))
	// PUSH1 n, DUP1, PUSH1 11 (offset of runtime), PUSH1 0, CODECOPY, PUSH1 0, RETURN
	initCode := []byte{0x60, n, 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3}
	return c.deployCode(tb, append(initCode, runtime...))
}

// contractEnv is a wallet login service verifying contract wallets on the
// simulated chain (and on chain 1 through rpcURL when it is not empty).
func contractEnv(t *testing.T, chain *simChain, rpcURL string) *env {
	t.Helper()
	chains := map[uint64]wallet.ChainReader{}
	if chain != nil {
		chains[simChainID] = chain.client
	}
	if rpcURL != "" {
		dialed, closeChains, err := wallet.DialChains(t.Context(), map[uint64]string{1: rpcURL})
		if err != nil {
			t.Fatalf("DialChains: %v", err)
		}
		t.Cleanup(closeChains)
		chains[1] = dialed[1]
	}
	clock := newTestClock()
	v := wallet.NewContractVerifier(chains, 2*time.Second, clock.Now)
	return newEnv(t, withClock(clock), withContracts(v), withWallet(func(c *auth.WalletConfig) {
		c.ChainIDs = []uint64{1, simChainID}
	}))
}

// contractChallenge asks for a challenge for addr on chainID.
func (e *env) contractChallenge(t *testing.T, addr common.Address, chainID uint64) string {
	t.Helper()
	return apitest.DecodeOK[challengeJSON](t, e.do(t, http.MethodPost, "/v1/auth/wallet/challenge",
		map[string]any{"address": addr.Hex(), "chain_id": chainID}, "")).Message
}

// wrap6492 returns abi.encode(factory, calldata, sig) ++ the ERC-6492 suffix.
func wrap6492(tb testing.TB, factory common.Address, calldata, sig []byte) []byte {
	tb.Helper()
	var args abi.Arguments
	for _, typ := range []string{"address", "bytes", "bytes"} {
		ty, err := abi.NewType(typ, "", nil)
		if err != nil {
			tb.Fatal(err)
		}
		args = append(args, abi.Argument{Type: ty})
	}
	enc, err := args.Pack(factory, calldata, sig)
	if err != nil {
		tb.Fatalf("wrap: %v", err)
	}
	return append(enc, common.FromHex(strings.Repeat("6492", 16))...)
}

// TestWalletLoginContractNo: a contract wallet that reverts, lacks
// isValidSignature or answers it with garbage, and an ERC-6492 signature
// whose factory call reverts, are a definite "no" from the chain: 401
// signature_mismatch, never 503 rpc_unavailable.
func TestWalletLoginContractNo(t *testing.T) {
	chain := newSimChain(t)
	owner, other := newSigner(t), newSigner(t)
	e := contractEnv(t, chain, "")
	owned := chain.deploy(t, "OwnedWallet", owner.addr)
	revertingFactory := chain.deployRuntime(t, revertAll)
	emptyFactory := chain.deployRuntime(t, stopAll)
	undeployed := common.HexToAddress("0x00000000000000000000000000000000c0ffee01")
	// The hand-assembled fixtures answer what they claim to.
	for runtime, want := range map[*[]byte][]byte{&stopAll: {}, &shortMagic: common.FromHex("1626ba7e"), &garbage32: common.FromHex(strings.Repeat("ff", 32))} {
		out, err := chain.client.CallContract(t.Context(), callMsg(chain.deployRuntime(t, *runtime), []byte{1, 2, 3, 4}), nil)
		if err != nil || !bytes.Equal(out, want) {
			t.Fatalf("fixture %x answers %x, %v; want %x", *runtime, out, err, want)
		}
	}
	if _, err := chain.client.CallContract(t.Context(), callMsg(revertingFactory, nil), nil); err == nil || !strings.Contains(err.Error(), "execution reverted") {
		t.Fatalf("revertAll answers %v, want a revert", err)
	}

	tests := []struct {
		name    string
		address common.Address
		sig     func(msg string) []byte
	}{
		{"isValidSignature reverts (custom error)", chain.deploy(t, "RevertingWallet"), nil},
		{"no isValidSignature, no fallback (empty revert)", chain.deployRuntime(t, revertAll), nil},
		{"no isValidSignature, empty fallback (no return data)", chain.deployRuntime(t, stopAll), nil},
		{"invalid opcode", chain.deployRuntime(t, invalidOp), nil},
		{"4-byte magic value, not an ABI word", chain.deployRuntime(t, shortMagic), nil},
		{"32 bytes of garbage", chain.deployRuntime(t, garbage32), nil},
		{"wrong magic value", chain.deploy(t, "WrongMagicWallet", owner.addr), nil},
		{"another key on a real wallet", owned, nil},
		{"ERC-6492, factory call reverts", undeployed, func(msg string) []byte {
			return wrap6492(t, revertingFactory, []byte{0x12, 0x34}, owner.sign(t, msg))
		}},
		{"ERC-6492, factory deploys nothing", undeployed, func(msg string) []byte {
			return wrap6492(t, emptyFactory, nil, owner.sign(t, msg))
		}},
		{"ERC-6492, factory has no code", undeployed, func(msg string) []byte {
			return wrap6492(t, common.HexToAddress("0x000000000000000000000000000000000000dead"), nil, owner.sign(t, msg))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := e.contractChallenge(t, tc.address, simChainID)
			sig := other.sign(t, msg) // not the owner's key: each contract is asked
			if tc.sig != nil {
				sig = tc.sig(msg)
			}
			apitest.WantError(t, e.login(t, msg, sig), http.StatusUnauthorized, "signature_mismatch")
		})
	}
	// The same service accepts a wallet that says yes.
	msg := e.contractChallenge(t, owned, simChainID)
	wantLogin(t, e.login(t, msg, owner.sign(t, msg)), owned, true)
}

// TestWalletLoginContractDeployedAfter6492: a counterfactual wallet signs in
// with ERC-6492, is deployed, and its plain EIP-1271 signature signs in at
// once, although the service saw its address without code just before.
func TestWalletLoginContractDeployedAfter6492(t *testing.T) {
	chain := newSimChain(t)
	owner := newSigner(t)
	e := contractEnv(t, chain, "")
	factory := chain.deploy(t, "WalletFactory")
	factoryABI := mustABI(t, "WalletFactory")
	salt := common.HexToHash("0x07")
	deployCall, err := factoryABI.Pack("deploy", owner.addr, salt)
	if err != nil {
		t.Fatal(err)
	}
	addressOf, err := factoryABI.Pack("addressOf", owner.addr, salt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := chain.client.CallContract(t.Context(), callMsg(factory, addressOf), nil)
	if err != nil {
		t.Fatalf("addressOf: %v", err)
	}
	counterfactual := common.BytesToAddress(out)

	// Not deployed: a plain signature is a no, a wrapped one signs in.
	msg := e.contractChallenge(t, counterfactual, simChainID)
	apitest.WantError(t, e.login(t, msg, owner.sign(t, msg)), http.StatusUnauthorized, "signature_mismatch")
	msg = e.contractChallenge(t, counterfactual, simChainID)
	l := wantLogin(t, e.login(t, msg, wrap6492(t, factory, deployCall, owner.sign(t, msg))), counterfactual, true)
	if w := l.User.Wallets[0]; w.Type != "contract" {
		t.Fatalf("wallet %+v, want type contract", w)
	}

	// Deployed: the plain signature signs in at once (the clock stands still).
	chain.send(t, &factory, deployCall)
	if code, _ := chain.client.CodeAt(t.Context(), counterfactual, nil); len(code) == 0 {
		t.Fatal("the factory did not deploy the wallet")
	}
	msg = e.contractChallenge(t, counterfactual, simChainID)
	wantLogin(t, e.login(t, msg, owner.sign(t, msg)), counterfactual, false)
}

// TestWalletLoginContractTransport: when the chain cannot be asked, the
// answer is 503 rpc_unavailable; a node's JSON-RPC "no" in its own dialect
// is still a 401.
func TestWalletLoginContractTransport(t *testing.T) {
	closed := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return "http://" + addr
	}
	// rpcNode is a fake JSON-RPC node on 127.0.0.1: every address has code,
	// eth_call answers callError, and any request gets status when not 200.
	rpcNode := func(status int, callError string) func(t *testing.T) string {
		return func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var req struct {
					ID     json.RawMessage `json:"id"`
					Method string          `json:"method"`
				}
				if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				if status != http.StatusOK {
					http.Error(w, `{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted"}}`, status)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				if req.Method == "eth_getCode" {
					_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":"0x6000"}`))
					return
				}
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"error":` + callError + `}`))
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}
	}
	tests := []struct {
		name   string
		url    func(t *testing.T) string
		status int
		code   string
	}{
		{"connection refused", closed, http.StatusServiceUnavailable, "rpc_unavailable"},
		{"HTTP 500 (with a revert in its body)", rpcNode(http.StatusInternalServerError, ""), http.StatusServiceUnavailable, "rpc_unavailable"},
		{"HTTP 502", rpcNode(http.StatusBadGateway, ""), http.StatusServiceUnavailable, "rpc_unavailable"},
		{"JSON-RPC rate limit", rpcNode(http.StatusOK, `{"code":-32005,"message":"limit exceeded"}`), http.StatusServiceUnavailable, "rpc_unavailable"},
		{"JSON-RPC header not found", rpcNode(http.StatusOK, `{"code":-32000,"message":"header not found"}`), http.StatusServiceUnavailable, "rpc_unavailable"},
		{"JSON-RPC internal error", rpcNode(http.StatusOK, `{"code":-32603,"message":"internal error"}`), http.StatusServiceUnavailable, "rpc_unavailable"},
		// Fakes of nodes this test cannot run, in their words for a revert.
		{"Nethermind VM execution error", rpcNode(http.StatusOK, `{"code":-32015,"message":"VM execution error.","data":"Reverted 0x"}`), http.StatusUnauthorized, "signature_mismatch"},
		{"Ganache VM exception", rpcNode(http.StatusOK, `{"code":-32000,"message":"VM Exception while processing transaction: revert","data":{"return":"0x"}}`), http.StatusUnauthorized, "signature_mismatch"},
	}
	wallet := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := contractEnv(t, nil, tc.url(t))
			msg := e.contractChallenge(t, wallet, 1)
			apitest.WantError(t, e.login(t, msg, newSigner(t).sign(t, msg)), tc.status, tc.code)
		})
	}
}

// send signs a transaction from the deployer (to nil: a deployment of data),
// mines it and returns its successful receipt.
func (c *simChain) send(tb testing.TB, to *common.Address, data []byte) *types.Receipt {
	tb.Helper()
	ctx := tb.Context()
	nonce, err := c.client.PendingNonceAt(ctx, c.deployer.addr)
	if err != nil {
		tb.Fatalf("nonce: %v", err)
	}
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		tb.Fatalf("head: %v", err)
	}
	tip := big.NewInt(1e9)
	tx, err := types.SignNewTx(c.deployer.key, types.LatestSignerForChainID(big.NewInt(simChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(simChainID), Nonce: nonce, GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip),
		Gas:       5_000_000, To: to, Data: data,
	})
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	if err := c.client.SendTransaction(ctx, tx); err != nil {
		tb.Fatalf("send: %v", err)
	}
	c.backend.Commit()
	receipt, err := c.client.TransactionReceipt(ctx, tx.Hash())
	if err != nil || receipt.Status != types.ReceiptStatusSuccessful {
		tb.Fatalf("transaction: receipt %+v, %v", receipt, err)
	}
	return receipt
}

// deployCode deploys creation code and returns the contract's address.
func (c *simChain) deployCode(tb testing.TB, creation []byte) common.Address {
	tb.Helper()
	return c.send(tb, nil, creation).ContractAddress
}

func callMsg(to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{To: &to, Data: data}
}

func mustABI(tb testing.TB, name string) abi.ABI {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "wallet", "testdata", "contracts", name+".abi"))
	if err != nil {
		tb.Fatalf("read ABI: %v", err)
	}
	parsed, err := abi.JSON(strings.NewReader(string(raw)))
	if err != nil {
		tb.Fatalf("parse %s ABI: %v", name, err)
	}
	return parsed
}
