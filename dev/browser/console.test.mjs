// Browser tests of the agent console: Debian's Chromium driven by
// playwright-core, against the development server + Twilio simulator +
// dynalite started by `warm-transfer-local --no-demo`. Run: node --test dev/browser/
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const workspace = path.resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR || path.join(workspace, "target");
// dev/tests/browser.rs passes the binary cargo built for it.
const localBin = process.env.WARM_TRANSFER_LOCAL || path.join(targetDir, "debug", "warm-transfer-local");
const shots = process.env.SCREENSHOT_DIR || path.join(targetDir, "screenshots");

let server;
let baseUrl;
let browser;

before(async () => {
  assert.ok(existsSync(localBin), `${localBin} missing: build it with cargo build -p warm-transfer-dev`);
  server = spawn(localBin, ["--no-demo", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  let buffer = "";
  baseUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("local server did not start: " + buffer)), 60_000);
    server.stdout.on("data", (chunk) => {
      buffer += chunk;
      const match = buffer.match(/console: (http:\/\/127\.0\.0\.1:\d+)\/console/);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
    server.on("exit", (code) => reject(new Error(`local server exited ${code}: ${buffer}`)));
  });
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server) { server.kill("SIGTERM"); await once(server, "exit").catch(() => {}); }
});

// Signs in through the local identity provider: authorization code + PKCE,
// the same flow the console runs against Cognito or another OIDC provider.
async function openConsole(agent = "alice") {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(`${baseUrl}/console`);
  await page.click("#sign-in");
  await page.waitForURL(/\/local-idp\/authorize/);
  await page.click(`a[data-agent=${agent}]`);
  await page.waitForSelector("[data-testid=signed-in-as]:has-text('signed in as')");
  assert.match(await page.textContent("[data-testid=signed-in-as]"), new RegExp(`${agent}@example.com`));
  assert.equal(new URL(page.url()).search, "", "the code is not left in the address bar");
  const stored = await page.evaluate(() => Object.keys(sessionStorage));
  assert.deepEqual(stored.filter((k) => /pkce/.test(k)), [], "the PKCE verifier is used once and dropped");
  return page;
}

async function startCall(page, agent, customer) {
  await page.fill("#agent", agent);
  await page.fill("#customer", customer);
  await page.click("#start");
  await page.waitForSelector('[data-testid=call-state][data-state=connected]', { timeout: 20_000 });
}

test("happy path: call, warm transfer, second agent answers, first agent leaves", async () => {
  const page = await openConsole();
  await startCall(page, "+15550100001", "+15550100002");
  await page.fill("#target", "+15550100003");
  await page.click("#transfer");
  await page.waitForSelector('[data-testid=transfer-state][data-state=target-answered]', { timeout: 20_000 });
  assert.match(await page.textContent("[data-testid=transfer-state]"), /second agent answered/i);
  assert.equal(await page.isEnabled("#leave"), true);
  await page.waitForFunction(
    () => /transfer requested/.test(document.querySelector("[data-testid=timeline]").textContent),
    null,
    { timeout: 10_000 },
  );
  // The timeline names who did each action.
  assert.match(await page.textContent("[data-testid=timeline]"), /transfer requested.*alice@example\.com/);
  await page.screenshot({ path: path.join(shots, "console-mid-transfer.png"), fullPage: true });
  await page.click("#leave");
  await page.waitForSelector('[data-testid=transfer-state][data-state=first-agent-left]', { timeout: 20_000 });
  assert.match(await page.textContent("[data-testid=transfer-state]"), /customer is with the second agent/i);
  assert.match(await page.textContent("[data-testid=message]"), /handed the call over/i);
  await page.screenshot({ path: path.join(shots, "console-transferred.png"), fullPage: true });
  await page.close();
});

test("busy second agent: clear wording, customer kept, retry possible", async () => {
  const page = await openConsole();
  await startCall(page, "+15550200001", "+15550200002");
  // The local simulator's script: numbers ending in 0486 are busy.
  await page.fill("#target", "+15550200486");
  await page.click("#transfer");
  await page.waitForSelector('[data-testid=transfer-state][data-state=target-busy]', { timeout: 20_000 });
  assert.match(await page.textContent("[data-testid=transfer-state]"), /busy.*still with the customer/i);
  assert.equal(await page.isEnabled("#transfer"), true, "retry is offered");
  assert.equal(await page.isEnabled("#leave"), false, "cannot leave the customer alone");
  assert.equal(await page.getAttribute("[data-testid=call-state]", "data-state") !== "ended", true);
  await page.screenshot({ path: path.join(shots, "console-busy.png"), fullPage: true });
  await page.close();
});

