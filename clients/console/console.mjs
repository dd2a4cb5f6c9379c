// Drives the web console in a real (headless) Chromium against a live server: sign in, create
// a key, rotate it, find the rotation in the audit browser, verify the chains, ask the policy
// tester a question that is denied and read the reason, and visit every page. A screenshot of
// each page goes to OUT. Any script error or Content-Security-Policy violation fails the run.
// Then, on a second server configured with an OpenID Provider (the stub in idp.mjs): sign in
// through the provider (authorization code with PKCE), act as the provider's user, and see a
// forged or refused answer from the provider turned away.
//   node console.mjs BASE TOKEN OUT OIDC_BASE IDP
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, token, out, oidcBase, idp] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.KEYWARD_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && problems.push(`console: ${m.text()}`));
// Failed requests are named (a refused dry run, say, is expected; anything else is not).
page.on("response", (r) => r.status() >= 400 && !r.url().includes("dry_run=1") && problems.push(`${r.status()} ${r.url()}`));
page.on("dialog", (d) => d.accept());
const shot = (name) => page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};

try {
  const response = await page.goto(`${base}/ui`);
  const csp = response.headers()["content-security-policy"] || "";
  check(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), `a strict CSP: ${csp}`);
  check(response.headers()["x-frame-options"] === "DENY", "X-Frame-Options: DENY");

  await page.waitForSelector("#signin textarea");
  await shot("signin");
  await page.fill("#signin textarea", token);
  await page.click("#signin button");
  await page.waitForSelector("#create-key");

  await page.fill("#create-key input[name=namespace]", "console");
  await page.fill("#create-key input[name=description]", "made in the console");
  await page.click("#create-key button");
  await page.waitForSelector("#actions");
  const keyId = decodeURIComponent(new URL(page.url()).hash.replace("#/key/", ""));
  check(/^[0-9a-f-]{36}$/.test(keyId), `a key page: ${page.url()}`);
  await page.waitForFunction(() => !document.querySelector("#action-rotate").disabled);
  await shot("key");

  // Rotate (the confirmation is accepted): version 2 appears.
  await page.click("#action-rotate");
  await page.waitForFunction(() => document.querySelectorAll("table")[1]?.tBodies[0]?.rows.length === 2);

  await page.goto(`${base}/ui#/keys?namespace=console`);
  await page.waitForSelector(`text=${keyId}`);
  await shot("keys");

  // The rotation in the audit browser, with its decision.
  await page.goto(`${base}/ui#/audit?action=RotateKey`);
  await page.waitForSelector(`td:has-text("${keyId}")`);
  await page.click(`td:has-text("${keyId}")`);
  await page.waitForFunction(() => document.querySelector("#audit-detail").textContent.includes('"determining_policies"'));
  await page.click("#verify button");
  await page.waitForSelector("#verify .allow");
  await shot("audit");

  // A denied question, and why.
  await page.goto(`${base}/ui#/tester`);
  await page.waitForSelector("#tester");
  await page.fill("#tester input[name=principal]", 'Keyward::User::"bob"');
  await page.fill("#tester input[name=action]", "Decrypt");
  await page.fill("#tester input[name=resource]", `Keyward::Key::"${keyId}"`);
  await page.click("#tester button");
  await page.waitForSelector("#decision");
  check((await page.textContent("#decision")) === "Deny", "bob may not decrypt");
  check((await page.textContent("#tester-answer")).includes("denied by default"), "the reason is shown");
  await shot("tester");

  // Approvals: none wait on this server (no quorum configured).
  await page.goto(`${base}/ui#/approvals`);
  await page.waitForSelector("#no-approvals");
  check((await page.textContent("#no-approvals")) === "No pending requests.", "the approvals page lists pending requests");

  await page.goto(`${base}/ui#/policies`);
  await page.waitForSelector("text=Schema");
  await shot("policies");
  await page.goto(`${base}/ui#/health`);
  await page.waitForSelector("#readiness .allow");
  await shot("health");

  check(problems.length === 0, `errors in the page:\n${problems.join("\n")}`);

  // OIDC sign-in on the second server: a fresh tab (its own origin, its own session storage).
  const signin = await page.goto(`${oidcBase}/ui`);
  const connect = (signin.headers()["content-security-policy"] || "").split(";").map((d) => d.trim()).find((d) => d.startsWith("connect-src"));
  check(connect === `connect-src 'self' ${idp}`, `the page may reach the token endpoint and nothing else: ${connect}`);
  await page.waitForSelector("#oidc-signin");
  await shot("signin-oidc");
  await page.click("#oidc-signin");
  await page.waitForSelector("#create-key");
  check(!page.url().includes("code=") && !page.url().includes("state="), `the code leaves the address bar: ${page.url()}`);
  await page.fill("#create-key input[name=namespace]", "oidc");
  await page.click("#create-key button");
  await page.waitForSelector("#actions");
  await page.goto(`${oidcBase}/ui#/audit?action=CreateKey`);
  await page.waitForSelector('td:has-text("Keyward::User::\\"alice\\"")');

  // An answer this tab did not ask for (a forged or replayed code) is turned away unspent, and
  // signs nobody in; so is a refusal from the provider.
  for (const [query, reason] of [
    ["code=stolen&state=forged", "not for the sign-in this tab started"],
    ["error=access_denied&error_description=denied+by+the+provider", "the provider refused the sign-in: access_denied"],
  ]) {
    await page.goto(`${oidcBase}/ui/?${query}`);
    await page.waitForFunction((r) => document.getElementById("status").textContent.includes(r), reason);
    check(await page.evaluate(() => sessionStorage.getItem("keyward.token") === null), `no token after ${query}`);
    check(new URL(page.url()).search === "", `the answer leaves the address bar: ${page.url()}`);
  }
  check(problems.length === 0, `errors in the page:\n${problems.join("\n")}`);
  console.log(`console: every page works, and OIDC sign-in; screenshots in ${out}`);
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(`console test failed: ${e.message}\n${problems.join("\n")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
