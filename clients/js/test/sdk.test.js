// The SDK against a real walletauth server, with a viem key as the wallet.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { getAddress } from "viem";

import { WalletAuth, WalletAuthError, discoverWallets } from "../walletauth.js";
import { startServer, eip1193, api, cli, memoryStorage } from "./helpers.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const newAccount = () => privateKeyToAccount(generatePrivateKey());
let emails = 0;
const newEmail = () => `sdk${process.pid}x${++emails}@example.com`;

async function rejects(promise, { status, code }) {
  const err = await promise.then(() => assert.fail("resolved, want a WalletAuthError"), (e) => e);
  assert.ok(err instanceof WalletAuthError, `want a WalletAuthError, got ${err}`);
  assert.ok(err instanceof Error);
  assert.equal(err.name, "WalletAuthError");
  assert.equal(err.status, status, `status (${err.code}: ${err.message})`);
  assert.equal(err.code, code, `code (${err.message})`);
  assert.equal(typeof err.message, "string");
  assert.notEqual(err.message, "");
  return err;
}

test("signInWithEthereum signs the server's challenge with personal_sign and keeps the session", async () => {
  const account = newAccount();
  const wallet = eip1193(account);
  const wa = new WalletAuth({ baseUrl: server.url });
  const seen = [];
  wa.onChange((u) => seen.push(u));
  assert.equal(wa.user, null);
  assert.equal(wa.authToken, null);

  const answer = await wa.signInWithEthereum(wallet);
  assert.equal(answer.created, true);
  assert.equal(answer.user.address, getAddress(account.address));
  assert.equal(answer.user.wallets[0].type, "eoa");
  assert.equal(wa.authToken, answer.auth_token);
  assert.deepEqual(wa.user, answer.user);
  assert.deepEqual(seen, [answer.user]);

  // The order of the appendix: accounts, chain, then personal_sign of the
  // challenge's exact text with [message, address].
  assert.deepEqual(wallet.calls.map((c) => c.method), ["eth_requestAccounts", "eth_chainId", "personal_sign"]);
  const [message, address] = wallet.calls[2].params;
  assert.equal(address, account.address);
  assert.match(message, new RegExp(`^${server.url.slice("http://".length).replace(/\./g, "\\.")} wants you to sign in with your Ethereum account:\\n${answer.user.address}\\n`));
  assert.match(message, /\nChain ID: 1\n/);

  const me = await wa.me();
  assert.equal(me.id, answer.user.id);
  const again = await new WalletAuth({ baseUrl: server.url }).signInWithEthereum(eip1193(account));
  assert.equal(again.created, false);
  assert.equal(again.user.id, answer.user.id);
});

test("signInWithEthereum: chainId given skips eth_chainId; a refused chain is the contract's error", async () => {
  const account = newAccount();
  const wallet = eip1193(account, { chainId: 5 });
  const wa = new WalletAuth({ baseUrl: server.url });
  const answer = await wa.signInWithEthereum(wallet, { chainId: 1 });
  assert.equal(answer.user.wallets[0].chain_id, 1);
  assert.ok(!wallet.calls.some((c) => c.method === "eth_chainId"), "eth_chainId was called though chainId was given");

  // The wallet is on chain 5, which the server does not allow.
  await rejects(new WalletAuth({ baseUrl: server.url }).signInWithEthereum(eip1193(newAccount(), { chainId: 5 })),
    { status: 400, code: "chain_not_allowed" });
});

test("signInWithEthereum with a referral code sets the referrer", async () => {
  const referrer = await new WalletAuth({ baseUrl: server.url }).signInWithEthereum(eip1193(newAccount()));
  const answer = await new WalletAuth({ baseUrl: server.url })
    .signInWithEthereum(eip1193(newAccount()), { referralCode: referrer.user.referral_code });
  assert.equal(answer.user.referrer, referrer.user.username);
  await rejects(new WalletAuth({ baseUrl: server.url }).signInWithEthereum(eip1193(newAccount()), { referralCode: "nosuchcode" }),
    { status: 400, code: "invalid_referral_code" });
});

