package wallet

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// Errors of smart-contract signature verification (EIP-1271, EIP-6492).
var (
	// ErrNoRPC means no chain reader (RPC URL) is configured for the chain.
	ErrNoRPC = errors.New("wallet: no RPC configured for chain")
	// ErrRPCUnavailable means the chain could not be asked: the RPC call failed or
	// exceeded its timeout. It never means the signature was accepted.
	ErrRPCUnavailable = errors.New("wallet: RPC unavailable")
	// ErrContractSignatureInvalid means the chain was asked and the signature is not
	// valid: the wallet contract said no, reverted or returned a wrong magic value,
	// the ERC-6492 validation failed, or the address has no code and the signature
	// carries no ERC-6492 wrapper. It wraps ErrSignatureMismatch, so errors.Is
	// matches either.
	ErrContractSignatureInvalid error = &aliasError{msg: "wallet: contract signature invalid", alias: ErrSignatureMismatch}
)

// aliasError is a sentinel error that errors.Is also matches against alias.
type aliasError struct {
	msg   string
	alias error
}

func (e *aliasError) Error() string { return e.msg }
func (e *aliasError) Unwrap() error { return e.alias }

// DefaultContractTimeout bounds each RPC call of a ContractVerifier when the
// caller passes no timeout.
const DefaultContractTimeout = 5 * time.Second

// Has-code cache policy: only "has code" is remembered. It cannot make a valid
// login fail: code is only removed by SELFDESTRUCT in its creation transaction
// since EIP-6780, and if it were gone anyway, isValidSignature on an address
// without code returns nothing, a "no" that the missing code would have given
// too. "No code" is never remembered, since a counterfactual (ERC-6492) wallet
// can be deployed at any moment and must sign in with a plain EIP-1271
// signature at once.
const (
	codeCacheHitTTL  = 10 * time.Minute
	codeCacheMaxSize = 4096
)

// erc1271MagicValue is what isValidSignature(bytes32,bytes) returns for a valid
// signature: its own selector, 0x1626ba7e.
const erc1271MagicValue = "\x16\x26\xba\x7e"

// erc6492Suffix ends every ERC-6492 wrapped signature: 0x6492 repeated 16 times.
const erc6492Suffix = "\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92" +
	"\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92\x64\x92"

const erc1271ABI = `[{"type":"function","name":"isValidSignature","stateMutability":"view",
"inputs":[{"name":"hash","type":"bytes32"},{"name":"signature","type":"bytes"}],
"outputs":[{"name":"magicValue","type":"bytes4"}]}]`

// ChainReader is what contract-signature verification needs from a chain;
// ethclient.Client and the simulated backend's client satisfy it.
type ChainReader interface {
	ethereum.ContractCaller
	CodeAt(ctx context.Context, account common.Address, blockNumber *big.Int) ([]byte, error)
}

// ContractVerifier verifies signatures of smart-contract wallets: EIP-1271 for
// deployed wallets and ERC-6492 for wallets that are not deployed yet. It is safe
// for concurrent use.
type ContractVerifier struct {
	chains  map[uint64]ChainReader
	timeout time.Duration
	now     func() time.Time

	erc1271    abi.ABI
	sig6492    abi.Arguments // (address factory, bytes factoryCalldata, bytes signature)
	validator  []byte        // ValidateSigOffchain creation bytecode
	validatorA abi.Arguments // its constructor arguments (address, bytes32, bytes)

	mu    sync.Mutex
	codes map[codeKey]codeEntry
}

type codeKey struct {
	chainID uint64
	address common.Address
}

// codeEntry is a cached "has code" answer.
type codeEntry struct {
	expires time.Time
}

