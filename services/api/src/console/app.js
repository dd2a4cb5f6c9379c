// Keyward's web console: every action is a call to the REST API with the user's own token
// (kept in session storage only). No framework, no inline script, no HTML built from data:
// text goes into the page with textContent only.
"use strict";

const TOKEN = "keyward.token";
// A sign-in started at the OIDC provider: its state, PKCE verifier and nonce.
const PENDING = "keyward.oidc";
const main = () => document.getElementById("main");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function show(...nodes) {
  main().replaceChildren(...nodes);
}

function status(text, isError) {
  const s = document.getElementById("status");
  s.textContent = text || "";
  s.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN);
  if (!token) {
    location.hash = "#/signin";
    throw new Error("sign in first");
  }
  const res = await fetch(path, {
    method,
    headers: Object.assign({ Authorization: `Bearer ${token}` }, body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401) location.hash = "#/signin";
    throw new Error(`${data.code || res.status}: ${data.detail || res.statusText} (request ${data.request_id || "?"})`);
  }
  return data;
}

function table(columns, rows, onClick) {
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c[0])))),
    el(
      "tbody",
      {},
      rows.map((r) =>
        el(
          "tr",
          onClick ? { class: "clickable", on: { click: () => onClick(r) } } : {},
          columns.map((c) => el("td", {}, fmt(c[1](r)))),
        ),
      ),
    ),
  );
}

function fmt(v) {
  if (v === null || v === undefined || v === "") return "–";
  if (Array.isArray(v)) return v.join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function when(t) {
  if (!t) return "–";
  const d = new Date(t);
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const ago = Math.abs(s) < 60 ? `${s}s` : Math.abs(s) < 3600 ? `${Math.round(s / 60)}m` : Math.abs(s) < 86400 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return `${d.toISOString().replace(".000", "")} (${s >= 0 ? ago + " ago" : "in " + ago.replace("-", "")})`;
}

function field(label, name, attrs) {
  return el("label", {}, label + " ", el("input", Object.assign({ name }, attrs || {})));
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// Pages.

async function signin() {
  sessionStorage.removeItem(TOKEN);
  const { oidc } = await settings();
  const form = el(
    "form",
    { id: "signin" },
    el("h1", {}, "Sign in"),
    oidc ? el("p", {}, el("button", { type: "button", id: "oidc-signin", on: { click: () => startOidc(oidc).catch((e) => status(e.message, true)) } }, `Sign in with ${new URL(oidc.authorization_endpoint).host}`)) : "",
    el("p", {}, (oidc ? "Or paste" : "Paste") + " a bearer token. It stays in this tab's session storage and goes only to this server."),
    el("textarea", { name: "token", rows: 4, required: true }),
    el("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN, formValues(form).token.trim());
    location.hash = "#/keys";
  });
  show(form);
}

// OpenID Connect sign-in: the authorization code flow with PKCE (a public client, no secret).

let cachedSettings;
async function settings() {
  cachedSettings ??= await fetch("/ui/config.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  return cachedSettings;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const randomString = () => base64url(crypto.getRandomValues(new Uint8Array(32)));
const redirectUri = () => `${location.origin}/ui/`;

async function startOidc(oidc) {
  const pending = { state: randomString(), verifier: randomString(), nonce: randomString() };
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(pending.verifier))));
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(oidc.authorization_endpoint);
  const q = { response_type: "code", client_id: oidc.client_id, redirect_uri: redirectUri(), scope: oidc.scopes, state: pending.state, nonce: pending.nonce, code_challenge: challenge, code_challenge_method: "S256" };
  for (const [k, v] of Object.entries(q)) url.searchParams.set(k, v);
  location.assign(url.toString());
}

function claims(jwt) {
  try {
    return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

// Back from the provider with ?code&state (or ?error): exchange the code, keep the token.
async function finishOidc(query) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  // The code leaves the address bar and the history at once.
  history.replaceState(null, "", "/ui/#/keys");
  const { oidc } = await settings();
  if (!oidc) throw new Error("this server has no OIDC sign-in configured");
  if (query.get("error")) throw new Error(`the provider refused the sign-in: ${query.get("error")} ${query.get("error_description") || ""}`);
  if (!pending || !query.get("state") || query.get("state") !== pending.state) throw new Error("this sign-in answer is not for the sign-in this tab started; sign in again");
  const res = await fetch(oidc.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: query.get("code") || "", redirect_uri: redirectUri(), client_id: oidc.client_id, code_verifier: pending.verifier }),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`the provider's token endpoint refused: ${data.error || res.status} ${data.error_description || ""}`);
  if (data.id_token && claims(data.id_token).nonce !== pending.nonce) throw new Error("the provider's ID token is not for this sign-in (nonce)");
  const token = data[oidc.token];
  if (typeof token !== "string" || !token) throw new Error(`the provider's answer has no ${oidc.token}`);
  sessionStorage.setItem(TOKEN, token);
}

