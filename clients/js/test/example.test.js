// examples/node/wallet-login.mjs runs as the README says, against a real server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

import { readFile } from "node:fs/promises";

import { startServer, repoRoot, cli } from "./helpers.js";

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
