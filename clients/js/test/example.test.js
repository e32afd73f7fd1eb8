// examples/node/wallet-login.mjs runs as the README says, against a real server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

import { startServer, repoRoot } from "./helpers.js";

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