async function start() {
  const query = new URLSearchParams(location.search);
  if (query.has("code") || query.has("error")) {
    try {
      await finishOidc(query);
    } catch (err) {
      history.replaceState(null, "", "/ui/#/signin");
      await route();
      status(err.message, true);
      return;
    }
  }
  await route();
}

async function keys(params) {
  const filters = el(
    "form",
    { id: "key-filters" },
    field("Namespace", "namespace", { value: params.get("namespace") || "" }),
    el("label", {}, "State ", el("select", { name: "state" }, ["", "Enabled", "Disabled", "PendingDeletion", "Destroyed", "Unavailable"].map((s) => el("option", { value: s, selected: s === (params.get("state") || "") }, s || "any")))),
    field("Backend", "backend", { value: params.get("backend") || "" }),
    el("button", { type: "submit" }, "Filter"),
  );
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    const v = formValues(filters);
    location.hash = "#/keys?" + new URLSearchParams(Object.entries(v).filter(([, x]) => x)).toString();
  });
  const create = el(
    "form",
    { id: "create-key" },
    el("h2", {}, "Create a key"),
    field("Namespace", "namespace", { required: true }),
    field("Description", "description"),
    field("Alias", "alias", { placeholder: "alias/name" }),
    el("button", { type: "submit" }, "Create"),
  );
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = formValues(create);
    const body = { namespace: v.namespace, description: v.description || "" };
    if (v.alias) body.alias = v.alias;
    try {
      const k = await api("POST", "/v1/keys", body);
      status(`created ${k.key_id}`);
      location.hash = `#/key/${k.key_id}`;
    } catch (err) {
      status(err.message, true);
    }
  });
  const q = new URLSearchParams({ limit: "50" });
  if (params.get("namespace")) q.set("namespace", params.get("namespace"));
  if (params.get("next_token")) q.set("next_token", params.get("next_token"));
  const page = await api("GET", "/v1/keys?" + q.toString());
  const rows = page.keys.filter((k) => (!params.get("state") || k.key_state === params.get("state")) && (!params.get("backend") || k.backend === params.get("backend")));
  const next = page.next_token
    ? el("button", { on: { click: () => { params.set("next_token", page.next_token); location.hash = "#/keys?" + params.toString(); } } }, "Next page")
    : "";
  show(
    el("h1", {}, "Keys"),
    filters,
    table(
      [["Key", (k) => k.key_id], ["Aliases", (k) => k.aliases], ["Namespace", (k) => k.namespace], ["State", (k) => k.key_state], ["Backend", (k) => k.backend], ["Version", (k) => k.primary_version], ["Created", (k) => when(k.created_at)]],
      rows,
      (k) => (location.hash = `#/key/${k.key_id}`),
    ),
    next,
    create,
  );
}

const ACTIONS = [
  ["Enable", "enable"],
  ["Disable", "disable"],
  ["Rotate", "rotate"],
  ["Schedule deletion (30 days)", "schedule-deletion"],
  ["Cancel deletion", "cancel-deletion"],
];

async function keyDetail(id) {
  const path = `/v1/keys/${encodeURIComponent(id)}`;
  const [key, versions, grants] = await Promise.all([
    api("GET", path),
    api("GET", path + "/versions"),
    api("GET", path + "/grants").catch(() => ({ grants: [] })),
  ]);
  // Which actions the policies allow this user: a dry run of each (nothing runs).
  const allowed = await Promise.all(
    ACTIONS.map(([, a]) => api("POST", `${path}/${a}?dry_run=1`).then((d) => d.decision === "Allow").catch(() => false)),
  );
  const buttons = ACTIONS.map(([label, a], i) =>
    el(
      "button",
      {
        id: `action-${a}`,
        disabled: !allowed[i],
        title: allowed[i] ? "" : "not allowed by policy",
        on: {
          click: async () => {
            if (!confirm(`${label} key ${key.key_id}?`)) return;
            try {
              await api("POST", `${path}/${a}`);
              status(`${label}: done`);
              keyDetail(id);
            } catch (err) {
              status(err.message, true);
            }
          },
        },
      },
      label,
    ),
  );
  const meta = [
    ["Key id", key.key_id], ["Namespace", key.namespace], ["Aliases", key.aliases], ["Description", key.description],
    ["Spec", key.key_spec], ["Usage", key.key_usage], ["State", key.key_state], ["Backend", `${key.backend} (${key.protection})`],
    ["Primary version", key.primary_version], ["Min decryption version", key.min_decryption_version], ["Owner", key.owner],
    ["Tags", key.tags], ["Created", when(key.created_at)], ["Rotation", key.rotation_period_days ? `every ${key.rotation_period_days} days, next ${when(key.next_rotation_at)}` : "manual"],
    ["Deletion", key.deletion_date ? `scheduled ${when(key.deletion_date)}` : "–"],
  ];
  show(
    el("h1", {}, `Key ${key.key_id}`),
    el("div", { class: "panel", id: "actions" }, buttons),
    table([["Field", (r) => r[0]], ["Value", (r) => r[1]]], meta),
    el("h2", {}, "Versions"),
    table(
      [["Version", (v) => v.version], ["State", (v) => v.state], ["Created", (v) => when(v.created_at)], ["Encryptions", (v) => v.encryptions], ["Decryptions", (v) => v.decryptions], ["Last used", (v) => when(v.last_used_at)]],
      versions.versions,
    ),
    el("h2", {}, "Grants"),
    table([["Grant", (g) => g.grant_id], ["Grantee", (g) => g.grantee], ["Operations", (g) => g.operations], ["Granted by", (g) => g.granted_by], ["Created", (g) => when(g.created_at)]], grants.grants),
  );
}

