// walletauth browser SDK: an ES module with no dependencies.
//
// The same file is served by the service at GET /sdk/walletauth.js. Its API
// is fixed by the contract's appendix ("the browser SDK"); the types are in
// index.d.ts beside it.

const SESSION_KEY = "walletauth.session";
// getAccessToken returns a token that stays valid at least this long.
const ACCESS_TOKEN_MARGIN_MS = 60_000;

/**
 * Every failure of the SDK: `status` is the HTTP status (0 when the network
 * failed or the wallet refused), `code` the contract's error code
 * (`wallet_rejected` when the wallet refuses, EIP-1193 error 4001).
 */
export class WalletAuthError extends Error {
  constructor(status, code, message, options) {
    super(message, options);
    this.name = "WalletAuthError";
    this.status = status;
    this.code = code;
  }
}

/** The client of one walletauth service. */
export class WalletAuth {
  #baseUrl;
  #storage;
  #session = null; // {auth_token, user, access_token?, access_expires_at?}
  #listeners = new Set();
  #refreshing = null; // the POST /v1/auth/token in flight, shared by callers

  /**
   * @param {{baseUrl?: string, storage?: {getItem(k: string): string|null, setItem(k: string, v: string): void, removeItem(k: string): void}}} [options]
   */
  constructor({ baseUrl, storage } = {}) {
    if (baseUrl === undefined || baseUrl === null || baseUrl === "") {
      const origin = globalThis.location && globalThis.location.origin;
      if (!origin || origin === "null") {
        throw new TypeError("WalletAuth: baseUrl is required outside a web page");
      }
      baseUrl = origin;
    }
    this.#baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.#storage = storage || memoryStorage();
    this.#session = this.#load();
  }

  /** The last user object seen, or null when signed out. */
  get user() {
    return this.#session ? this.#session.user : null;
  }

  /** The session's auth token, or null when signed out. */
  get authToken() {
    return this.#session ? this.#session.auth_token : null;
  }