test("a wallet that refuses (EIP-1193 4001) rejects with wallet_rejected and signs nobody in", async () => {
  const wa = new WalletAuth({ baseUrl: server.url });
  let changes = 0;
  wa.onChange(() => changes++);
  await rejects(wa.signInWithEthereum(eip1193(newAccount(), { reject: true })), { status: 0, code: "wallet_rejected" });
  assert.equal(wa.user, null);
  assert.equal(wa.authToken, null);
  assert.equal(changes, 0);
  // Refusing the account request is a refusal too; other wallet failures are wallet_error.
  const refuses = { request: async () => { throw Object.assign(new Error("User rejected"), { code: 4001 }); } };
  await rejects(wa.signInWithEthereum(refuses), { status: 0, code: "wallet_rejected" });
  const broken = { request: async () => { throw Object.assign(new Error("Resource unavailable"), { code: -32002 }); } };
  await rejects(wa.signInWithEthereum(broken), { status: 0, code: "wallet_error" });
  await rejects(wa.signInWithEthereum(undefined), { status: 0, code: "wallet_unavailable" });
});

test("a network failure rejects with status 0", async () => {
  // A port nothing listens on: take a server's and stop it.
  const gone = await startServer();
  await gone.stop();
  const wa = new WalletAuth({ baseUrl: gone.url });
  const err = await rejects(wa.signInWithEmail("a@example.com", "whatever-password"), { status: 0, code: "network_error" });
  assert.ok(err.cause, "the network error is kept as the cause");
  await rejects(wa.signInWithEthereum(eip1193(newAccount())), { status: 0, code: "network_error" });
});

test("email sign-up, sign-in, me and sign-out", async () => {
  const email = newEmail();
  const password = "correct horse battery staple 42";
  const wa = new WalletAuth({ baseUrl: server.url });
  const seen = [];
  const unsubscribe = wa.onChange((u) => seen.push(u && u.id));

  const signup = await wa.signUpWithEmail({ email, password, username: `sdk_${process.pid}_${emails}`, language: "de" });
  assert.equal(signup.created, true);
  assert.equal(signup.user.email, email);
  assert.equal(signup.user.language, "de");
  assert.equal(signup.user.address, null);
  await rejects(new WalletAuth({ baseUrl: server.url }).signUpWithEmail({ email, password }), { status: 409, code: "email_taken" });
  await rejects(new WalletAuth({ baseUrl: server.url }).signUpWithEmail({ email: newEmail(), password: "short" }), { status: 400, code: "weak_password" });

  const login = await wa.signInWithEmail(email, password);
  assert.equal(login.created, false);
  assert.equal(login.user.id, signup.user.id);
  assert.notEqual(login.auth_token, signup.auth_token);
  assert.equal((await wa.me()).email, email);
  await rejects(new WalletAuth({ baseUrl: server.url }).signInWithEmail(email, "wrong password 123"), { status: 401, code: "invalid_credentials" });

  const token = wa.authToken;
  await wa.signOut();
  assert.equal(wa.user, null);
  assert.equal(wa.authToken, null);
  assert.deepEqual(seen, [signup.user.id, signup.user.id, null]);
  // The server ended the session, not only the SDK.
  assert.equal((await api(server, "GET", "/v1/users/me", { token })).status, 401);
  await rejects(wa.me(), { status: 401, code: "unauthorized" });
  await wa.signOut(); // signed out already: nothing to do

  unsubscribe();
  await wa.signInWithEmail(email, password);
  assert.equal(seen.length, 3, "an unsubscribed listener was called");
});

test("the session is kept in the given storage and restored from it", async () => {
  const storage = memoryStorage();
  const first = new WalletAuth({ baseUrl: server.url, storage });
  const answer = await first.signInWithEthereum(eip1193(newAccount()));
  assert.ok(storage.map.size > 0, "nothing was stored");

  const second = new WalletAuth({ baseUrl: server.url + "/", storage });
  assert.equal(second.authToken, answer.auth_token);
  assert.equal(second.user.id, answer.user.id);
  assert.equal((await second.me()).id, answer.user.id);

  await second.signOut();
  assert.equal(storage.map.size, 0, "sign-out left the session in storage");
  assert.equal(new WalletAuth({ baseUrl: server.url, storage }).user, null);

  // Damaged storage starts signed out instead of throwing.
  const damaged = memoryStorage();
  damaged.setItem("walletauth.session", "{not json");
  assert.equal(new WalletAuth({ baseUrl: server.url, storage: damaged }).user, null);
});

