// Package jsclient carries the browser SDK, walletauth.js, so that the
// service serves at GET /sdk/walletauth.js exactly the file of this npm
// package (the package itself is package.json, walletauth.js, index.d.ts).
package jsclient

import _ "embed" // the SDK is embedded

//go:embed walletauth.js
var source []byte

// Source returns a copy of walletauth.js.
func Source() []byte {
	return append([]byte(nil), source...)
}
