// The web panel in a real browser (headless Debian chromium, driven by playwright-core).
//
// Started by crates/aitrail/tests/browser.rs against `aitrail serve --demo`; can also be run
// by hand:  AITRAIL_URL=http://127.0.0.1:8080 AITRAIL_ADMIN_TOKEN=... AITRAIL_VIEWER_TOKEN=...
//           SCREENSHOT_DIR=target/panel-screenshots node panel.test.mjs
// Exits non-zero on the first failed check. Prints page timings as a `PAGE_TIMINGS` line
// (printed, never asserted: BENCHMARKS.md "Web panel").

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const base = need("AITRAIL_URL");
const adminToken = need("AITRAIL_ADMIN_TOKEN");
const viewerToken = need("AITRAIL_VIEWER_TOKEN");
const shots = process.env.SCREENSHOT_DIR || "panel-screenshots";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(shots, { recursive: true });

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`panel.test.mjs: set ${name}`);
    process.exit(2);
  }
  return v;
}

/** RFC 4180 CSV into rows of fields. */
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

function step(name) {
  console.log(`- ${name}`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1366, height: 850 } });
  const page = await context.newPage();

  step("an anonymous visitor is sent to sign in");
  await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, "/sign-in");
  await shot(page, "1-sign-in");

  step("sign in with the keyboard alone (the token field has focus; Enter submits)");
  await page.keyboard.type(adminToken);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/`);
  await page.getByRole("heading", { name: "Trail status", level: 1 }).waitFor();
  const entries = Number((await page.locator("#card-entries .big").innerText()).replaceAll(",", ""));
  assert.ok(entries > 10000, `the demo trail has entries (${entries})`);
  await shot(page, "2-trail-status");

  step("search by reviewer");
  await page.getByRole("link", { name: "Search", exact: true }).click();
  await page.getByLabel("Reviewer (actor id)").fill("rev-amara");
  await page.getByLabel("Event type").selectOption("review.decision");
  await page.getByRole("button", { name: "Search" }).click();
  await page.locator("#results").waitFor();
  const rows = page.locator("#results tbody tr");
  assert.equal(await rows.count(), 50, "a full first page");
  const actors = await rows.locator("td:nth-child(4)").allInnerTexts();
  assert.ok(actors.every((a) => a.trim() === "rev-amara"), `every row is rev-amara's: ${actors}`);
  const shown = (await rows.locator("td:nth-child(7) a").evaluateAll(
    (links) => links.map((a) => a.getAttribute("href").replace("/events/", ""))));
  assert.ok(await page.locator("#next-page").isVisible(), "there is a next page");
  await shot(page, "3-search-results");

  step("download the search as CSV and check its rows");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download all results as CSV" }).click(),
  ]);
  const csv = parseCsv(readFileSync(await download.path(), "utf8"));
  const header = csv[0];
  const col = (name) => { const i = header.indexOf(name); assert.ok(i >= 0, `CSV has ${name}`); return i; };
  const data = csv.slice(1);
  assert.ok(data.length > 50, `the CSV holds every page (${data.length} rows)`);
  assert.ok(data.every((r) => r[col("actor_id")] === "rev-amara" && r[col("type")] === "review.decision"),
    "every CSV row matches the search");
  assert.deepEqual(data.slice(0, 50).map((r) => r[col("event_id")]), shown, "the CSV starts with the rows shown");

  step("open a task's timeline");
  // An escalated case shows the most: escalation, a senior's decision, a resolution.
  const escalated = rows.filter({ has: page.locator(".badge.escalate") });
  const row = (await escalated.count()) > 0 ? escalated.first() : rows.first();
  const task = (await row.locator("td:nth-child(3)").innerText()).trim();
  await row.locator("td:nth-child(3) a").click();
  await page.getByRole("heading", { name: `Task ${task}` }).waitFor();
  const reviews = await page.locator("#reviews").innerText();
  assert.match(reviews, /rev-amara/);
  assert.match(reviews, /approve|reject|modify|escalate/);
  assert.match(await page.locator("main").innerText(), /Recommend (APPROVE|DECLINE)/, "the model output is shown");
  await shot(page, "4-task-timeline");

  step("open an event and read its proof status");
  await page.locator("#steps a").nth(1).click();
  await page.locator("#proof-status").waitFor();
  assert.match(await page.locator("#proof-status").innerText(), /Included in checkpoint #\d+ \(tree of \d+ entries\), signed at/);
  await shot(page, "5-event");

  step("product view: override rate by model and prompt version");
  await page.getByRole("link", { name: "Product view" }).click();
  await page.getByLabel("From (date)").fill("2026-06-01");
  await page.getByLabel("To (date, included)").fill("2026-09-30");
  await page.getByLabel("Group by").selectOption("model");
  await page.getByRole("button", { name: "Show" }).click();
  await page.locator("#product-table").waitFor();
  const rate = async (model) => {
    const cells = await page.locator("#product-table tr", { hasText: model }).locator("td").allInnerTexts();
    return parseFloat(cells[3]);
  };
  const old = await rate("credit-risk-llm 1.4.0"), neu = await rate("credit-risk-llm 2.0.0");
  assert.ok(old > neu, `the demo's 1.4.0 is overridden more often than 2.0.0 (${old}% vs ${neu}%)`);
  assert.equal(await page.locator("figure svg").count(), 3, "three charts");
  await shot(page, "6-product-view");

  step("page timings (9 loads each through the session: median and slowest)");
  const timings = {};
  for (const [name, url] of [
    ["status", "/"], ["search", "/search?actor=rev-amara&type=review.decision"],
    ["timeline", `/tasks/${task}`], ["event", `/events/${shown[0]}`],
    ["product", "/product?from=2026-06-01&to=2026-09-30&by=both"],
  ]) {
    const ms = [];
    for (let i = 0; i < 9; i++) {
      const t0 = performance.now();
      const r = await context.request.get(base + url);
      await r.body();
      ms.push(performance.now() - t0);
      assert.equal(r.status(), 200, url);
    }
    ms.sort((a, b) => a - b);
    timings[name] = { median_ms: Math.round(ms[4] * 10) / 10, max_ms: Math.round(ms[8] * 10) / 10 };
  }
  console.log(`PAGE_TIMINGS ${JSON.stringify(timings)}`);

  step("sign out");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(`${base}/sign-in`);
  assert.equal((await context.request.get(`${base}/search`, { maxRedirects: 0 })).status(), 303);
  await context.close();

  step("a viewer sees no content and is refused an export");
  const vctx = await browser.newContext({ viewport: { width: 1366, height: 850 } });
  const v = await vctx.newPage();
  await v.goto(`${base}/sign-in`);
  await v.getByLabel("Access token").fill(viewerToken);
  await v.getByRole("button", { name: "Sign in" }).click();
  await v.getByText("Signed in as viewer", { exact: true }).waitFor();
  await v.goto(`${base}/search?actor=rev-amara&type=review.decision`);
  await v.locator("#results").waitFor();
  assert.equal(await v.getByRole("link", { name: "Download all results as CSV" }).count(), 0, "no CSV button");
  const refused = await vctx.request.get(`${base}/search.csv?actor=rev-amara`);
  assert.equal(refused.status(), 403, "the CSV route refuses a viewer");
  assert.match(await refused.text(), /needs an auditor or admin token/);
  await v.goto(`${base}/tasks/${task}`);
  const main = await v.locator("main").innerText();
  assert.doesNotMatch(main, /Recommend (APPROVE|DECLINE)/, "no model output for a viewer");
  assert.match(main, /Withheld/);
  await shot(v, "7-viewer-timeline");
  await vctx.close();
  console.log("panel.test.mjs: all checks passed");
} catch (e) {
  failed = true;
  console.error(`panel.test.mjs: FAILED: ${e.stack || e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
