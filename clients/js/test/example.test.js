// examples/node/wallet-login.mjs runs as the README says, against a real server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import { createServer as createHttpServer } from "node:http";

import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { startServer, repoRoot, cli, eip1193, api, memoryStorage } from "./helpers.js";

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

test("examples/node/wallet-login.mjs signs in with a generated key and prints the user", async () => {
  const dir = join(repoRoot, "examples", "node");
  const { stdout } = await promisify(execFile)(process.execPath, ["wallet-login.mjs"], {
    cwd: dir,
    env: { ...process.env, WALLETAUTH_URL: server.url },
    timeout: 60_000,
  });
  const out = JSON.parse(stdout);
  assert.equal(out.created, true);
  assert.match(out.user.address, /^0x[0-9a-fA-F]{40}$/);
  assert.equal(out.user.wallets[0].address, out.user.address);
  assert.equal(typeof out.user.username, "string");
});

test("examples/node/partner-signed-request.mjs (the partner guide's Node snippet) signs a partner request", async () => {
  const dir = join(repoRoot, "examples", "node");
  // docs/partners.md shows this file's code: keep the two the same.
  const code = await readFile(join(dir, "partner-signed-request.mjs"), "utf8");
  const guide = await readFile(join(repoRoot, "docs", "partners.md"), "utf8");
  const snippet = code.slice(code.indexOf("import crypto"));
  assert.ok(guide.includes(snippet), "docs/partners.md does not show examples/node/partner-signed-request.mjs as it is");

  const { partner_id: id, secret } = JSON.parse(await cli(server, "partner", "create", "--name", "signed", "--signed-requests", "--json"));
  const { stdout } = await promisify(execFile)(process.execPath, ["partner-signed-request.mjs"], {
    cwd: dir,
    env: { ...process.env, WALLETAUTH_URL: server.url, PARTNER_ID: id, SECRET: secret },
    timeout: 60_000,
  });
  const [status, ...rest] = stdout.trim().split(" ");
  assert.equal(status, "200", stdout);
  assert.equal(JSON.parse(rest.join(" ")).registered, true);
});

test("README: the browser snippet imports the served SDK", async () => {
  const readme = await readFile(join(repoRoot, "README.md"), "utf8");
  assert.ok(!readme.includes("../shared/"), "README.md links outside the repository");
  assert.match(readme, /import \{ WalletAuth \} from "\/sdk\/walletauth\.js"/);
});

test("README: the browser snippet signs in, gets an access token and signs out", async () => {
  // The page: the SDK as GET /sdk/walletauth.js serves it next to the
  // snippet, location.origin the test server, window.ethereum a viem key.
  const [importLine, ...body] = (await snippet("readme-browser")).split("\n");
  assert.equal(importLine, 'import { WalletAuth } from "/sdk/walletauth.js";');
  const sdk = await fetch(`${server.url}/sdk/walletauth.js`).then((r) => r.text());
  const mod = await runModule(`import { WalletAuth } from "./walletauth.js";\nexport default async function (window, localStorage, render) {\n${body.join("\n")}\nreturn token;\n}\n`, { "walletauth.js": sdk });
  const account = privateKeyToAccount(generatePrivateKey());
  const seen = [];
  globalThis.location = { origin: server.url };
  let token;
  try {
    token = await mod.default({ ethereum: eip1193(account) }, memoryStorage(), (user) => seen.push(user));
  } finally {
    delete globalThis.location;
  }
  assert.equal(seen.length, 2, "onChange after the sign-in and the sign-out");
  assert.equal(seen[0].address.toLowerCase(), account.address.toLowerCase());
  assert.equal(seen[1], null);
  assert.match(token, /^eyJ/);
});

test("docs/email.md: the email login curl walkthrough runs", async () => {
  const page = await readFile(join(repoRoot, "docs", "email.md"), "utf8");
  const m = page.match(/<!-- snippet: email-curl -->\n```sh\n([\s\S]*?)```/);
  assert.ok(m, "docs/email.md has no email-curl snippet");
  const script = m[1].replace("BASE=http://127.0.0.1:8080", `BASE=${server.url}`);
  assert.notEqual(script, m[1], "the snippet does not set BASE");
  const { stdout } = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", script], { timeout: 60_000 });
  const lines = stdout.trim().split("\n");
  const signup = JSON.parse(lines[0]);
  assert.equal(signup.created, true, stdout);
  assert.equal(signup.user.username, "ada");
  assert.equal(JSON.parse(lines[1]).email, "ada@example.com", "GET /v1/users/me with the token");
  assert.equal(lines[2], "204", "logout");
});

