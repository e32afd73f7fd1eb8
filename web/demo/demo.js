// The demo page's script: everything goes through the browser SDK.
import { WalletAuth, WalletAuthError, discoverWallets } from "/sdk/walletauth.js";

const $ = (id) => document.getElementById(id);
const wa = new WalletAuth({ storage: window.localStorage });
let wallets = []; // EIP-6963 announcements

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function explain(err) {
  if (err instanceof WalletAuthError) {
    if (err.code === "wallet_rejected") return "You declined the request in your wallet.";
    if (err.status === 0 && err.code === "network_error") return "The server cannot be reached.";
    return `${err.message} (${err.code})`;
  }
  return String(err && err.message ? err.message : err);
}

// busy runs one action with the buttons disabled and reports its failure.
async function busy(what, fn) {
  const buttons = [...document.querySelectorAll("button")];
  buttons.forEach((b) => { b.disabled = true; });
  status(what + "…");
  try {
    status((await fn()) || ""); // an action may return a line to show
  } catch (err) {
    status(explain(err), true);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

async function showSessions() {
  const body = $("sessions");
  body.replaceChildren();
  // The SDK has no call for the session list: it is read with the access
  // token when the server issues them, else with the auth token.
  let token = wa.authToken;
  try { token = await wa.getAccessToken(); } catch { /* no access tokens on this server */ }
  const res = await fetch("/v1/users/me/sessions", { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) {
    $("sessions-none").hidden = false;
    $("sessions-table").hidden = true;
    return;
  }
  $("sessions-none").hidden = true;
  $("sessions-table").hidden = false;
  for (const s of (await res.json()).sessions || []) {
    const row = document.createElement("tr");
    cell(row, s.created_at);
    cell(row, s.method + (s.current ? " (this one)" : ""));
    cell(row, s.expires_at);
    cell(row, s.user_agent);
    const td = cell(row, "");
    if (!s.current) {
      const end = document.createElement("button");
      end.type = "button";
      end.textContent = "End";
      end.addEventListener("click", () => busy("Ending the session", async () => {
        await fetch(`/v1/users/me/sessions/${encodeURIComponent(s.id)}`, {
          method: "DELETE", headers: { Authorization: `Bearer ${wa.authToken}` },
        });
        await showSessions();
      }));
      td.appendChild(end);
    }
    body.appendChild(row);
  }
}

function render(user) {
  $("signed-out").hidden = !!user;
  $("signed-in").hidden = !user;
  if (!user) return;
  $("username").textContent = user.username;
  $("address").textContent = user.address || "(no wallet)";
  $("user-email").textContent = user.email ? `${user.email}${user.email_verified ? " (verified)" : ""}` : "(none)";
  $("user-json").textContent = JSON.stringify(user, null, 2);
  const body = $("wallets");
  body.replaceChildren();
  for (const w of user.wallets || []) {
    const row = document.createElement("tr");
    cell(row, w.address, "mono");
    cell(row, w.chain_id);
    cell(row, w.type);
    cell(row, w.primary ? "yes" : "");
    cell(row, w.linked_at);
    body.appendChild(row);
  }
  showSessions().catch(() => { $("sessions-none").hidden = false; });
}

function chosenProvider() {
  const i = Number($("wallet-choice").value || 0);
  if (wallets[i]) return wallets[i].provider;
  return window.ethereum || null;
}

async function findWallets() {
  wallets = await discoverWallets();
  const pick = $("wallet-choice");
  pick.replaceChildren();
  wallets.forEach((w, i) => {
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = w.info.name || w.info.rdns || `wallet ${i + 1}`;
    pick.appendChild(o);
  });
  $("wallet-pick").hidden = wallets.length < 2;
  $("wallet-none").hidden = wallets.length > 0 || !!window.ethereum;
}

// The email-code UI appears only where the server has the endpoint: a GET
// on a POST-only route is 405, on a missing one 404 (nothing is mailed).
async function probeEmailCodes() {
  try {
    const res = await fetch("/v1/auth/email/otp", { method: "GET" });
    $("otp").hidden = res.status === 404;
  } catch {
    $("otp").hidden = true;
  }
}

$("siwe").addEventListener("click", () => busy("Waiting for your wallet", async () => {
  const provider = chosenProvider();
  if (!provider) throw new Error("No browser wallet found: install MetaMask (or another wallet) and reload.");
  await wa.signInWithEthereum(provider);
}));

$("email-form").addEventListener("submit", (e) => {
  e.preventDefault();
  busy("Signing in", async () => { await wa.signInWithEmail($("email").value, $("password").value); });
});
$("email-signup").addEventListener("click", () => busy("Creating the account",
  async () => { await wa.signUpWithEmail({ email: $("email").value, password: $("password").value }); }));

$("otp-form").addEventListener("submit", (e) => {
  e.preventDefault();
  busy("Sending the code", async () => {
    const { expires_at: until } = await wa.sendEmailCode($("otp-email").value);
    return `Code sent; it is valid until ${until}.`;
  });
});
$("otp-verify").addEventListener("click", () => busy("Checking the code",
  async () => { await wa.verifyEmailCode($("otp-email").value, $("otp-code").value.trim()); }));

$("signout").addEventListener("click", () => busy("Signing out", () => wa.signOut()));

wa.onChange(render);
render(wa.user);
if (wa.user) wa.me().then(render, () => {}); // refresh, or forget a session ended elsewhere
findWallets();
probeEmailCodes();
