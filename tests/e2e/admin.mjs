// End-to-end test of the admin pages in a real headless Chromium.
//
// Run by `cargo test` (tests/api/admin_e2e.rs), which starts the server with the demo
// content, a test SMTP server and an admin user, then checks what this script did from
// the outside (feeds, mail received). Set up with `bash scripts/test.sh`.
//
// Environment:
//   BASE_URL        the server, e.g. http://127.0.0.1:41234
//   ADMIN_USER      an admin's user name
//   ADMIN_PASSWORD  and password
//   CHROMIUM        the browser (default /usr/bin/chromium, Debian's `chromium`)
//   SCREENSHOTS     where to write PNGs, ${name}-phone.png and ${name}-desktop.png
//                   (default: target/screenshots of the repository)
//   ITEM_TITLE      the title of the item to create (default: made up here)
//   LIST_MEMBERS    confirmed members of the `partners` list before the import
//                   (the digest then goes to these plus the imported rows)
//
// Exits 0 when every step passed, 1 (with the reason, the page's address and a
// screenshot `failure-*.png`) otherwise.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`admin.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const BASE = env("BASE_URL").replace(/\/$/, "");
const USER = env("ADMIN_USER");
const PASSWORD = env("ADMIN_PASSWORD");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.resolve(env("SCREENSHOTS", path.join(HERE, "../../target/screenshots")));
const ITEM_TITLE = env("ITEM_TITLE", `Notice written in the browser ${Date.now()}`);
// The item's Chinese version, added in the browser beside the original.
const ZH_TITLE = `${ITEM_TITLE}（中文版）`;
const LIST_MEMBERS = Number(env("LIST_MEMBERS", "8"));
const PERIOD = "2023-W45";
// The demo's event of 9 November 2023, in week 45.
const WEEK_45_EVENT = "Coaction";

const VIEWPORTS = {
  phone: { width: 390, height: 844 },
  desktop: { width: 1280, height: 900 },
};

// Three good rows and one bad one (line 4 of the file: the header is line 1).
const GOOD_ROWS = [
  ["e2e.amina@example.org", "Amina E2E"],
  ["e2e.bruno@example.org", "Bruno E2E"],
  ["e2e.chen@example.org", "Chen E2E"],
];
const BAD_LINE = 4;
const CSV = [
  "email,name,partner",
  `${GOOD_ROWS[0][0]},${GOOD_ROWS[0][1]},`,
  `${GOOD_ROWS[1][0]},${GOOD_ROWS[1][1]},`,
  "not-an-address,Nobody E2E,",
  `${GOOD_ROWS[2][0]},${GOOD_ROWS[2][1]},`,
  "",
].join("\n");

class Failure extends Error {}