async function audit(params) {
  const names = ["principal", "key_id", "action", "decision", "from", "to"];
  const filters = el(
    "form",
    { id: "audit-filters" },
    names.map((n) => (n === "decision"
      ? el("label", {}, "Decision ", el("select", { name: n }, ["", "Allow", "Deny"].map((d) => el("option", { value: d, selected: d === (params.get(n) || "") }, d || "any"))))
      : field(n.replace("_", " "), n, { value: params.get(n) || "" }))),
    el("button", { type: "submit" }, "Search"),
  );
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    location.hash = "#/audit?" + new URLSearchParams(Object.entries(formValues(filters)).filter(([, x]) => x)).toString();
  });
  const verify = el("div", { class: "panel", id: "verify" }, el("button", { on: { click: async () => {
    try {
      const v = await api("POST", "/v1/audit/verify");
      verify.replaceChildren(el("span", { class: v.ok ? "allow" : "deny" }, v.ok ? "Chains verify" : "Verification failed"), ` — ${v.records_checked} records checked, ${v.verified_records} signed, ${v.unsigned_tail_records} in unsigned tails${v.first_break ? "; first break: " + v.first_break : ""}`);
    } catch (err) {
      status(err.message, true);
    }
  } } }, "Verify the chains"));
  const q = new URLSearchParams({ limit: "100" });
  for (const n of names) if (params.get(n)) q.set(n, params.get(n));
  const detail = el("pre", { id: "audit-detail" }, "Select a record to see its decision.");
  const page = await api("GET", "/v1/audit?" + q.toString());
  const records = page.records.slice().reverse();
  show(
    el("h1", {}, "Audit"),
    filters,
    verify,
    table(
      [["Time", (r) => r.time], ["Principal", (r) => r.principal], ["Action", (r) => r.action], ["Key", (r) => r.key_id], ["Decision", (r) => r.decision], ["Outcome", (r) => r.outcome]],
      records,
      (r) => {
        detail.textContent = JSON.stringify(r, null, 2);
      },
    ),
    el("h2", {}, "Record"),
    detail,
  );
}

async function tester() {
  const form = el(
    "form",
    { id: "tester" },
    field("Principal", "principal", { placeholder: 'Keyward::User::"bob" (empty: you)', size: 32 }),
    field("Groups", "groups", { placeholder: "comma separated" }),
    field("Action", "action", { value: "Decrypt", required: true }),
    field("Resource", "resource", { placeholder: 'Keyward::Key::"<id>"', size: 50, required: true }),
    el("label", {}, "Encryption context (JSON) ", el("input", { name: "context", value: "{}", size: 30 })),
    el("button", { type: "submit" }, "Ask"),
  );
  const answer = el("div", { id: "tester-answer" });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = formValues(form);
    const body = { action: v.action, resource: v.resource, context: { encryption_context: JSON.parse(v.context || "{}") } };
    if (v.principal) {
      body.principal = v.principal;
      body.groups = v.groups ? v.groups.split(",").map((g) => g.trim()).filter(Boolean) : [];
    }
    try {
      const [d, set] = await Promise.all([api("POST", "/v1/authorize", body), api("GET", "/v1/policies")]);
      const texts = new Map(set.policies.map((p) => [p.id, p.text]));
      answer.replaceChildren(
        el("p", {}, "Decision: ", el("span", { class: d.decision === "Allow" ? "allow" : "deny", id: "decision" }, d.decision), ` (policy set ${d.policy_version})`),
        d.errors.length ? el("p", { class: "error" }, "Errors: " + d.errors.join("; ")) : "",
        el("h2", {}, d.determining_policies.length ? "Determining policies" : "No policy permits this: denied by default"),
        d.determining_policies.map((id) => el("div", {}, el("strong", {}, id), el("pre", {}, texts.get(id) || "(a grant)"))),
      );
    } catch (err) {
      answer.replaceChildren(el("p", { class: "error" }, err.message));
    }
  });
  show(el("h1", {}, "Policy tester"), form, answer);
}

