// Test helpers: a real walletauth server built from this repository, on
// 127.0.0.1 with a throwaway SQLite database, and an EIP-1193 provider
// whose key is a real secp256k1 key from viem.
import { spawn, execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";

const run = promisify(execFile);
export const repoRoot = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

let built = null;
// binary is WALLETAUTH_BIN when set (make passes bin/walletauth), else a
// fresh go build of ./cmd/walletauth, once per test file.
async function binary(dir) {
  if (process.env.WALLETAUTH_BIN) return resolve(repoRoot, process.env.WALLETAUTH_BIN);
  if (!built) {
    const out = join(dir, "walletauth");
    built = run("go", ["build", "-o", out, "./cmd/walletauth"], { cwd: repoRoot, timeout: 600_000 }).then(() => out);
  }
  return built;
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts `walletauth serve` on a free port of 127.0.0.1 (the SIWE domain is
 * then that host:port) with a new SQLite database; resolves to
 * {url, env, bin, stop()}.
 */
export async function startServer(extraEnv = {}) {
  const dir = await mkdtemp(join(tmpdir(), "walletauth-js-"));
  const bin = await binary(dir);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME || dir,
      WALLETAUTH_HTTP_ADDR: `127.0.0.1:${port}`,
      WALLETAUTH_DATABASE_URL: `sqlite://${join(dir, "walletauth.db")}`,
      WALLETAUTH_LOG_LEVEL: "warn",
      WALLETAUTH_DEMO_PAGE: "true",
      ...extraEnv,
    };
    const child = spawn(bin, ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b) => { stderr += b; });
    let spawnError = null;
    const started = await new Promise((ok) => {
      let out = "";
      const timer = setTimeout(() => ok(false), 60_000);
      child.stdout.on("data", (b) => {
        out += b;
        if (out.includes("listening on http://")) { clearTimeout(timer); ok(true); }
      });
      child.on("exit", () => { clearTimeout(timer); ok(false); });
      child.on("error", (err) => { spawnError = err; clearTimeout(timer); ok(false); });
    });
    if (spawnError) throw new Error(`cannot run ${bin}: ${spawnError.message}`);
    if (started) {
      return {
        url: `http://127.0.0.1:${port}`,
        env,
        bin,
        async stop() {
          if (child.exitCode === null) {
            const exited = new Promise((ok) => child.on("exit", ok));
            child.kill("SIGTERM");
            await exited;
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill("SIGKILL");
    if (attempt >= 2) throw new Error(`walletauth serve did not start:\n${stderr}`);
  }
}

/**
 * An EIP-1193 provider backed by a viem local account. calls records every
 * request; reject makes personal_sign fail as a user's refusal (4001).
 */
export function eip1193(account, { chainId = 1, reject = false } = {}) {
  const calls = [];
  return {
    calls,
    async request({ method, params }) {
      calls.push({ method, params });
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [account.address];
        case "eth_chainId":
          return "0x" + chainId.toString(16);
        case "personal_sign": {
          if (reject) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
          const [message, address] = params;
          if (address.toLowerCase() !== account.address.toLowerCase()) {
            throw Object.assign(new Error("unknown account"), { code: 4100 });
          }
          return account.signMessage({ message });
        }
        default:
          throw Object.assign(new Error(`method ${method} not supported`), { code: 4200 });
      }
    },
  };
}

/** A fetch of the service with a bearer token, for checks outside the SDK. */
export async function api(server, method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

/** Runs the service's CLI against the server's database. */
export async function cli(server, ...args) {
  const { stdout } = await run(server.bin, args, { env: server.env, timeout: 120_000 });
  return stdout;
}

/** A memory storage with the localStorage interface, to inspect. */
export function memoryStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
  };
}