  /**
   * Calls fn(user | null) after every sign-in and sign-out; returns a
   * function that unsubscribes.
   */
  onChange(fn) {
    if (typeof fn !== "function") throw new TypeError("WalletAuth.onChange: fn must be a function");
    const entry = { fn };
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /**
   * Sign-In with Ethereum through any EIP-1193 provider: eth_requestAccounts,
   * eth_chainId (unless chainId is given), the server's EIP-4361 challenge,
   * personal_sign, then the login. Resolves to the login answer.
   */
  async signInWithEthereum(provider, { chainId, referralCode } = {}) {
    if (!provider || typeof provider.request !== "function") {
      throw new WalletAuthError(0, "wallet_unavailable", "no EIP-1193 wallet provider was given");
    }
    const accounts = await walletRequest(provider, "eth_requestAccounts");
    const address = Array.isArray(accounts) ? accounts[0] : undefined;
    if (typeof address !== "string" || address === "") {
      throw new WalletAuthError(0, "wallet_rejected", "the wallet shared no account");
    }
    let chain = chainId;
    if (chain === undefined || chain === null) {
      chain = await walletRequest(provider, "eth_chainId");
    }
    const chainNumber = parseChainId(chain);
    const query = new URLSearchParams({ address, chain_id: String(chainNumber) });
    const challenge = await this.#request("GET", `/v1/auth/wallet/challenge?${query}`);
    const signature = await walletRequest(provider, "personal_sign", [challenge.message, address]);
    const body = { message: challenge.message, signature };
    if (referralCode) body.referral_code = referralCode;
    return this.#signedIn(await this.#request("POST", "/v1/auth/wallet/login", { body }));
  }

  /** Creates an email account (POST /v1/auth/email/signup); resolves to the login answer. */
  async signUpWithEmail({ email, password, username, language, referralCode } = {}) {
    const body = { email, password };
    if (username !== undefined) body.username = username;
    if (language !== undefined) body.language = language;
    if (referralCode !== undefined) body.referral_code = referralCode;
    return this.#signedIn(await this.#request("POST", "/v1/auth/email/signup", { body }));
  }

  /** Signs in with email and password (POST /v1/auth/email/login). */
  async signInWithEmail(email, password) {
    return this.#signedIn(await this.#request("POST", "/v1/auth/email/login", { body: { email, password } }));
  }

  /** Mails a one-time login code (POST /v1/auth/email/otp); resolves to {expires_at}. */
  async sendEmailCode(email) {
    return this.#request("POST", "/v1/auth/email/otp", { body: { email } });
  }

  /** Signs in with a mailed code (POST /v1/auth/email/otp/verify). */
  async verifyEmailCode(email, code, { referralCode } = {}) {
    const body = { email, code };
    if (referralCode !== undefined) body.referral_code = referralCode;
    return this.#signedIn(await this.#request("POST", "/v1/auth/email/otp/verify", { body }));
  }

  /** Signs in with a partner's single-use login_code (POST /v1/auth/code). */
  async signInWithLoginCode(loginCode) {
    return this.#signedIn(await this.#request("POST", "/v1/auth/code", { body: { login_code: loginCode } }));
  }

  /** The signed-in user, fresh from GET /v1/users/me. */
  async me() {
    const user = await this.#authed("GET", "/v1/users/me");
    if (this.#session) {
      this.#session.user = user;
      this.#save();
    }
    return user;
  }

  /**
   * An access token (JWT) valid for at least 60 more seconds: the one held
   * when it is, else a fresh one from POST /v1/auth/token. Concurrent calls
   * share one renewal.
   */
  async getAccessToken() {
    const s = this.#requireSession();
    if (s.access_token && s.access_expires_at - Date.now() >= ACCESS_TOKEN_MARGIN_MS) {
      return s.access_token;
    }
    if (!this.#refreshing) {
      this.#refreshing = this.#renewAccessToken(s).finally(() => {
        this.#refreshing = null;
      });
    }
    return this.#refreshing;
  }

  /**
   * Ends the session (POST /v1/auth/logout) and forgets it. The session is
   * forgotten here even when the server cannot be told; then the promise
   * rejects so the caller knows the token may still be live.
   */
  async signOut() {
    const s = this.#session;
    if (!s) return;
    let failure = null;
    try {
      await this.#request("POST", "/v1/auth/logout", { token: s.auth_token });
    } catch (err) {
      // A token the server no longer knows is already signed out.
      if (!(err instanceof WalletAuthError && err.status === 401)) failure = err;
    }
    if (this.#session === s) this.#forget();
    if (failure) throw failure;
  }

  async #renewAccessToken(s) {
    const started = Date.now();
    const answer = await this.#authed("POST", "/v1/auth/token");
    if (!answer || typeof answer.access_token !== "string") {
      throw new WalletAuthError(200, "invalid_response", "the token answer carries no access_token");
    }
    if (this.#session === s) {
      this.#setAccessToken(s, answer, started);
      this.#save();
    }
    return answer.access_token;
  }

  #setAccessToken(s, answer, receivedAt) {
    if (typeof answer.access_token !== "string") return;
    s.access_token = answer.access_token;
    // The lifetime counts from before the request went out, so the local
    // clock's skew against the server's does not matter.
    s.access_expires_at = receivedAt + Number(answer.expires_in || 0) * 1000;
  }

  // #authed calls an endpoint with the session's auth token. A 401 means the
  // session has ended elsewhere (logout-all, deleted user): it is forgotten.
  async #authed(method, path, options = {}) {
    const s = this.#requireSession();
    try {
      return await this.#request(method, path, { ...options, token: s.auth_token });
    } catch (err) {
      if (err instanceof WalletAuthError && err.status === 401 && this.#session === s) this.#forget();
      throw err;
    }
  }

  #requireSession() {
    if (!this.#session) throw new WalletAuthError(401, "unauthorized", "not signed in");
    return this.#session;
  }

  #signedIn(answer) {
    if (!answer || typeof answer.auth_token !== "string" || !answer.user) {
      throw new WalletAuthError(200, "invalid_response", "the login answer carries no auth_token or user");
    }
    const s = { auth_token: answer.auth_token, user: answer.user };
    this.#setAccessToken(s, answer, Date.now());
    this.#session = s;
    this.#refreshing = null;
    this.#save();
    this.#emit();
    return answer;
  }

  #forget() {
    this.#session = null;
    this.#refreshing = null;
    try {
      this.#storage.removeItem(SESSION_KEY);
    } catch {
      // storage refused (private mode, quota): the session is gone from memory
    }
    this.#emit();
  }

  #emit() {
    const user = this.user;
    for (const { fn } of [...this.#listeners]) {
      try {
        fn(user);
      } catch (err) {
        // A listener's bug must not undo the sign-in: report it the way an
        // event listener's exception is reported.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  #load() {
    let raw = null;
    try {
      raw = this.#storage.getItem(SESSION_KEY);
    } catch {
      return null;
    }
    if (typeof raw !== "string" || raw === "") return null;
    try {
      const s = JSON.parse(raw);
      if (s && typeof s.auth_token === "string" && s.user && typeof s.user === "object") return s;
    } catch {
      // not ours or damaged: start signed out
    }
    return null;
  }

  #save() {
    if (!this.#session) return;
    try {
      this.#storage.setItem(SESSION_KEY, JSON.stringify(this.#session));
    } catch {
      // storage refused: the session still lives in memory
    }
  }

  async #request(method, path, { body, token } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(this.#baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit", // the session travels in Authorization, never in cookies
      });
    } catch (err) {
      throw new WalletAuthError(0, "network_error", `cannot reach ${this.#baseUrl}: ${err && err.message ? err.message : err}`, { cause: err });
    }
    let text;
    try {
      text = await res.text();
    } catch (err) {
      throw new WalletAuthError(0, "network_error", `the answer from ${this.#baseUrl} was cut off`, { cause: err });
    }
    let data = null;
    if (text !== "") {
      try {
        data = JSON.parse(text);
      } catch {
        if (res.ok) throw new WalletAuthError(res.status, "invalid_response", `${method} ${path}: the answer is not JSON`);
      }
    }
    if (!res.ok) {
      const e = data && data.error;
      if (e && typeof e.code === "string") {
        throw new WalletAuthError(res.status, e.code, typeof e.message === "string" ? e.message : e.code);
      }
      throw new WalletAuthError(res.status, "http_error", `${method} ${path}: HTTP ${res.status}`);
    }
    return data;
  }
}

