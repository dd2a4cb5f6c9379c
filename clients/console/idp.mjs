// A minimal OpenID Provider for the console's sign-in test: discovery, a JWKS, an authorization
// endpoint that signs "alice" (group admins) in at once, and a token endpoint that checks the
// code (once only), the client, the redirect URI and the PKCE verifier before it answers with
// an RS256 access token (aud "keyward") and ID token (aud the client, with the nonce).
//   node idp.mjs URL_FILE      # writes http://127.0.0.1:PORT to URL_FILE when listening
import { createServer } from "node:http";
import { createHash, createSign, generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";

const CLIENT = "keyward-console";
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: "jwk" }), kid: "idp-1", alg: "RS256", use: "sig" };
const codes = new Map();
const b64url = (b) => Buffer.from(b).toString("base64url");

function jwt(claims) {
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: jwk.kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = createSign("RSA-SHA256").update(`${head}.${body}`).sign(privateKey);
  return `${head}.${body}.${b64url(sig)}`;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", "access-control-allow-origin": "*", "access-control-allow-headers": "content-type", ...headers });
  res.end(body === undefined ? "" : JSON.stringify(body));
}

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (req.method === "OPTIONS") return send(res, 204);
  if (url.pathname === "/.well-known/openid-configuration") {
    return send(res, 200, { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`, response_types_supported: ["code"], code_challenge_methods_supported: ["S256"] });
  }
  if (url.pathname === "/jwks") return send(res, 200, { keys: [jwk] });
  if (url.pathname === "/authorize") {
    const q = url.searchParams;
    const redirect = q.get("redirect_uri");
    if (q.get("client_id") !== CLIENT || q.get("response_type") !== "code" || q.get("code_challenge_method") !== "S256" || !q.get("code_challenge") || !redirect) {
      return send(res, 400, { error: "invalid_request" });
    }
    const code = b64url(randomBytes(24));
    codes.set(code, { challenge: q.get("code_challenge"), nonce: q.get("nonce"), redirect });
    const back = new URL(redirect);
    back.searchParams.set("code", code);
    back.searchParams.set("state", q.get("state") || "");
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }
  if (url.pathname === "/token" && req.method === "POST") {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      const f = new URLSearchParams(text);
      const grant = codes.get(f.get("code") || "");
      codes.delete(f.get("code") || "");
      const verifier = f.get("code_verifier") || "";
      if (!grant || f.get("grant_type") !== "authorization_code" || f.get("client_id") !== CLIENT || f.get("redirect_uri") !== grant.redirect || b64url(createHash("sha256").update(verifier).digest()) !== grant.challenge) {
        return send(res, 400, { error: "invalid_grant" });
      }
      const now = Math.floor(Date.now() / 1000);
      const common = { iss: issuer, sub: "alice", iat: now, nbf: now - 5, exp: now + 600 };
      send(res, 200, {
        token_type: "Bearer",
        expires_in: 600,
        access_token: jwt({ ...common, aud: "keyward", groups: ["admins"] }),
        id_token: jwt({ ...common, aud: CLIENT, nonce: grant.nonce }),
      });
    });
    return;
  }
  send(res, 404, { error: "not_found" });
});

let issuer;
server.listen(0, "127.0.0.1", () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  writeFileSync(process.argv[2], issuer);
});
