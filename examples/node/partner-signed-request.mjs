// A partner's signed request (HS256 JWT over the exact body), no dependencies:
//   PARTNER_ID=pt_… SECRET=pts_… node partner-signed-request.mjs
import crypto from "node:crypto";

const b64url = (s) => Buffer.from(s).toString("base64url");

function signRequest(partnerId, secret, body /* the exact string you send, "" if none */) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64url(JSON.stringify({
    iss: partnerId, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(),
    body_sha256: crypto.createHash("sha256").update(body).digest("base64url"),
  }));
  const sig = crypto.createHmac("sha256", secret).update(`${head}.${claims}`).digest("base64url");
  return `${head}.${claims}.${sig}`;
}

const base = process.env.WALLETAUTH_URL || "http://127.0.0.1:8080";
const body = JSON.stringify({ external_id: "42" });
const res = await fetch(`${base}/v1/partner/users/login`, {
  method: "POST", body,
  headers: { "Content-Type": "application/json", Authorization: `Bearer ${signRequest(process.env.PARTNER_ID, process.env.SECRET, body)}` },
});
console.log(res.status, await res.text());
