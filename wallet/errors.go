package wallet

import "errors"

// Sentinel errors. Functions wrap them with detail, so compare with errors.Is.
var (
	// ErrInvalidAddress: not "0x" + 40 hex digits, or mixed case that is not
	// a valid EIP-55 checksum.
	ErrInvalidAddress = errors.New("wallet: invalid address")
	// ErrInvalidMessage: the text or the fields are not a valid EIP-4361 message.
	ErrInvalidMessage = errors.New("wallet: invalid message")
	// ErrInvalidSignature: a malformed signature (bad hex, bad length, bad v).
	ErrInvalidSignature = errors.New("wallet: invalid signature")
	// ErrNotKeySignature comes together with ErrInvalidSignature from Recover
	// and VerifyEOA when the signature does not have the shape of a key
	// signature (not 64 or 65 bytes, or a 65-byte one whose v is not 0, 1,
	// 27 or 28). Such a signature may still come from a contract wallet
	// (EIP-1271 / EIP-6492), which this package does not check.
	ErrNotKeySignature = errors.New("wallet: not a 64/65-byte key signature")
	// ErrSignatureMismatch: a well-formed key signature that was not made by
	// the expected address (or by any key at all).
	ErrSignatureMismatch = errors.New("wallet: signature mismatch")
	// ErrMessageExpired: the message's Expiration Time has passed.
	ErrMessageExpired = errors.New("wallet: message expired")
	// ErrMessageNotYetValid: the message's Issued At or Not Before is in the future.
	ErrMessageNotYetValid = errors.New("wallet: message not yet valid")
	// ErrDomainMismatch: the message's domain is not allowed, or its URI is
	// not on its domain.
	ErrDomainMismatch = errors.New("wallet: domain mismatch")
	// ErrChainNotAllowed: the message's Chain ID is not an allowed one.
	ErrChainNotAllowed = errors.New("wallet: chain not allowed")
)
