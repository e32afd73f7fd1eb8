// Sign in to walletauth with a freshly generated Ethereum key and print the
// user. Run against a server started with `make run`:
//
//   cd examples/node && npm ci && node wallet-login.mjs
//
// WALLETAUTH_URL picks another server (default http://127.0.0.1:8080). The
// message the key signs names the server's SIWE domain (by default its
// host:port), exactly as a browser wallet would show it.
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

const base = (process.env.WALLETAUTH_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");

async function call(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${data.error?.code}: ${data.error?.message}`);
  return data;
}

const account = privateKeyToAccount(generatePrivateKey());
// 1. The server writes the EIP-4361 message for this address.
const challenge = await call("GET", `/v1/auth/wallet/challenge?address=${account.address}&chain_id=1`);
// 2. The wallet signs it with personal_sign (EIP-191).
const signature = await account.signMessage({ message: challenge.message });
// 3. The signed message is the login.
const login = await call("POST", "/v1/auth/wallet/login", { message: challenge.message, signature });

console.log(JSON.stringify({ created: login.created, user: login.user }, null, 2));
