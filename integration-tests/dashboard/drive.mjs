// Drives Debian's headless chromium against a live heloflow dashboard for
// integration-tests/dashboard.rs: opens the page, clicks through the subject cards, samples the
// page's test hooks (window.heloflow) twice while the session runs, counts the pixels each chart
// canvas drew, saves a screenshot and waits for the session's end. Prints one JSON object (with
// `consoleBeforeEnd`: how many console errors came before the screenshot; after it the server goes
// away with the run); the Rust test decides what passes.
//
// node drive.mjs URL SCREENSHOT.png SUBJECT [--chromium PATH] [--min-points N]
// (--min-points: wait until the detail chart holds N points before sampling, for a fuller picture)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, screenshot, subject] = process.argv.slice(2);
const at = process.argv.indexOf("--chromium");
const executable = at > 0 ? process.argv[at + 1] : "chromium";
const minAt = process.argv.indexOf("--min-points");
const minPoints = minAt > 0 ? Number(process.argv[minAt + 1]) : 2;
if (!url || !screenshot || !subject) {
  console.error("usage: node drive.mjs URL SCREENSHOT.png SUBJECT [--chromium PATH]");
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), "heloflow-chromium-"));
const browserProcess = spawn(executable, [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--user-data-dir=" + profile, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
  "--hide-scrollbars", "--force-device-scale-factor=1", "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });

/** The DevTools endpoint chromium prints on standard error once it listens. */
function devtools() {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error("chromium printed no DevTools endpoint in 30 s:\n" + seen)), 30000);
    browserProcess.on("error", (e) => reject(new Error("cannot start " + executable + ": " + e.message)));
    browserProcess.on("exit", (code) => reject(new Error("chromium exited (" + code + ") before listening:\n" + seen)));
    browserProcess.stderr.on("data", (chunk) => {
      seen += chunk;
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
      if (match) { clearTimeout(timer); resolve(match[1]); }
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const hooks = (page) => page.evaluate(() => {
  const h = window.heloflow;
  return {
    rows: { ...h.rows }, draws: { ...h.draws }, points: { ...h.points }, lastDraw: { ...h.lastDraw },
    markersDrawn: h.markersDrawn, frameMs: h.frameMs, maxFrameMs: h.maxFrameMs, statusPolls: h.statusPolls, sockets: { ...h.sockets },
    ended: h.ended, selected: h.selected, subjects: h.subjects(), errors: h.errors.slice(),
    plan: { model: h.plan.model && h.plan.model.name, truth: h.plan.truth && h.plan.truth.name, markers: h.plan.markers, quality: h.plan.quality.map((q) => q.name), features: h.plan.features.map((f) => f.name), conditions: h.plan.conditions },
    statusText: document.getElementById("status").textContent.length,
    qualityCells: document.querySelectorAll("#quality td").length,
    featureCells: document.querySelectorAll("#features .kv b").length,
    title: document.getElementById("detail-title").textContent,
  };
});

/** Per chart: canvases, and pixels that are neither transparent nor near-white, and distinct colours. */
const pixels = (page) => page.evaluate(() => {
  const count = (canvas) => {
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    let inked = 0;
    const colours = new Set();
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (a < 32 || (r > 235 && g > 235 && b > 235)) continue;
      inked += 1;
      colours.add((r >> 4) * 256 + (g >> 4) * 16 + (b >> 4));
    }
    return { inked, colours: colours.size, width: canvas.width, height: canvas.height };
  };
  const charts = {};
  for (const [name, selector] of [["history", "#history canvas"], ["truth", "#truth-history canvas"], ["bars", "#bars canvas"]]) {
    const canvas = document.querySelector(selector);
    charts[name] = canvas ? count(canvas) : null;
  }
  charts.cards = [...document.querySelectorAll(".card canvas")].map(count);
  return charts;
});

const result = { console: [] };
let browser;
try {
  browser = await chromium.connectOverCDP(await devtools());
  const context = browser.contexts()[0];
  const page = await context.newPage();
  await page.setViewportSize({ width: 1500, height: 1050 });
  page.on("pageerror", (e) => result.console.push("pageerror: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") result.console.push("console: " + m.text()); });
  page.on("requestfailed", (r) => result.console.push("requestfailed: " + r.url().replace(/token=[^&]*/, "token=…") + " " + (r.failure() || {}).errorText));
  await page.goto(url);
  await page.waitForFunction(() => window.heloflow && window.heloflow.points.history > 1 && window.heloflow.points.cards > 0, null, { timeout: 60000 });
  // The detail view closes; every card opens its subject; then the one asked for stays open.
  await page.click("#detail-close");
  result.closed = await page.evaluate(() => [window.heloflow.selected, document.getElementById("detail").hidden]);
  result.clicked = [];
  for (const id of await page.evaluate(() => window.heloflow.subjects())) {
    await page.click('.card[data-subject="' + id + '"]');
    result.clicked.push(await page.evaluate(() => [window.heloflow.selected, document.getElementById("detail-title").textContent]));
  }
  if (await page.evaluate(() => window.heloflow.selected) !== subject) await page.click('.card[data-subject="' + subject + '"]');
  await page.waitForFunction((n) => window.heloflow.points.history >= n, minPoints, { timeout: 10000 + minPoints * 2000 });
  result.first = await hooks(page);
  await sleep(3500);
  result.second = await hooks(page);
  result.pixels = await pixels(page);
  await page.screenshot({ path: screenshot, fullPage: true });
  result.consoleBeforeEnd = result.console.length;
  await page.waitForFunction(() => window.heloflow.ended, null, { timeout: 90000 }).catch(() => {});
  result.end = await hooks(page);
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close().catch(() => {});
  browserProcess.kill();
  await sleep(300);
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