test("a session ended elsewhere is forgotten on its next use", async () => {
  const wa = new WalletAuth({ baseUrl: server.url });
  await wa.signInWithEthereum(eip1193(newAccount()));
  const seen = [];
  wa.onChange((u) => seen.push(u));
  assert.equal((await api(server, "POST", "/v1/auth/logout-all", { token: wa.authToken })).status, 204);
  await rejects(wa.me(), { status: 401, code: "unauthorized" });
  assert.equal(wa.user, null);
  assert.equal(wa.authToken, null);
  assert.deepEqual(seen, [null]);
});

test("signInWithLoginCode takes a partner's login_code", async () => {
  const { secret } = JSON.parse(await cli(server, "partner", "create", "--name", "SDK test", "--json"));
  const partner = await fetch(server.url + "/v1/partner/users/login", {
    method: "POST",
    headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
    body: JSON.stringify({ external_id: `sdk-${process.pid}` }),
  }).then((r) => r.json());
  assert.equal(typeof partner.login_code, "string");

  const wa = new WalletAuth({ baseUrl: server.url });
  const answer = await wa.signInWithLoginCode(partner.login_code);
  assert.equal(answer.user.id, partner.user.id);
  assert.equal(wa.user.id, partner.user.id);
  await rejects(new WalletAuth({ baseUrl: server.url }).signInWithLoginCode(partner.login_code), { status: 401, code: "login_code_invalid" });
});

test("without a page, baseUrl is required; discoverWallets finds none", async () => {
  assert.throws(() => new WalletAuth(), TypeError);
  assert.deepEqual(await discoverWallets({ timeout: 10 }), []);
  await rejects(new WalletAuth({ baseUrl: server.url }).me(), { status: 401, code: "unauthorized" });
  await rejects(new WalletAuth({ baseUrl: server.url }).getAccessToken(), { status: 401, code: "unauthorized" });
});

test("getAccessToken (needs the access tokens of v1.1: POST /v1/auth/token)", async () => {
  // The only test that needs access tokens (access_token in login answers,
  // POST /v1/auth/token): it passes once the server issues them.
  const storage = memoryStorage();
  const wa = new WalletAuth({ baseUrl: server.url, storage });
  const answer = await wa.signInWithEthereum(eip1193(newAccount()));
  assert.equal(typeof answer.access_token, "string", "the login answer carries no access_token");
  const claims = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

  const first = await wa.getAccessToken();
  assert.equal(first, answer.access_token, "a fresh login's token is used as it is");
  assert.ok(claims(first).exp - Date.now() / 1000 >= 60);
  assert.equal(claims(first).sub, answer.user.id);
  // The token works where the auth token does.
  assert.equal((await api(server, "GET", "/v1/users/me", { token: first })).body.id, answer.user.id);

  // A held token with less than 60 s left is renewed through POST /v1/auth/token,
  // once for concurrent callers.
  const session = JSON.parse(storage.getItem("walletauth.session"));
  session.access_expires_at = Date.now() + 30_000;
  storage.setItem("walletauth.session", JSON.stringify(session));
  const restored = new WalletAuth({ baseUrl: server.url, storage });
  const [a, b] = await Promise.all([restored.getAccessToken(), restored.getAccessToken()]);
  assert.equal(a, b);
  assert.notEqual(a, first);
  assert.ok(claims(a).exp - Date.now() / 1000 >= 60);
  assert.equal(await restored.getAccessToken(), a, "a token with time left is not renewed");

  await restored.signOut();
  assert.equal((await api(server, "GET", "/v1/users/me", { token: a })).status, 401, "the access token outlived its session");
});
