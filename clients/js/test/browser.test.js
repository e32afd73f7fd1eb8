// The demo page in a real headless Chromium (Debian's /usr/bin/chromium,
// driven by puppeteer-core: nothing downloads a browser), signing in with an
// injected EIP-1193 wallet whose key lives here in Node (viem).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { startServer, api } from "./helpers.js";

const chromium = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const missing = !existsSync(chromium);
// In CI the browser test must run: a missing Chromium fails it there.
const skip = missing && process.env.CI !== "true" ? `no Chromium at ${chromium}` : false;

let server, browser, profile;
before(async () => {
  if (skip) return;
  if (missing) throw new Error(`CI=true and no Chromium at ${chromium}: apt-get install -y chromium`);
  const puppeteer = (await import("puppeteer-core")).default;
  server = await startServer();
  profile = await mkdtemp(join(tmpdir(), "walletauth-chromium-"));
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    timeout: 120_000,
    protocolTimeout: 120_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
  if (profile) await rm(profile, { recursive: true, force: true });
});

// openDemo opens /demo with a wallet injected before the page's scripts run:
// announced by EIP-6963 and as window.ethereum. personal_sign goes to Node,
// where viem signs with the account's key.
async function openDemo(account) {
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const signed = [];
  await page.exposeFunction("__testWalletSign", async (message, address) => {
    if (address.toLowerCase() !== account.address.toLowerCase()) throw new Error("unknown account");
    signed.push(message);
    return account.signMessage({ message });
  });
  await page.evaluateOnNewDocument((address) => {
    const provider = {
      async request({ method, params }) {
        if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
        if (method === "eth_chainId") return "0x1";
        if (method === "personal_sign") return window.__testWalletSign(params[0], params[1]);
        throw Object.assign(new Error(`unsupported ${method}`), { code: 4200 });
      },
    };
    window.ethereum = provider;
    const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", {
      detail: Object.freeze({
        info: { uuid: "5a3c3b1e-0000-4000-8000-000000000001", name: "Test Wallet", icon: "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>", rdns: "org.walletauth.test" },
        provider,
      }),
    }));
    window.addEventListener("eip6963:requestProvider", announce);
  }, account.address);
  const res = await page.goto(server.url + "/demo", { waitUntil: "load" });
  // A second visit revalidates with the ETag: 304, with the same CSP.
  assert.ok([200, 304].includes(res.status()), `GET /demo: ${res.status()}`);
  assert.match(res.headers()["content-security-policy"], /script-src 'self'/);
  return { page, problems, signed };
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent.trim());
const visible = (page, sel) => page.waitForSelector(sel, { visible: true });

test("demo page: Sign in with Ethereum shows the address and username; Sign out", { skip }, async () => {
  const account = privateKeyToAccount(generatePrivateKey());
  const { page, problems, signed } = await openDemo(account);

  const button = await page.waitForSelector("xpath/.//button[contains(., 'Sign in with Ethereum')]", { visible: true });
  await button.click();
  await visible(page, "#signed-in");

  assert.equal(signed.length, 1, "the wallet was asked to sign once");
  assert.match(signed[0], /wants you to sign in with your Ethereum account:/);
  assert.equal(await text(page, "#address"), account.address);
  const session = JSON.parse(await page.evaluate(() => localStorage.getItem("walletauth.session")));
  const me = await api(server, "GET", "/v1/users/me", { token: session.auth_token });
  assert.equal(me.status, 200);
  assert.equal(await text(page, "#username"), me.body.username);
  assert.equal(me.body.address, account.address);
  assert.equal(await text(page, "#wallets tr td"), account.address, "the linked wallets table lists the wallet");
  assert.equal(JSON.parse(await text(page, "#user-json")).id, me.body.id, "the user record is shown");
  // The sessions list is shown where the server lists sessions, else a note.
  const sessions = await api(server, "GET", "/v1/users/me/sessions", { token: session.auth_token });
  await page.waitForFunction((listed) => listed
    ? document.querySelectorAll("#sessions tr").length > 0
    : !document.getElementById("sessions-none").hidden, {}, sessions.status === 200);

  const signOut = await page.waitForSelector("xpath/.//button[contains(., 'Sign out')]", { visible: true });
  await signOut.click();
  await visible(page, "#signed-out");
  assert.equal(await page.evaluate(() => localStorage.getItem("walletauth.session")), null);
  assert.equal((await api(server, "GET", "/v1/users/me", { token: session.auth_token })).status, 401, "sign-out did not end the session");
  assert.deepEqual(problems, []);
  await page.close();
});

test("demo page: email and password sign-in", { skip }, async () => {
  const email = `browser${process.pid}@example.com`;
  const password = "a long enough password 7";
  const signup = await api(server, "POST", "/v1/auth/email/signup", { body: { email, password } });
  assert.equal(signup.status, 201);

  const { page, problems } = await openDemo(privateKeyToAccount(generatePrivateKey()));
  await visible(page, "#email");
  // The email-code form appears only where the server has POST /v1/auth/email/otp.
  const otp = await fetch(server.url + "/v1/auth/email/otp");
  await page.waitForFunction((has) => document.getElementById("otp").hidden === !has, {}, otp.status !== 404);
  await page.type("#email", email);
  await page.type("#password", "wrong password here");
  await page.click("#email-signin");
  await page.waitForFunction(() => document.getElementById("status").className === "error");
  assert.match(await text(page, "#status"), /invalid_credentials/);

  await page.$eval("#password", (e) => { e.value = ""; });
  await page.type("#password", password);
  await page.click("#email-signin");
  await visible(page, "#signed-in");
  assert.equal(await text(page, "#username"), signup.body.user.username);
  assert.equal(await text(page, "#address"), "(no wallet)");
  assert.match(await text(page, "#user-email"), new RegExp(email.replace(/\./g, "\\.")));
  assert.deepEqual(problems, []);
  await page.close();
});
