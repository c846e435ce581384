// End-to-end test of the web console: the real controller (`--demo`, so a node `local` and a server
// `demo` backed by the Arma 3 test double) and Debian's Chromium driven by playwright-core.
// Everything stays on 127.0.0.1. Screenshots go to e2e/artifacts/ with the controller's log.
//
//   LANGUARD_CONTROLLER_BIN  the controller binary (default ../../target/debug/languard-controller,
//                            relative to controller/web)
//   CHROMIUM                 the browser (default /usr/bin/chromium)

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = resolve(webDir, process.env.LANGUARD_CONTROLLER_BIN ?? "../../target/debug/languard-controller");
const artifacts = join(webDir, "e2e", "artifacts");
const password = `e2e-${randomBytes(12).toString("hex")}`;
const viewerPassword = `view-${randomBytes(12).toString("hex")}`;

let controller; // the child process
let dataDir;
let origin;
let browser;
let admin; // the admin's page
let viewer; // a viewer's page, in a browser context of its own
const problems = []; // uncaught page errors, CSP violations, requests off 127.0.0.1
const refreshes = { count: 0 };
let loggedInAt;

/** Starts the controller and resolves with its origin once it prints the listening line. */
function startController() {
  dataDir = mkdtempSync(join(tmpdir(), "languard-e2e-"));
  const log = createWriteStream(join(artifacts, "controller.log"));
  controller = spawn(bin, ["--demo", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: {
      ...process.env,
      LANGUARD_ADMIN_PASSWORD: password,
      // The shortest allowed: the console must refresh its token several times during the test.
      LANGUARD_ACCESS_TOKEN_TTL_SECONDS: "30",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  controller.stderr.pipe(log);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error("the controller did not start within 60 s")), 60_000);
    let out = "";
    controller.stdout.on("data", (chunk) => {
      log.write(chunk);
      out += chunk;
      const m = /languard-controller listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(`http://${m[1]}`);
      }
    });
    controller.on("exit", (code) => rej(new Error(`the controller exited with ${code}; see e2e/artifacts/controller.log`)));
  });
}

/** Ids of the game server processes (the test double) started from under the data dir. */
function gameServers() {
  const pids = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
      if (argv0.startsWith(`${dataDir}/`) && argv0.endsWith("arma3server_x64")) pids.push(Number(pid));
    } catch {
      // The process is gone.
    }
  }
  return pids;
}

/** SIGTERM to the controller, SIGKILL after 10 s; then the game servers, which outlive it by design. */
async function stopController() {
  if (controller && controller.exitCode === null) {
    const exited = new Promise((r) => controller.once("exit", r));
    controller.kill("SIGTERM");
    const t = setTimeout(() => controller.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  }
  if (dataDir) {
    for (const pid of gameServers()) process.kill(pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  }
}

// Should the test be cut short, leave no controller behind.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));
process.on("exit", () => {
  if (controller?.exitCode === null) controller.kill("SIGKILL");
  if (dataDir) for (const pid of gameServers()) process.kill(pid, "SIGKILL");
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content.Security.Policy/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.protocol !== "data:" && url.hostname !== "127.0.0.1") problems.push(`request off loopback: ${r.url()}`);
    if (url.pathname === "/languard.v1.AuthService/Refresh") refreshes.count++;
  });
  return page;
}

async function login(page, username, pass) {
  await page.goto(`${origin}/`);
  await page.waitForURL(/\/login$/);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(pass);
  await page.getByRole("button", { name: "Log in", exact: true }).click();
  await page.getByRole("heading", { name: "Fleet" }).waitFor();
}