// Every fenced block of README.md and docs/*.md carries a
// "<!-- snippet: NAME -->" line; a block fenced as ```text is an
// illustration; every other block must be run (or compiled) by a test here
// or by the Go example named below.
const docFiles = async () => ["README.md", ...(await readdir(join(repoRoot, "docs"))).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

async function docBlocks() {
  const blocks = [];
  for (const file of await docFiles()) {
    const lines = (await readFile(join(repoRoot, file), "utf8")).split("\n");
    for (let i = 0; i < lines.length; i++) {
      const open = lines[i].match(/^```(\S*)/);
      if (!open) continue;
      let end = i + 1;
      while (end < lines.length && !lines[end].startsWith("```")) end++;
      const marker = (lines[i - 1] || "").match(/^<!-- snippet: ([a-z0-9-]+) -->$/);
      blocks.push({ file, line: i + 1, lang: open[1], name: marker?.[1], code: lines.slice(i + 1, end).join("\n") + "\n" });
      i = end;
    }
  }
  return blocks;
}

async function snippet(name) {
  const b = (await docBlocks()).find((x) => x.name === name);
  assert.ok(b, `no snippet ${name} in the docs`);
  return b.code;
}

// covered names each block this file runs or checks; goExamples names the Go
// file that compiles a Go block.
const covered = new Set([
  "readme-make", "readme-demo", "readme-wallet-login", "readme-browser",
  "partner-create", "partner-curl", "partner-node-signing", "partner-webhook-create",
  "partner-go-signing", "partner-webhook-go", "partner-oidc-go",
  "email-curl", "sessions-keys", "partner-jose", "partner-webhook-verify-node",
  "wallet-browser", "partner-webhook-express", "email-walkthrough",
]);
// notYetRun names the runnable blocks no test runs yet; each is a gap, listed
// so that it shows (and a new block cannot join it silently).
const notYetRun = new Set([]);
const goExamples = {
  "partner-go-signing": "partners/example_test.go",
  "partner-webhook-go": "webhooks/example_test.go",
  "partner-oidc-go": "tokens/example_test.go",
};

test("docs: every fenced block is named, and every runnable one is run by a test", async () => {
  const blocks = await docBlocks();
  const names = new Set();
  for (const b of blocks) {
    assert.ok(b.name, `${b.file}:${b.line}: a fenced block without a <!-- snippet: NAME --> line`);
    assert.ok(!names.has(b.name), `${b.file}:${b.line}: snippet ${b.name} named twice`);
    names.add(b.name);
    if (b.lang === "text") continue;
    if (notYetRun.has(b.name)) continue;
    assert.ok(covered.has(b.name), `${b.file}:${b.line}: snippet ${b.name} (${b.lang || "no language"}) is run by no test: run it, or fence it as text if it is an illustration`);
  }
  for (const n of [...covered, ...notYetRun]) assert.ok(names.has(n), `listed snippet ${n} is not in the docs`);
  for (const n of notYetRun) assert.ok(!covered.has(n), `snippet ${n} is listed as run and as not run`);
});

// dedent compares code as gofmt may align it: each line trimmed, runs of blanks as one.
const dedent = (s) => s.split("\n").map((l) => l.trim().replace(/\s+/g, " ")).filter(Boolean).join("\n");

test("docs: the Go blocks are the code of Go examples that compile", async () => {
  for (const [name, file] of Object.entries(goExamples)) {
    const code = await readFile(join(repoRoot, file), "utf8");
    assert.ok(dedent(code).includes(dedent(await snippet(name))), `${file} does not hold snippet ${name} as the docs show it`);
  }
});

test("README: make run and make test are targets of the Makefile, make run with the demo page", async () => {
  const targets = [];
  for (const name of ["readme-make", "readme-demo"]) {
    for (const [, target] of (await snippet(name)).matchAll(/^make (\S+)/gm)) targets.push(target);
  }
  assert.deepEqual([...new Set(targets)].sort(), ["run", "test"]);
  // make -n runs nothing (the service and the tests run elsewhere: CI runs make test).
  for (const target of targets) await promisify(execFile)("make", ["-n", target], { cwd: repoRoot, timeout: 60_000 });
  const { stdout } = await promisify(execFile)("make", ["-n", "run"], { cwd: repoRoot, timeout: 60_000 });
  assert.match(stdout, /WALLETAUTH_DEMO_PAGE=\$\{WALLETAUTH_DEMO_PAGE:-true\} \S*walletauth serve/, "make run turns the demo page on");
});

test("README: the wallet-login command is the one the example test runs", async () => {
  assert.equal(await snippet("readme-wallet-login"), "cd examples/node && npm ci && node wallet-login.mjs\n");
});

// sh runs a shell snippet with bash -euo pipefail against the test server.
async function sh(script, env = {}) {
  const { stdout } = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", script], {
    cwd: repoRoot, env: { ...process.env, ...server.env, ...env }, timeout: 60_000,
  });
  return stdout;
}
const local = (code) => code.replaceAll("http://127.0.0.1:8080", server.url).replaceAll("./bin/walletauth", server.bin);