/** Pages wider than the screen, found while taking screenshots. */
const overflows = [];
/** Accessibility problems axe-core found (WCAG 2.1 A and AA rules), per page. */
const inaccessible = [];
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Runs axe-core in the page (through the DevTools protocol, so the page's CSP stays on). */
async function audit(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  for (const v of result.violations) {
    const where = v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ");
    inaccessible.push(`${name}: ${v.id} (${v.impact}): ${v.help} at ${where}`);
  }
  log(`accessibility ${name}: ${result.violations.length} violation(s), ${result.passes.length} rule(s) passed`);
}

function check(condition, message) {
  if (!condition) {
    throw new Failure(message);
  }
}

function log(message) {
  console.log(`[e2e] ${message}`);
}

/** Polls `probe` until it returns a truthy value or `ms` have passed. */
async function eventually(what, probe, ms = 10_000, every = 200) {
  const until = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (last) {
      return last;
    }
    if (Date.now() > until) {
      throw new Failure(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

const url = (p) => `${BASE}${p}`;
const pathOf = (page) => new URL(page.url()).pathname;
const text = async (page, selector) => ((await page.locator(selector).first().textContent()) ?? "").trim();

/** Clicks something that sends a form, and waits for the page it leads to. */
async function submit(page, locator) {
  await Promise.all([page.waitForNavigation({ waitUntil: "load" }), locator.click()]);
}

async function screenshot(page, name) {
  const back = page.viewportSize();
  for (const [kind, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    // Nothing may stick out sideways: wide tables scroll inside their own box.
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    if (wide > size.width) {
      overflows.push(`${name} is ${wide} px wide at ${kind} width ${size.width}`);
    }
    const file = path.join(SCREENSHOTS, `${name}-${kind}.png`);
    await page.screenshot({ path: file, fullPage: true });
    await audit(page, `${name} at ${kind} width`);
  }
  await page.setViewportSize(back);
  log(`screenshots ${name}-{phone,desktop}.png`);
}

async function expectFlashOk(page, what) {
  const flash = page.locator(".flash.ok");
  check((await flash.count()) > 0, `${what}: no .flash.ok message on ${page.url()}`);
  const message = (await flash.first().textContent()).trim();
  log(`${what}: "${message}"`);
  return message;
}

async function run(page) {
  // 1. Sign in -----------------------------------------------------------------
  log("1. sign in");
  await page.goto(url("/admin"));
  check(pathOf(page) === "/admin/sign-in", `/admin without a session should lead to /admin/sign-in, got ${page.url()}`);
  check(new URL(page.url()).searchParams.get("next") === "/admin", `sign-in should remember where to go back: ${page.url()}`);
  await screenshot(page, "sign-in");
  await page.getByLabel("User name").fill(USER);
  await page.getByLabel("Password").fill(PASSWORD);
  await submit(page, page.getByRole("button", { name: "Sign in" }));
  check(pathOf(page) === "/admin", `after signing in: expected /admin, got ${page.url()}`);
  check((await text(page, "h1")) === "Dashboard", `the dashboard's heading is "${await text(page, "h1")}"`);
  const cookies = await page.context().cookies(url("/admin"));
  const session = cookies.find((c) => c.name === "nd_session");
  check(session && session.httpOnly && session.sameSite === "Lax", `nd_session cookie: ${JSON.stringify(session)}`);
  await screenshot(page, "dashboard");

  // 2. Create and publish an item, see it in the feed ----------------------------
  log("2. create and publish an item");
  await page.goto(url("/admin/items"));
  check((await text(page, "h1")).length > 0, "the items page has a heading");
  await screenshot(page, "items");
  await page.goto(url("/admin/items/new"));
  await page.locator("#title").fill(ITEM_TITLE);
  await page.locator("#body").fill(
    "Written by the **browser test** of the admin pages.\n\n- one point\n- another point\n\nMore at [the site](https://example.org/).",
  );
  await page.locator("#cat-news").check();
  await submit(page, page.locator('button[name="action"][value="preview"]'));
  await eventually("the Markdown preview in #live-preview", async () =>
    (await page.locator("#live-preview").innerHTML()).includes("<strong>"),
  );
  // The live preview (admin.js) follows typing, without a button.
  await page.locator("#body").press("End");
  await page.locator("#body").pressSequentially("\n\nAnd *typed live*.");
  await eventually("the live preview to follow typing", async () =>
    (await page.locator("#live-preview").innerHTML()).includes("<em>typed live</em>"),
  );
  check((await page.locator("#title").inputValue()) === ITEM_TITLE, "the preview kept the title");
  check(await page.locator("#cat-news").isChecked(), "the preview kept the category news ticked");
  await screenshot(page, "item-form");
  await page.locator("#status").selectOption("published");
  await submit(page, page.getByRole("button", { name: "Save", exact: true }));
  check(/^\/admin\/items\/\d+$/.test(pathOf(page)), `after saving: expected /admin/items/{id}, got ${page.url()}`);
  await expectFlashOk(page, "item saved");
  for (const feed of ["/feeds/news.atom", "/feeds/all.atom"]) {
    const response = await page.request.get(url(feed));
    check(response.ok(), `${feed} answered ${response.status()}`);
    check((await response.text()).includes(ITEM_TITLE), `${feed} does not have the new item "${ITEM_TITLE}"`);
  }
  log("the item is in /feeds/news.atom and /feeds/all.atom");

  // 2b. A Chinese version beside the original ------------------------------------
  log("2b. add a Chinese version side by side");
  const itemPath = pathOf(page);
  const addVersion = page.locator("details.version.add");
  check((await addVersion.getAttribute("open")) === null, "the column to add a version in starts folded");
  await addVersion.locator("summary").click();
  await page.locator("#vnew_language").fill("zh");
  await page.locator("#vnew_title").fill(ZH_TITLE);
  await page.locator("#vnew_body").fill("由**浏览器测试**撰写的中文版本。");
  await submit(page, page.getByRole("button", { name: "Save", exact: true }));
  check(pathOf(page) === itemPath, `after saving the version: expected ${itemPath}, got ${page.url()}`);
  await expectFlashOk(page, "Chinese version saved");
  check((await page.locator("#v0_title").inputValue()) === ZH_TITLE, "the Chinese title is in its column");
  check((await page.locator("#v0_title").getAttribute("lang")) === "zh", "the Chinese column's fields say lang=zh");
  const original = page.locator("fieldset.version.original");
  const chinese = page.locator("#version-v0");
  const box = async () => [await original.boundingBox(), await chinese.boundingBox()];
  let [a, b] = await box();
  check(b.x >= a.x + a.width - 1 && Math.abs(b.y - a.y) < 2,
    `the versions should be side by side at desktop width: original ${JSON.stringify(a)}, zh ${JSON.stringify(b)}`);
  await page.setViewportSize(VIEWPORTS.phone);
  [a, b] = await box();
  check(b.y >= a.y + a.height - 1 && Math.abs(b.x - a.x) < 2,
    `the versions should be stacked at phone width: original ${JSON.stringify(a)}, zh ${JSON.stringify(b)}`);
  await page.setViewportSize(VIEWPORTS.desktop);
  await screenshot(page, "item-versions");
  await page.goto(url(`/admin/items?q=${encodeURIComponent(ITEM_TITLE)}`));
  const languages = ((await page.locator("tbody tr").first().locator("ul.langs").textContent()) ?? "").replace(/\s+/g, " ").trim();
  check(languages === "en (original)zh" || languages === "en (original) zh", `the items list shows the item's languages: "${languages}"`);
  log(`the items list says: ${languages}`);

  await page.goto(url("/admin/categories"));
  await screenshot(page, "categories");
  await page.goto(url("/admin/subscribers"));
  await screenshot(page, "subscribers");

  // 3. Import a CSV with one bad row -------------------------------------------
  log("3. import a CSV with one bad row");
  await page.goto(url("/admin/import"));
  await page.locator("#file").setInputFiles({
    name: "e2e-contacts.csv",
    mimeType: "text/csv",
    buffer: Buffer.from(CSV, "utf8"),
  });
  await page.locator("#list").selectOption("partners");
  await page.locator("#consent_source").fill("e2e test");
  await submit(page, page.getByRole("button", { name: "Preview import" }));
  check((await text(page, "h1")) === "Import preview", `after uploading: heading "${await text(page, "h1")}" on ${page.url()}`);
  check(!page.url().includes("csrf"), `the preview's address keeps no CSRF token: ${page.url()}`);
  const counts = {
    rows: await text(page, "#count-rows"),
    created: await text(page, "#count-created"),
    bad: await text(page, "#count-bad"),
  };
  log(`import preview counts ${JSON.stringify(counts)}`);
  check(counts.rows === "4", `rows read: ${counts.rows}, expected 4`);
  check(counts.created === String(GOOD_ROWS.length), `new contacts: ${counts.created}, expected ${GOOD_ROWS.length}`);
  check(counts.bad === "1", `bad rows: ${counts.bad}, expected 1`);
  const badRows = page.locator("#bad-rows");
  check((await badRows.count()) === 1, "the preview has a #bad-rows table");
  const badLine = await badRows.locator("tbody tr").first().locator("td").first().textContent();
  check(badLine.trim() === String(BAD_LINE), `the bad row's line is "${badLine}", expected ${BAD_LINE}`);
  const badText = await badRows.textContent();
  check(badText.includes("not-an-address") && /email/i.test(badText), `#bad-rows should name the address and say "email": ${badText}`);
  await screenshot(page, "import-preview");
  await submit(page, page.getByRole("button", { name: "Apply import" }));
  const applied = await expectFlashOk(page, "import applied");
  check(applied.includes(String(GOOD_ROWS.length)), `the import message should give the count ${GOOD_ROWS.length}: "${applied}"`);
  await page.goto(url("/admin/subscribers?list=partners"));
  const members = await page.locator("main").textContent();
  for (const [email] of GOOD_ROWS) {
    check(members.includes(email), `${email} is not among the partners list's subscribers`);
  }
  check(!members.includes("not-an-address"), "the bad row was not imported");

  // 4. Preview a digest, send it, see the counts ----------------------------------
  log("4. preview and send the digest of 2023-W45");
  await page.goto(url("/admin/lists"));
  await screenshot(page, "lists");
  await page.goto(url("/admin/lists/partners"));
  await page.locator("#period").fill(PERIOD);
  await page.locator("#subscriber").fill("");
  await submit(page, page.getByRole("button", { name: "Show preview" }));
  check(new URL(page.url()).searchParams.get("period") === PERIOD, `the preview's address should carry the period: ${page.url()}`);
  const frameElement = page.locator("iframe.mail");
  check((await frameElement.count()) === 1, "the list page shows the HTML preview in iframe.mail");
  const frame = await (await frameElement.elementHandle()).contentFrame();
  check(frame, "iframe.mail has a frame");
  await eventually(`"${WEEK_45_EVENT}" in the HTML preview`, async () => {
    try {
      return ((await frame.locator("body").textContent({ timeout: 1000 })) ?? "").includes(WEEK_45_EVENT);
    } catch {
      return false;
    }
  });
  const textPart = await page.locator("pre.mail").textContent();
  check(textPart.includes(WEEK_45_EVENT), `pre.mail (text preview) should mention "${WEEK_45_EVENT}"`);
  await screenshot(page, "list-preview");

  await page.locator("#send_period").fill(PERIOD);
  await submit(page, page.getByRole("button", { name: "Send now" }));
  check(/^\/admin\/digests\/\d+$/.test(pathOf(page)), `after "Send now": expected /admin/digests/{id}, got ${page.url()}`);
  const expected = LIST_MEMBERS + GOOD_ROWS.length;
  let seen = {};
  await eventually(
    `${expected} sent and none pending on ${page.url()}`,
    async () => {
      await page.reload();
      seen = {
        sent: await text(page, "#count-sent"),
        pending: await text(page, "#count-pending"),
        failed: await text(page, "#count-failed"),
      };
      return seen.sent === String(expected) && seen.pending === "0";
    },
    20_000,
    250,
  );
  check(seen.failed === "0", `failed deliveries: ${seen.failed}`);
  log(`digest counts ${JSON.stringify(seen)}`);
  await screenshot(page, "digest");

  // 5. Sign out ------------------------------------------------------------------
  log("5. sign out");
  await submit(page, page.getByRole("button", { name: "Sign out" }));
  check(pathOf(page) === "/admin/sign-in", `after signing out: expected /admin/sign-in, got ${page.url()}`);
  await page.goto(url("/admin/items"));
  check(pathOf(page) === "/admin/sign-in", `after signing out /admin/items should lead to sign-in, got ${page.url()}`);
}

async function main() {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  log(`Chromium ${browser.version()} against ${BASE}`);
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.setDefaultNavigationTimeout(15_000);
  // Some buttons ask "are you sure?" first.
  page.on("dialog", (dialog) => {
    log(`dialog "${dialog.message()}": accepted`);
    dialog.accept();
  });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`script error: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) {
      log(`${response.status()} for ${response.request().method()} ${response.url()}`);
    }
  });
  page.on("console", (message) => {
    if (message.type() === "error") {
      const line = `console error on ${page.url()}: ${message.text()}`;
      log(line);
      // The pages' scripts and styles must fit their Content-Security-Policy.
      if (/Content Security Policy/i.test(message.text())) {
        problems.push(line);
      }
    }
  });
  try {
    await run(page);
    check(problems.length === 0, `the pages had problems:\n${problems.join("\n")}`);
    check(overflows.length === 0, `pages wider than the screen:\n${overflows.join("\n")}`);
    check(inaccessible.length === 0, `accessibility violations:\n${inaccessible.join("\n")}`);
    log("all steps passed");
    return 0;
  } catch (error) {
    console.error(`[e2e] FAILED: ${error instanceof Failure ? error.message : error.stack}`);
    console.error(`[e2e] page: ${page.url()}`);
    for (const p of problems) {
      console.error(`[e2e] ${p}`);
    }
    try {
      const body = ((await page.locator("body").textContent({ timeout: 2000 })) ?? "").replace(/\s+/g, " ").trim();
      console.error(`[e2e] page text: ${body.slice(0, 1500)}`);
      await page.screenshot({ path: path.join(SCREENSHOTS, "failure-desktop.png"), fullPage: true });
      console.error(`[e2e] screenshot ${path.join(SCREENSHOTS, "failure-desktop.png")}`);
    } catch {
      // The page may be gone; the message above says what failed.
    }
    return 1;
  } finally {
    await browser.close();
  }
}

process.exit(await main());
