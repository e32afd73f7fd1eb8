// Types of the walletauth browser SDK (walletauth.js).

/** A wallet linked to a user. */
export interface Wallet {
  address: string;
  chain_id: number;
  type: "eoa" | "contract";
  primary: boolean;
  linked_at: string;
}

/** The unified user record every login method returns. */
export interface User {
  id: string;
  username: string;
  email: string | null;
  email_verified: boolean;
  language: string;
  address: string | null;
  wallets: Wallet[];
  points: number;
  referral_code: string;
  referrer: string | null;
  referee_count: number;
  joined_at: string;
  [extra: string]: unknown;
}

/** The answer of every successful login. */
export interface LoginAnswer {
  auth_token: string;
  /** A signed JWT (ES256); present once the server issues access tokens (v1.1). */
  access_token?: string;
  token_type?: "Bearer";
  /** The access token's lifetime in seconds. */
  expires_in?: number;
  user: User;
  created: boolean;
  [extra: string]: unknown;
}

/** Where the session is kept, e.g. `localStorage`. */
export interface SessionStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Any EIP-1193 provider (MetaMask, Rabby, Coinbase Wallet, …). */
export interface EIP1193Provider {
  request(args: { method: string; params?: unknown[] | Record<string, unknown> }): Promise<unknown>;
}

export interface WalletAuthOptions {
  /** The service's origin; defaults to the page's origin. */
  baseUrl?: string;
  /** Where the session is kept; default in memory. */
  storage?: SessionStorage;
}

export interface SignInWithEthereumOptions {
  /** The chain to sign in on; default the wallet's (eth_chainId). */
  chainId?: number | string;
  referralCode?: string;
}

export interface SignUpWithEmailOptions {
  email: string;
  password: string;
  username?: string;
  language?: string;
  referralCode?: string;
}

/**
 * Every failure: `status` is the HTTP status (0 when the network failed or
 * the wallet refused); `code` the contract's error code, or one of the
 * SDK's: `wallet_rejected` (EIP-1193 error 4001), `wallet_error`,
 * `wallet_unavailable`, `network_error`, `invalid_response`, `http_error`.
 */
export class WalletAuthError extends Error {
  constructor(status: number, code: string, message: string, options?: { cause?: unknown });
  readonly name: "WalletAuthError";
  status: number;
  code: string;
}

export class WalletAuth {
  constructor(options?: WalletAuthOptions);
  /** The last user object seen, or null. */
  readonly user: User | null;
  /** The session's auth token, or null. */
  readonly authToken: string | null;

  signInWithEthereum(provider: EIP1193Provider, options?: SignInWithEthereumOptions): Promise<LoginAnswer>;
  signUpWithEmail(options: SignUpWithEmailOptions): Promise<LoginAnswer>;
  signInWithEmail(email: string, password: string): Promise<LoginAnswer>;
  sendEmailCode(email: string): Promise<{ expires_at: string }>;
  verifyEmailCode(email: string, code: string, options?: { referralCode?: string }): Promise<LoginAnswer>;
  signInWithLoginCode(loginCode: string): Promise<LoginAnswer>;
  /** GET /v1/users/me. */
  me(): Promise<User>;
  /** An access token valid for at least 60 more seconds (renewed through POST /v1/auth/token). */
  getAccessToken(): Promise<string>;
  /** Ends the session (POST /v1/auth/logout) and forgets it. */
  signOut(): Promise<void>;
  /** Calls fn after every sign-in and sign-out; returns an unsubscribe function. */
  onChange(fn: (user: User | null) => void): () => void;
}

/** A wallet found by EIP-6963 discovery. */
export interface DiscoveredWallet {
  info: { uuid: string; name: string; icon: string; rdns: string };
  provider: EIP1193Provider;
}

/** EIP-6963: the wallets that announce themselves within `timeout` ms (default 300). */
export function discoverWallets(options?: { timeout?: number }): Promise<DiscoveredWallet[]>;