test("docs/partners.md: partner create prints the id and the secret", async () => {
  const out = JSON.parse(await sh(local(await snippet("partner-create"))));
  assert.match(out.partner_id, /^pt_/);
  assert.match(out.secret, /^pts_/);
});

test("docs/partners.md: the partner curl walkthrough logs in, grants points and verifies", async () => {
  const { secret } = JSON.parse(await cli(server, "partner", "create", "--name", "curl", "--json"));
  const lines = (await sh(local(await snippet("partner-curl")), { SECRET: secret })).trim().split("\n");
  assert.equal(lines.length, 2, lines.join("\n"));
  assert.equal(JSON.parse(lines[0]).points, 100, "the points grant");
  const verified = JSON.parse(lines[1]);
  assert.equal(verified.active, true, "the login's auth_token verifies");
});

test("docs/partners.md: the webhook registration answers 201 with a secret", async () => {
  const { secret } = JSON.parse(await cli(server, "partner", "create", "--name", "hooks", "--json"));
  const hook = JSON.parse(await sh(local(await snippet("partner-webhook-create")), { SECRET: secret }));
  assert.match(hook.id, /^wh_/);
  assert.match(hook.secret, /^whsec_/);
  assert.deepEqual(hook.events, ["user.created", "user.updated", "user.deleted", "points.changed"]);
});

test("docs/sessions.md: keys list and keys rotate run", async () => {
  const lines = (await sh((await snippet("sessions-keys")).replaceAll(/^walletauth /gm, `${server.bin} `))).trim().split("\n");
  assert.match(lines[0], /^KID\s+CREATED\s+CURRENT/, "keys list prints a table");
  const rotated = JSON.parse(lines.at(-1));
  assert.equal(rotated.current, true, "keys rotate --json prints the new current key");
  assert.ok(!lines.slice(1, -1).some((l) => l.includes(rotated.kid)), "the rotated key is new");
});

