// The web console, end to end, in headless Chromium driven by Playwright
// (run by tests/console.rs against a real `toka serve`).
//
// Environment: TOKA_URL, CONSOLE_TOKEN (scoped to team-a, may approve), WORKER_ID and
// WORKER_TOKEN (worker-a, to make a live event), CALL_ID (worker-a's call waiting for
// approval), VISIBLE and ABSENT (JSON lists of agent names), ARTIFACTS (screenshot
// folder), CHROMIUM (the browser). Exits non-zero with a message on the first failed
// expectation.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const url = env("TOKA_URL");
const token = env("CONSOLE_TOKEN");
const workerId = env("WORKER_ID");
const workerToken = env("WORKER_TOKEN");
const callId = env("CALL_ID");
const visible = JSON.parse(env("VISIBLE"));
const absent = JSON.parse(env("ABSENT"));
const artifacts = env("ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

function check(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-gpu"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
const requested = [];
const external = [];
page.on("request", (r) => {
  requested.push(r.url());
  if (!r.url().startsWith(url)) external.push(r.url());
});
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));
const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

try {
  await page.goto(url + "/");
  await page.locator("#sign-in").waitFor({ state: "visible" });

  // A wrong token gets a clear message, not a blank page.
  await page.fill("#token-input", "not-a-token");
  await page.click("#sign-in-form button[type=submit]");
  await page.locator("#sign-in-error").waitFor({ state: "visible" });
  check((await page.textContent("#sign-in-error")).includes("not a token"), "a malformed token is named as such");
  const [h, p] = token.split(".");
  await page.fill("#token-input", `${h}.${p}.AAAA`);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#sign-in-error").textContent.includes("refused"));
  check(await page.locator("#app").isHidden(), "nothing is shown for a refused token");
  await shot("01-wrong-token");

  // Sign in with the keyboard: focus the field, type, Enter on the button.
  await page.fill("#token-input", token);
  await page.focus("#sign-in-form button[type=submit]");
  await page.keyboard.press("Enter");
  await page.locator("#agent-tree a").first().waitFor();
  check(await page.evaluate(() => sessionStorage.getItem("toka.token")) === token, "the token is in session storage");
  check(await page.evaluate(() => Object.keys(localStorage).every((k) => !localStorage.getItem(k).includes("."))), "no token in local storage");

  // The tree shows the scope, nothing else.
  const tree = await page.textContent("#agent-tree");
  for (const name of visible) check(tree.includes(name), `agent ${name} is in the tree`);
  for (const name of absent) check(!tree.includes(name), `agent ${name} (out of scope) is absent`);
  check(/left: \d tool calls/.test(tree), `the worker's budget is shown: ${tree}`);
  await page.waitForFunction(() => document.querySelector("#t-head").textContent !== "–");
  await shot("02-agents");

  // An agent's page: its observation and its tool call.
  await page.click(`#agent-tree a[href="#/agents/${workerId}"]`);
  await page.waitForFunction(() => (document.querySelector("#agent-observations")?.textContent || "").includes("first look"));
  await page.waitForFunction((call) => !!document.querySelector(`#agent-calls a[href="#/calls/${call}"]`), callId);
  // Its recorded model transcript.
  await page.waitForFunction(() => (document.querySelector("#agent-transcript")?.textContent || "").includes("the console works"));
  await shot("03-agent");

  // The pending approval, its exact input; approve it with a reason, by keyboard.
  await page.click('nav a[data-tab="approvals"]');
  const card = page.locator(`article.approval[data-call="${callId}"]`);
  await card.waitFor();
  const input = JSON.parse(await card.locator("pre.input").textContent());
  check(input.path === "report.txt" && input.content === "console approved", `the exact input is shown: ${JSON.stringify(input)}`);
  await shot("04-approval");
  await card.locator("textarea").fill("checked in the console");
  await card.locator("textarea").focus();
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.textContent) === "Approve", "Tab reaches Approve");
  await page.keyboard.press("Enter");
  // The result appears without a reload.
  const decided = page.locator(`#decided-list article[data-call="${callId}"]`);
  await decided.locator("pre.result").waitFor({ timeout: 30000 });
  const result = JSON.parse(await decided.locator("pre.result").textContent());
  check(result.status === "ok", `the call succeeded: ${JSON.stringify(result)}`);
  check((await decided.getAttribute("data-status")) === "succeeded", "the call is marked succeeded");
  await shot("05-approved");

  // A new event arrives live in the events view.
  await page.click('nav a[data-tab="events"]');
  await page.locator("#stream-state.live").waitFor({ timeout: 15000 });
  const words = `live from the test ${Date.now()}`;
  const response = await fetch(`${url}/v1/messages`, {
    method: "POST",
    headers: { Authorization: `Bearer ${workerToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ operation: { op: "emit_observation", agent: workerId, data: Buffer.from(words).toString("base64") } }),
  });
  check(response.ok, `the observation was accepted (${response.status})`);
  await page.waitForFunction((w) => document.querySelector("#event-rows").textContent.includes(w), words, { timeout: 15000 });
  // Pausing holds new events back (and counts them); resuming shows them.
  await page.click("#pause");
  const held = `held while paused ${Date.now()}`;
  const post = await fetch(`${url}/v1/messages`, {
    method: "POST",
    headers: { Authorization: `Bearer ${workerToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ operation: { op: "emit_observation", agent: workerId, data: Buffer.from(held).toString("base64") } }),
  });
  check(post.ok, `the second observation was accepted (${post.status})`);
  await page.waitForFunction(() => document.querySelector("#paused-count").textContent.includes("new while paused"));
  check(!(await page.textContent("#event-rows")).includes(held), "a paused view shows no new event");
  await page.click("#pause");
  await page.waitForFunction((w) => document.querySelector("#event-rows").textContent.includes(w), held);
  // Filters: a kind that matches nothing hides it.
  await page.fill("#f-kind", "task.");
  check(!(await page.textContent("#event-rows")).includes(words), "the kind filter hides other kinds");
  await page.fill("#f-kind", "");
  await shot("06-events-live");

  // Trust at a glance: the checkpoint matches the log; the commit rate is drawn.
  check((await page.textContent("#t-checkpoint")).includes("matches"), "the checkpoint matches the log");
  await page.locator("#t-chart polyline").waitFor({ state: "attached", timeout: 15000 });

  // Readable at phone width and in the dark theme.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#theme");
  await shot("07-phone-dark");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no sideways scrolling at phone width (${overflow}px too wide)`);

  check(external.length === 0, `nothing fetched from elsewhere: ${external.join(", ")}`);
  check(requested.every((u) => !u.includes(token)), "the token never appears in a URL");
  check(consoleErrors.length === 0, `no script errors: ${consoleErrors.join("; ")}`);
  console.log(JSON.stringify({ ok: true, requests: requested.length }));
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(String(e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