// NewContractVerifier returns a verifier asking chains, by chain ID. Each RPC call
// is bounded by timeout (DefaultContractTimeout when timeout <= 0); now is the
// clock of the has-code cache (time.Now when nil). The chains map is copied.
func NewContractVerifier(chains map[uint64]ChainReader, timeout time.Duration, now func() time.Time) *ContractVerifier {
	if timeout <= 0 {
		timeout = DefaultContractTimeout
	}
	if now == nil {
		now = time.Now
	}
	copied := make(map[uint64]ChainReader, len(chains))
	for id, c := range chains {
		if c != nil {
			copied[id] = c
		}
	}
	// The ABI and bytecode are compile-time constants: failing to parse them is a
	// programming error caught by every test, like regexp.MustCompile.
	parsed, err := abi.JSON(strings.NewReader(erc1271ABI))
	if err != nil {
		panic(fmt.Sprintf("wallet: parse EIP-1271 ABI: %v", err))
	}
	validator, err := hex.DecodeString(validateSigOffchainBytecode)
	if err != nil {
		panic(fmt.Sprintf("wallet: decode ERC-6492 validator bytecode: %v", err))
	}
	return &ContractVerifier{
		chains:     copied,
		timeout:    timeout,
		now:        now,
		erc1271:    parsed,
		sig6492:    mustArguments("address", "bytes", "bytes"),
		validator:  validator,
		validatorA: mustArguments("address", "bytes32", "bytes"),
		codes:      make(map[codeKey]codeEntry),
	}
}

func mustArguments(types ...string) abi.Arguments {
	args := make(abi.Arguments, len(types))
	for i, t := range types {
		typ, err := abi.NewType(t, "", nil)
		if err != nil {
			panic(fmt.Sprintf("wallet: ABI type %q: %v", t, err))
		}
		args[i] = abi.Argument{Type: typ}
	}
	return args
}

// Verify checks sig over hash (the EIP-191 hash of the signed message) for the
// smart-contract wallet address on chainID.
//
// A signature ending with the ERC-6492 magic suffix is checked with a deploy-less
// eth_call of the ERC-6492 universal validator, which deploys the wallet through
// its factory inside the call if needed (and checks the inner signature with
// EIP-1271 if the wallet is already deployed). Any other signature is checked with
// EIP-1271: isValidSignature(hash, sig) on address must return 0x1626ba7e.
//
// It returns nil when the signature is valid, an error wrapping ErrNoRPC when no
// reader is configured for chainID, ErrRPCUnavailable when an RPC call fails or
// exceeds the timeout, and ErrContractSignatureInvalid when the contract rejects
// the signature, reverts, returns a wrong value, or address has no code and sig
// has no ERC-6492 wrapper.
func (v *ContractVerifier) Verify(ctx context.Context, chainID uint64, address common.Address, hash common.Hash, sig []byte) error {
	chain, ok := v.chains[chainID]
	if !ok {
		return fmt.Errorf("%w: chain %d", ErrNoRPC, chainID)
	}
	if isERC6492(sig) {
		return v.verify6492(ctx, chain, chainID, address, hash, sig)
	}
	hasCode, err := v.hasCode(ctx, chain, chainID, address)
	if err != nil {
		return err
	}
	if !hasCode {
		return fmt.Errorf("%w: %s has no code on chain %d", ErrContractSignatureInvalid, address, chainID)
	}
	return v.verify1271(ctx, chain, chainID, address, hash, sig)
}

func isERC6492(sig []byte) bool {
	return bytes.HasSuffix(sig, []byte(erc6492Suffix))
}

// verify1271 calls isValidSignature(hash, sig) on the deployed wallet.
func (v *ContractVerifier) verify1271(ctx context.Context, chain ChainReader, chainID uint64, address common.Address, hash common.Hash, sig []byte) error {
	data, err := v.erc1271.Pack("isValidSignature", hash, sig)
	if err != nil {
		return fmt.Errorf("%w: encode isValidSignature: %w", ErrContractSignatureInvalid, err)
	}
	out, err := v.call(ctx, chain, ethereum.CallMsg{To: &address, Data: data})
	if err != nil {
		return fmt.Errorf("isValidSignature on %s, chain %d: %w", address, chainID, err)
	}
	values, err := v.erc1271.Unpack("isValidSignature", out)
	if err != nil || len(values) != 1 {
		return fmt.Errorf("%w: isValidSignature on %s returned %#x", ErrContractSignatureInvalid, address, out)
	}
	if magic, ok := values[0].([4]byte); !ok || string(magic[:]) != erc1271MagicValue {
		return fmt.Errorf("%w: isValidSignature on %s returned %#x", ErrContractSignatureInvalid, address, out)
	}
	return nil
}