/**
 * EIP-6963: the wallets installed in this browser that announce themselves,
 * each {info: {uuid, name, icon, rdns}, provider}. Waits `timeout` ms for
 * the announcements. Empty outside a browser.
 */
export function discoverWallets({ timeout = 300 } = {}) {
  const w = globalThis.window;
  if (!w || typeof w.addEventListener !== "function") return Promise.resolve([]);
  return new Promise((resolve) => {
    const found = new Map();
    const onAnnounce = (event) => {
      const d = event && event.detail;
      if (!d || !d.info || !d.provider || typeof d.provider.request !== "function") return;
      found.set(d.info.uuid || d.info.rdns || String(found.size), Object.freeze({ info: d.info, provider: d.provider }));
    };
    w.addEventListener("eip6963:announceProvider", onAnnounce);
    w.dispatchEvent(new Event("eip6963:requestProvider"));
    setTimeout(() => {
      w.removeEventListener("eip6963:announceProvider", onAnnounce);
      resolve([...found.values()]);
    }, timeout);
  });
}

async function walletRequest(provider, method, params) {
  try {
    return await provider.request(params === undefined ? { method } : { method, params });
  } catch (err) {
    const code = err && typeof err === "object" ? err.code : undefined;
    const message = err && err.message ? err.message : String(err);
    if (code === 4001) {
      throw new WalletAuthError(0, "wallet_rejected", message || "the wallet refused the request", { cause: err });
    }
    throw new WalletAuthError(0, "wallet_error", `${method}: ${message}`, { cause: err });
  }
}

function parseChainId(v) {
  let n;
  if (typeof v === "number") n = v;
  else if (typeof v === "bigint") n = Number(v);
  else if (typeof v === "string" && /^0x[0-9a-f]+$/i.test(v)) n = parseInt(v, 16);
  else if (typeof v === "string" && /^[0-9]+$/.test(v)) n = parseInt(v, 10);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new WalletAuthError(0, "wallet_error", `the chain ID ${JSON.stringify(String(v))} is not a positive integer`);
  }
  return n;
}

function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => {
      m.set(k, String(v));
    },
    removeItem: (k) => {
      m.delete(k);
    },
  };
}