test("another agent's call: a clear refusal until it is handed over", async () => {
  const alice = await openConsole("alice");
  await startCall(alice, "+15550300001", "+15550300002");
  const sid = (await alice.textContent("#call-sid")).replace("Call ", "").trim();
  const bob = await openConsole("bob");
  await bob.fill("#open-sid", sid);
  await bob.click("#open");
  await bob.waitForSelector("[data-testid=message].error");
  assert.match(await bob.textContent("[data-testid=message]"), /not allowed.*another agent's/i);
  await bob.screenshot({ path: path.join(shots, "console-not-your-call.png"), fullPage: true });
  // Alice hands the call to bob; then it is his to open.
  await alice.fill("#target", "+15550200003");
  await alice.click("#transfer");
  await alice.waitForSelector('[data-testid=transfer-state][data-state=target-answered]', { timeout: 20_000 });
  await alice.click("#leave");
  await alice.waitForSelector('[data-testid=transfer-state][data-state=first-agent-left]', { timeout: 20_000 });
  await bob.click("#open");
  await bob.waitForSelector('[data-testid=transfer-state][data-state=first-agent-left]', { timeout: 20_000 });
  assert.match(await bob.textContent("[data-testid=timeline]"), /first agent left.*alice@example\.com/);
  // Bob transfers it on (an onward transfer), and the hops are listed.
  assert.equal(await bob.textContent("#transfer"), "Transfer on");
  await bob.fill("#target", "+15550300009");
  await bob.click("#transfer");
  await bob.waitForSelector('[data-testid=transfer-state][data-state=target-answered]', { timeout: 20_000 });
  await bob.click("#leave");
  await bob.waitForSelector('[data-testid=transfer-state][data-state=first-agent-left]', { timeout: 20_000 });
  const hops = await bob.textContent("[data-testid=hops]");
  assert.match(hops, /\+15550300001 → \+15550200003 \(first-agent-left\)/);
  assert.match(hops, /\+15550200003 → \+15550300009 \(first-agent-left\).*now with \+15550300009/);
  await alice.close();
  await bob.close();
});

test("bad input and a refused sign-in give clear messages", async () => {
  const page = await openConsole();
  await page.fill("#agent", "555-0100");
  await page.fill("#customer", "+15550300002");
  await page.click("#start");
  await page.waitForSelector("[data-testid=message].error");
  assert.match(await page.textContent("[data-testid=message]"), /your number/i);
  // A token whose signature does not verify (same claims, forged signature).
  await page.evaluate(() => {
    const token = sessionStorage.getItem("warm-transfer-token");
    sessionStorage.setItem("warm-transfer-token", token.slice(0, token.lastIndexOf(".") + 1) + "forged");
  });
  await page.fill("#agent", "+15550300001");
  await page.click("#start");
  await page.waitForFunction(() => /sign-in was refused/i.test(document.querySelector("[data-testid=message]").textContent));
  assert.equal(await page.isVisible("#token-panel"), true, "asks to sign in again");
  await page.close();
});

test("consult: hold the customer, resume, then complete the transfer", async () => {
  const page = await openConsole();
  await startCall(page, "+15550200001", "+15550200012");
  await page.fill("#target", "+15550200003");
  await page.click("#transfer");
  await page.waitForSelector('[data-testid=transfer-state][data-state=target-answered]', { timeout: 20_000 });
  assert.equal(await page.textContent("#cancel"), "Take back", "an answered agent can be taken back");
  // Consult: the customer on hold while the agents talk.
  await page.click("#hold");
  await page.waitForSelector('[data-testid=transfer-state][data-state=consulting]', { timeout: 20_000 });
  assert.match(await page.textContent("[data-testid=transfer-state]"), /customer is on hold/i);
  assert.equal(await page.isEnabled("#resume"), true);
  assert.equal(await page.isEnabled("#hold"), false);
  assert.equal(await page.textContent("#leave"), "Complete transfer");
  await page.screenshot({ path: path.join(shots, "console-consult.png"), fullPage: true });
  // Resume: everybody talks.
  await page.click("#resume");
  await page.waitForSelector('[data-testid=transfer-state][data-state=three-way]', { timeout: 20_000 });
  assert.equal(await page.isEnabled("#hold"), true, "may consult again");
  // Hold again, then complete: the customer comes off hold and agent one leaves.
  await page.click("#hold");
  await page.waitForSelector('[data-testid=transfer-state][data-state=consulting]', { timeout: 20_000 });
  await page.click("#leave");
  await page.waitForFunction(() => /handed the call over/i.test(document.querySelector("[data-testid=message]").textContent),
    null, { timeout: 20_000 });
  assert.match(await page.textContent("[data-testid=transfer-state]"), /customer is with the second agent/i);
  await page.close();
});

test("cold transfer: the first agent is free at once", async () => {
  const page = await openConsole();
  await startCall(page, "+15550300001", "+15550300012");
  await page.fill("#target", "+15550300003");
  await page.selectOption("#transfer-kind", "cold");
  await page.click("#transfer");
  await page.waitForFunction(() => /your phone is free/i.test(document.querySelector("[data-testid=message]").textContent),
    null, { timeout: 20_000 });
  await page.close();
});