async function policies() {
  const set = await api("GET", "/v1/policies");
  show(
    el("h1", {}, `Policies (${set.policy_version})`),
    set.policies.map((p) => el("div", {}, el("h2", {}, p.id), el("pre", {}, p.text))),
    el("h2", {}, "Schema"),
    el("pre", {}, set.schema),
  );
}

async function approvals(params) {
  const state = params.get("state") || "Pending";
  const page = await api("GET", `/v1/approvals?state=${encodeURIComponent(state)}&limit=100`);
  const states = ["Pending", "Executing", "Executed", "Rejected", "Expired"];
  show(
    el("h1", {}, "Approvals"),
    el("p", { id: "approval-states" }, states.map((s) => el("a", { href: `#/approvals?state=${s}`, class: s === state ? "current" : "" }, s, " "))),
    page.approvals.length
      ? table(
          [
            ["Operation", (a) => a.operation],
            ["Resource", (a) => a.resource],
            ["Requested by", (a) => a.requested_by],
            ["Approvals", (a) => `${a.approvals.length}/${a.required}`],
            ["Expires", (a) => when(a.expires_at)],
          ],
          page.approvals,
          (a) => (location.hash = `#/approval/${a.id}`),
        )
      : el("p", { id: "no-approvals" }, `No ${state.toLowerCase()} requests.`),
  );
}

async function approvalDetail(id) {
  const a = await api("GET", `/v1/approvals/${encodeURIComponent(id)}`);
  const decide = async (verb) => {
    try {
      await api("POST", `/v1/approvals/${encodeURIComponent(id)}/${verb}`);
      await approvalDetail(id);
      status(verb === "approve" ? "approved" : "rejected");
    } catch (err) {
      status(err.message, true);
    }
  };
  show(
    el("h1", {}, `${a.operation} (${a.state})`),
    table([["Field", (r) => r[0]], ["Value", (r) => r[1]]], [
      ["id", a.id],
      ["resource", a.resource],
      ["requested by", a.requested_by],
      ["request", a.request],
      ["approvals", a.approvals.map((v) => `${v.principal} ${when(v.approved_at)}`)],
      ["required", a.required],
      ["expires", when(a.expires_at)],
      ["rejected by", a.rejected_by],
      ["result", a.result],
    ]),
    a.state === "Pending"
      ? el("p", { id: "decide" },
          el("button", { on: { click: () => decide("approve") } }, "Approve"), " ",
          el("button", { on: { click: () => decide("reject") } }, "Reject"))
      : "",
  );
}

async function health() {
  const ready = await fetch("/readyz").then((r) => r.json()).catch(() => ({ status: "unreachable", backends: {}, failing: [] }));
  const metrics = await fetch("/metrics").then((r) => (r.ok ? r.text() : "")).catch(() => "");
  const lines = metrics.split("\n").filter((l) => l.startsWith("keyward_audit_queue_depth") || (l.startsWith("keyward_requests_total") && !l.includes('code="Success"')));
  show(
    el("h1", {}, "Health"),
    el("p", { id: "readiness" }, "Readiness: ", el("span", { class: ready.status === "ready" ? "allow" : "deny" }, ready.status), ready.failing && ready.failing.length ? ` (failing: ${ready.failing.join(", ")})` : ""),
    table([["Backend", (b) => b[0]], ["State", (b) => b[1]]], Object.entries(ready.backends || {})),
    el("h2", {}, "Audit queue and errors"),
    el("pre", {}, lines.join("\n") || "no errors counted"),
  );
}

async function route() {
  status("");
  const [path, query] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const token = sessionStorage.getItem(TOKEN);
  if (!token && path !== "/signin") {
    location.hash = "#/signin";
    return;
  }
  try {
    if (path === "/signin") await signin();
    else if (path.startsWith("/key/")) await keyDetail(decodeURIComponent(path.slice(5)));
    else if (path === "/audit") await audit(params);
    else if (path === "/approvals") await approvals(params);
    else if (path.startsWith("/approval/")) await approvalDetail(decodeURIComponent(path.slice(10)));
    else if (path === "/tester") await tester();
    else if (path === "/policies") await policies();
    else if (path === "/health") await health();
    else await keys(params);
  } catch (err) {
    status(err.message, true);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", start);