// verify6492 runs the ERC-6492 universal validator in a deploy-less eth_call.
func (v *ContractVerifier) verify6492(ctx context.Context, chain ChainReader, chainID uint64, address common.Address, hash common.Hash, sig []byte) error {
	// Reject a malformed wrapper without asking the chain; the validator would
	// revert on it anyway.
	if _, err := v.sig6492.Unpack(sig[:len(sig)-len(erc6492Suffix)]); err != nil {
		return fmt.Errorf("%w: malformed ERC-6492 wrapper: %w", ErrContractSignatureInvalid, err)
	}
	args, err := v.validatorA.Pack(address, hash, sig)
	if err != nil {
		return fmt.Errorf("%w: encode ERC-6492 validation: %w", ErrContractSignatureInvalid, err)
	}
	data := make([]byte, 0, len(v.validator)+len(args))
	data = append(append(data, v.validator...), args...)
	out, err := v.call(ctx, chain, ethereum.CallMsg{Data: data}) // no To: deploy-less
	if err != nil {
		return fmt.Errorf("ERC-6492 validation for %s, chain %d: %w", address, chainID, err)
	}
	if !bytes.Equal(out, []byte{1}) {
		return fmt.Errorf("%w: ERC-6492 validator returned %#x for %s", ErrContractSignatureInvalid, out, address)
	}
	return nil
}

// call runs an eth_call at the latest block under the verifier's timeout. Its
// error, if any, is classified by classifyCallError.
func (v *ContractVerifier) call(ctx context.Context, chain ChainReader, msg ethereum.CallMsg) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	out, err := chain.CallContract(ctx, msg, nil)
	if err != nil {
		return nil, classifyCallError(ctx, err)
	}
	return out, nil
}

// classifyCallError is the one place that tells a definite "no" from the
// chain (the node ran the code and the EVM failed: a revert, out of gas, an
// invalid opcode …) from a failure to get an answer at all. The first wraps
// ErrContractSignatureInvalid, the second ErrRPCUnavailable.
//
// Only a JSON-RPC error object in a 2xx HTTP answer can be a "no", and only
// when it reads as an EVM failure:
//
//   - code 3: an execution revert, as geth (internal/ethapi's revertError:
//     code 3, message "execution reverted[: reason]", data the hex revert
//     data, "0x" when empty), Erigon, Reth, anvil and recent Nethermind
//     report it;
//   - an error carrying data (rpc.DataError) whose message says "revert":
//     Nethermind's and Besu's -32000 "execution reverted", Ganache's
//     "VM Exception while processing transaction: revert";
//   - code -32015, Nethermind's and OpenEthereum's "VM execution error.";
//   - a message naming an EVM error: geth sends its other execution errors
//     (vm.ErrOutOfGas, vm.ErrInvalidOpCode, …) as -32000 with their text,
//     Nethermind as -32003.
//
// Anything else — a closed port, a timeout or a canceled context, a non-2xx
// HTTP status (rpc.HTTPError, whatever its body says), a rate limit (-32005),
// "header not found", a method not found — is ErrRPCUnavailable: the chain
// did not say no.
func classifyCallError(ctx context.Context, err error) error {
	if ctx.Err() == nil && isExecutionError(err) {
		return fmt.Errorf("%w: %w", ErrContractSignatureInvalid, err)
	}
	return fmt.Errorf("%w: eth_call: %w", ErrRPCUnavailable, err)
}