const navLink = (page, name) => page.getByRole("navigation").getByRole("link", { name, exact: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const serverRow = (page) => page.locator("#servers tr", { has: page.getByRole("link", { name: "demo", exact: true }) });
const status = (page) => page.locator(".server-state .badge");

describe("web console", { timeout: 150_000 }, () => {
  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    origin = await startController();
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    admin = await newPage();
  });

  after(async () => {
    await browser?.close();
    await stopController();
  });

  it("refuses a wrong password, then logs in", async () => {
    await admin.goto(`${origin}/`);
    await admin.waitForURL(/\/login$/);
    await admin.getByLabel("Username").fill("admin");
    await admin.getByLabel("Password").fill("not-the-password");
    await admin.getByRole("button", { name: "Log in", exact: true }).click();
    await admin.getByRole("alert").filter({ hasText: /\S/ }).waitFor();
    await shot(admin, "login");
    await login(admin, "admin", password);
    loggedInAt = Date.now();
  });

  it("shows the fleet: the local node online, the demo server running", async () => {
    await admin.locator("#nodes tr", { hasText: "local" }).getByText("online").waitFor();
    await serverRow(admin).getByText("running").waitFor({ timeout: 60_000 });
    await admin.getByRole("status").filter({ hasText: "live" }).waitFor();
    await shot(admin, "fleet");
  });

  it("creates a viewer in the users page", async () => {
    await navLink(admin, "Users").click();
    await admin.getByRole("form", { name: "New user" }).getByLabel("Username").fill("watcher");
    await admin.getByRole("form", { name: "New user" }).getByLabel("Password").fill(viewerPassword);
    await admin.getByRole("form", { name: "New user" }).getByLabel("Role").selectOption({ label: "viewer" });
    await admin.getByRole("button", { name: "Create user", exact: true }).click();
    await admin.getByRole("combobox", { name: "Role of watcher" }).waitFor();
    assert.equal(await admin.getByRole("combobox", { name: "Role of watcher" }).inputValue(), "1");
    await shot(admin, "users");
  });

  it("creates a node and shows its enrollment token once", async () => {
    await navLink(admin, "Nodes").click();
    await admin.getByRole("form", { name: "New node" }).getByLabel("Name").fill("host-2");
    await admin.getByRole("button", { name: "Create node", exact: true }).click();
    const token = await admin.locator(".token code.secret").textContent();
    assert.match(token, /^lgn_/);
    await admin.locator("#node-list tr", { hasText: "host-2" }).getByText("offline").waitFor();
    await shot(admin, "nodes");
  });

  it("lets a viewer watch but not act", async () => {
    viewer = await newPage();
    await login(viewer, "watcher", viewerPassword);
    assert.equal(await navLink(viewer, "Users").count(), 0);
    assert.equal(await navLink(viewer, "Nodes").count(), 0);
    await viewer.getByRole("link", { name: "demo", exact: true }).click();
    await viewer.locator(".console .line").first().waitFor({ timeout: 30_000 });
    assert.equal(await viewer.getByRole("button", { name: "Stop", exact: true }).count(), 0);
    assert.equal(await viewer.getByRole("button", { name: /^Kick/ }).count(), 0);
    await navLink(viewer, "Fleet").click();
    await serverRow(viewer).getByText("running").waitFor();
    // Marks the page: if it were reloaded, the mark would be gone.
    await viewer.evaluate(() => (window.noReload = true));
  });

  it("shows the console live and stops and starts the server, everyone seeing it live", async () => {
    await navLink(admin, "Fleet").click();
    await admin.getByRole("link", { name: "demo", exact: true }).click();
    await admin.getByRole("heading", { name: "demo" }).waitFor();
    const lines = admin.locator(".console .line");
    await lines.first().waitFor({ timeout: 30_000 });
    const before = await lines.count();
    await admin.waitForFunction((n) => document.querySelectorAll(".console .line").length > n, before, { timeout: 30_000 });

    await admin.getByRole("button", { name: "Stop", exact: true }).click();
    await status(admin).getByText("stopped").waitFor({ timeout: 60_000 });
    await serverRow(viewer).getByText("stopped").waitFor();
    const stoppedLines = await lines.count();

    await admin.getByRole("button", { name: "Start", exact: true }).click();
    await status(admin).getByText("running").waitFor({ timeout: 60_000 });
    await serverRow(viewer).getByText("running").waitFor();
    assert.equal(await viewer.evaluate(() => window.noReload), true, "the viewer's page was reloaded");
    // The new process's output arrives in the open console.
    await admin.waitForFunction((n) => document.querySelectorAll(".console .line").length > n, stoppedLines, { timeout: 30_000 });

    // Search filters the lines; clearing it shows them all again.
    await admin.getByRole("searchbox", { name: "Search the console" }).fill("zz-no-such-text-zz");
    assert.equal(await admin.locator(".console .line:visible").count(), 0);
    await admin.getByRole("searchbox", { name: "Search the console" }).fill("");
    assert.ok((await admin.locator(".console .line:visible").count()) > 0);
    // Pause holds new lines back until resumed.
    await admin.getByRole("button", { name: "Pause", exact: true }).click();
    await admin.getByRole("button", { name: /^Resume \(\d+ new\)$/ }).waitFor({ timeout: 30_000 });
    await admin.getByRole("button", { name: /^Resume/ }).click();
    await admin.getByRole("button", { name: "Pause", exact: true }).waitFor();
    // Scrolled up, the console offers a way back to the newest line.
    const jump = admin.getByRole("button", { name: "Jump to bottom", exact: true });
    await jump.waitFor({ state: "hidden" });
    await admin.locator(".console").evaluate((el) => (el.scrollTop = 0));
    await jump.click();
    await jump.waitFor({ state: "hidden" });
  });

  it("asks before killing", async () => {
    await admin.getByRole("button", { name: "Kill", exact: true }).click();
    const dlg = admin.getByRole("dialog", { name: "Kill demo?" });
    await dlg.waitFor();
    await dlg.getByRole("button", { name: "Cancel", exact: true }).click();
    await dlg.waitFor({ state: "detached" });
    assert.equal(await status(admin).textContent(), "running");
  });

  it("shows a player joining and kicks them", async () => {
    const panel = admin.locator("#players");
    const kick = panel.getByRole("button", { name: /^Kick / }).first();
    // The demo's players join within seconds of "Game started.".
    await kick.waitFor({ timeout: 40_000 });
    const name = (await kick.getAttribute("aria-label")).replace(/^Kick /, "");
    await shot(admin, "players");
    await kick.click();
    const dlg = admin.getByRole("dialog", { name: `Kick ${name}?` });
    await dlg.getByLabel(/Reason/).fill("e2e test");
    await dlg.getByRole("button", { name: "Kick", exact: true }).click();
    // Either the player leaves, or the controller says why it could not kick (shown, not hidden).
    await panel
      .getByRole("button", { name: `Kick ${name}`, exact: true })
      .waitFor({ state: "detached", timeout: 20_000 })
      .catch(async () => {
        const notice = await admin.locator("#notice").textContent();
        assert.fail(`${name} was not kicked; notice: ${notice}`);
      });
  });

  it("draws the resource charts", async () => {
    const panel = admin.locator("#metrics");
    const chart = panel.locator("canvas").first();
    // The agent samples every few seconds; ask again (by choosing the range) until points exist.
    const deadline = Date.now() + 30_000;
    for (;;) {
      await panel.getByRole("button", { name: "1 h", exact: true }).click();
      try {
        await chart.waitFor({ timeout: 3_000 });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    }
    assert.equal(await panel.locator("canvas").count(), 2, "a CPU and a memory chart");
    await panel.getByRole("button", { name: "24 h", exact: true }).click();
    assert.equal(await panel.getByRole("button", { name: "24 h", exact: true }).getAttribute("aria-pressed"), "true");
    await chart.waitFor();
  });

  it("lists the event history with the power actions", async () => {
    await admin.locator("#events tr", { hasText: "admin" }).first().waitFor();
    await admin.locator("#events").getByText("power", { exact: true }).first().waitFor();
    await shot(admin, "server");
  });

  it("keeps the session alive past the token's lifetime by refreshing it", async () => {
    // Access tokens live 30 s here; the console refreshes them a quarter of that before expiry.
    const wait = Math.max(0, loggedInAt + 32_000 - Date.now());
    await admin.waitForTimeout(wait);
    assert.ok(refreshes.count >= 1, `refreshes: ${refreshes.count}`);
    await admin.reload();
    await admin.getByRole("heading", { name: "demo" }).waitFor();
    await status(admin).getByText("running").waitFor();
  });

  it("returns to the login page when the token is refused", async () => {
    await viewer.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem("languard.session"));
      sessionStorage.setItem("languard.session", JSON.stringify({ ...s, access: "forged", expires: Date.now() + 3_600_000 }));
    });
    await viewer.reload();
    await viewer.waitForURL(/\/login/);
    await viewer.getByRole("button", { name: "Log in", exact: true }).waitFor();
  });

  it("logs out", async () => {
    await admin.getByRole("button", { name: "Log out", exact: true }).click();
    await admin.waitForURL(/\/login$/);
    await admin.reload();
    await admin.getByRole("button", { name: "Log in", exact: true }).waitFor();
    assert.equal(await admin.evaluate(() => sessionStorage.getItem("languard.session")), null);
  });

  it("had no page errors, CSP violations or requests off 127.0.0.1", () => {
    assert.deepEqual(problems, []);
  });
});