// runModule writes a Node snippet as an .mjs file under clients/js (so that
// it resolves clients/js/node_modules, jose there), imports it and removes it.
async function runModule(code, files = {}) {
  const dir = await mkdtemp(join(repoRoot, "clients", "js", ".snippet-"));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const file = join(dir, "snippet.mjs");
    await writeFile(file, code);
    return await import(pathToFileURL(file).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("docs/partners.md: the jose snippet verifies a real access token offline", async () => {
  const code = await snippet("partner-jose");
  const local = code.replace("const issuer = 'https://app.example.com'", `const issuer = '${server.url}'`);
  assert.notEqual(local, code, "the snippet does not set the issuer");
  const { verify } = await runModule(local);
  const { secret } = JSON.parse(await cli(server, "partner", "create", "--name", "jose", "--json"));
  const login = await fetch(`${server.url}/v1/partner/users/login`, {
    method: "POST",
    headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
    body: JSON.stringify({ external_id: "jose-1" }),
  }).then((r) => r.json());
  const payload = await verify(login.access_token);
  assert.equal(payload.sub, login.user.id);
  assert.equal(payload.aud, "walletauth");
  await assert.rejects(verify(login.access_token.slice(0, -4) + "AAAA"), "a bad signature is refused");
});

test("docs/partners.md: the Node webhook verify function accepts a real delivery and refuses a forged one", { timeout: 60_000 }, async () => {
  const { verify } = await runModule((await snippet("partner-webhook-verify-node")) + "\nexport { verify };\n");
  const hooks = await startServer({ WALLETAUTH_WEBHOOK_ALLOW_PRIVATE: "true" });
  const receiver = createHttpServer();
  try {
    const delivered = new Promise((ok) => {
      receiver.on("request", (req, res) => {
        const chunks = [];
        req.on("data", (c) => chunks.push(c));
        req.on("end", () => { res.writeHead(204).end(); ok({ headers: req.headers, body: Buffer.concat(chunks).toString() }); });
      });
    });
    await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
    const { secret } = JSON.parse(await cli(hooks, "partner", "create", "--name", "hooks", "--json"));
    const auth = { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" };
    const hook = await fetch(`${hooks.url}/v1/partner/webhooks`, {
      method: "POST", headers: auth,
      body: JSON.stringify({ url: `http://127.0.0.1:${receiver.address().port}/walletauth-events`, events: ["user.created"] }),
    }).then((r) => r.json());
    assert.match(hook.secret, /^whsec_/, JSON.stringify(hook));
    await fetch(`${hooks.url}/v1/partner/users/login`, { method: "POST", headers: auth, body: JSON.stringify({ external_id: "hook-1" }) });
    const { headers, body } = await delivered;
    assert.equal(JSON.parse(body).type, "user.created");
    assert.equal(verify(hook.secret, headers, body), true, "a real delivery verifies");
    assert.equal(verify(hook.secret, headers, body + " "), false, "a changed body is refused");
    assert.equal(verify("whsec_" + Buffer.from("another key").toString("base64"), headers, body), false, "another secret is refused");
  } finally {
    receiver.close();
    await hooks.stop();
  }
});

test("docs/wallet.md: the browser snippet signs in with an EIP-1193 wallet", async () => {
  // The page's window.ethereum is a viem key behind an EIP-1193 provider;
  // the page's relative fetch resolves against the test server.
  const mod = await runModule(`export default async function (window, fetch) {\n${await snippet("wallet-browser")}\nreturn res;\n}\n`);
  const account = privateKeyToAccount(generatePrivateKey());
  const pageFetch = (path, init) => fetch(new URL(path, server.url), init);
  const res = await mod.default({ ethereum: eip1193(account) }, pageFetch);
  assert.equal(res.created, true, JSON.stringify(res));
  assert.equal(res.user.address.toLowerCase(), account.address.toLowerCase());
  const me = await api(server, "GET", "/v1/users/me", { token: res.auth_token });
  assert.equal(me.status, 200);
  assert.equal(me.body.id, res.user.id);
});

test("docs/partners.md: the express receiver answers 204 to a real delivery and 400 to a forged one", { timeout: 60_000 }, async () => {
  const hooks = await startServer({ WALLETAUTH_WEBHOOK_ALLOW_PRIVATE: "true" });
  const receiver = createHttpServer();
  const saved = process.env.WALLETAUTH_WEBHOOK_SECRET;
  try {
    await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
    const url = `http://127.0.0.1:${receiver.address().port}/walletauth-events`;
    const { secret } = JSON.parse(await cli(hooks, "partner", "create", "--name", "express", "--json"));
    const auth = { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" };
    const hook = await fetch(`${hooks.url}/v1/partner/webhooks`, {
      method: "POST", headers: auth, body: JSON.stringify({ url, events: ["user.created"] }),
    }).then((r) => r.json());
    process.env.WALLETAUTH_WEBHOOK_SECRET = hook.secret;
    const { app } = await runModule((await snippet("partner-webhook-express")) + "\nexport { app };\n");
    const answered = new Promise((ok) => {
      receiver.on("request", (req, res) => {
        res.on("finish", () => ok({ status: res.statusCode, id: req.headers["webhook-id"] }));
        app(req, res);
      });
    });
    await fetch(`${hooks.url}/v1/partner/users/login`, { method: "POST", headers: auth, body: JSON.stringify({ external_id: "express-1" }) });
    const first = await answered;
    assert.equal(first.status, 204, "a real delivery is accepted");
    const forged = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "webhook-id": "msg_forged", "webhook-timestamp": String(Math.floor(Date.now() / 1000)), "webhook-signature": "v1,AAAA" },
      body: JSON.stringify({ type: "user.created", data: {} }),
    });
    assert.equal(forged.status, 400, "a forged delivery is refused");
  } finally {
    if (saved === undefined) delete process.env.WALLETAUTH_WEBHOOK_SECRET; else process.env.WALLETAUTH_WEBHOOK_SECRET = saved;
    receiver.close();
    await hooks.stop();
  }
});

test("docs/email.md: the mail-off walkthrough signs up, verifies, resets and signs in with a code", { timeout: 60_000 }, async () => {
  const own = await startServer(); // its own database: the walkthrough signs up ada@example.com too
  try {
    const script = (await snippet("email-walkthrough")).replace("B=http://127.0.0.1:8080", `B=${own.url}`).replaceAll("./bin/walletauth", own.bin);
    const { stdout } = await promisify(execFile)("bash", ["-euo", "pipefail", "-c", script], { cwd: repoRoot, env: { ...process.env, ...own.env }, timeout: 60_000 });
    const lines = stdout.trim().split("\n");
    assert.match(lines[0], /^CREATED_AT\s+STATUS/, stdout);
    assert.match(lines[1], /Confirm your email address: \d{6}$/, stdout);
    const [confirmed, forgot, reset, otp, signedIn] = lines.slice(2);
    assert.equal(JSON.parse(confirmed).email_verified, true, stdout);
    assert.equal(forgot, "202");
    assert.equal(JSON.parse(reset).created, false, stdout);
    assert.ok(JSON.parse(otp).expires_at, stdout);
    const last = JSON.parse(signedIn);
    assert.match(last.auth_token, /^wat_/, stdout);
    assert.equal(last.user.email, "ada@example.com");
  } finally {
    await own.stop();
  }
});