// evmErrors are the texts of the EVM's execution errors (go-ethereum's
// core/vm errors, which other clients copy), lower case.
var evmErrors = []string{
	"execution reverted",
	"out of gas",
	"invalid opcode",
	"invalid jump destination",
	"stack underflow",
	"stack overflow",
	"write protection",
	"return data out of bounds",
	"max code size exceeded",
	"contract creation code storage out of gas",
	"max initcode size exceeded",
	"invalid code: must not begin with 0xef",
}

// isExecutionError reports whether err is a JSON-RPC error answer saying that
// the EVM ran the call and failed (see classifyCallError).
func isExecutionError(err error) bool {
	var httpErr rpc.HTTPError
	if errors.As(err, &httpErr) {
		return false
	}
	var rpcErr rpc.Error
	if !errors.As(err, &rpcErr) {
		return false
	}
	switch rpcErr.ErrorCode() {
	case 3, -32015:
		return true
	}
	msg := strings.ToLower(rpcErr.Error())
	var dataErr rpc.DataError
	if errors.As(err, &dataErr) && dataErr.ErrorData() != nil && strings.Contains(msg, "revert") {
		return true
	}
	for _, s := range evmErrors {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// hasCode reports whether address has code on the chain, through the cache.
func (v *ContractVerifier) hasCode(ctx context.Context, chain ChainReader, chainID uint64, address common.Address) (bool, error) {
	key := codeKey{chainID: chainID, address: address}
	now := v.now()
	v.mu.Lock()
	e, ok := v.codes[key]
	v.mu.Unlock()
	if ok && now.Before(e.expires) {
		return true, nil
	}

	callCtx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	code, err := chain.CodeAt(callCtx, address, nil)
	if err != nil {
		return false, fmt.Errorf("%w: eth_getCode %s, chain %d: %w", ErrRPCUnavailable, address, chainID, err)
	}
	if len(code) == 0 {
		return false, nil // not cached: see codeCacheHitTTL
	}
	v.storeCode(key, codeEntry{expires: v.now().Add(codeCacheHitTTL)})
	return true, nil
}

// storeCode adds an entry, keeping the cache within codeCacheMaxSize: expired
// entries go first, then the one closest to expiry.
func (v *ContractVerifier) storeCode(key codeKey, e codeEntry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.codes[key]; !ok && len(v.codes) >= codeCacheMaxSize {
		now := v.now()
		for k, old := range v.codes {
			if !now.Before(old.expires) {
				delete(v.codes, k)
			}
		}
		if len(v.codes) >= codeCacheMaxSize {
			var oldest codeKey
			var oldestExp time.Time
			first := true
			for k, old := range v.codes {
				if first || old.expires.Before(oldestExp) {
					oldest, oldestExp, first = k, old.expires, false
				}
			}
			delete(v.codes, oldest)
		}
	}
	v.codes[key] = e
}

// DialChains dials one ethclient per chain ID. Over HTTP(S) dialing does not
// connect, so an unreachable node shows up later, as ErrRPCUnavailable from
// Verify. The returned function closes every client. On error, nothing is left
// open.
func DialChains(ctx context.Context, rpcURLs map[uint64]string) (map[uint64]ChainReader, func(), error) {
	clients := make(map[uint64]*ethclient.Client, len(rpcURLs))
	closeAll := func() {
		for _, c := range clients {
			c.Close()
		}
	}
	chains := make(map[uint64]ChainReader, len(rpcURLs))
	for id, rawURL := range rpcURLs {
		c, err := ethclient.DialContext(ctx, rawURL)
		if err != nil {
			closeAll()
			// The URL may hold an API key: name only the chain, and drop the URL
			// from a parse error.
			if urlErr := (*url.Error)(nil); errors.As(err, &urlErr) {
				err = urlErr.Err
			}
			return nil, nil, fmt.Errorf("wallet: dial RPC for chain %d: %w", id, err)
		}
		clients[id] = c
		chains[id] = c
	}
	return chains, closeAll, nil
}
