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
const newPassword = `new-${randomBytes(12).toString("hex")}`;

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

describe("web console", { timeout: 210_000 }, () => {
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

  it("shows the host load of the node, live", async () => {
    // From Node.load or the feed's node samples (every 10 s by default).
    const row = admin.locator("#nodes tr", { hasText: "local" });
    await row.getByTestId("node-cpu").filter({ hasText: /^\d+ %$/ }).waitFor({ timeout: 25_000 });
    await row.getByTestId("node-memory").filter({ hasText: /^\S+ \S+ \/ \S+ \S+$/ }).waitFor();
    await shot(admin, "fleet-load");
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
    assert.equal(await navLink(viewer, "Schedules").count(), 0);
    assert.equal(await viewer.getByRole("link", { name: "New server", exact: true }).count(), 0);
    await viewer.getByRole("link", { name: "demo", exact: true }).click();
    await viewer.locator(".console .line").first().waitFor({ timeout: 30_000 });
    assert.equal(await viewer.getByRole("button", { name: "Stop", exact: true }).count(), 0);
    assert.equal(await viewer.getByRole("button", { name: /^Kick/ }).count(), 0);
    // Schedules are shown to viewers, without the means to change them; nor can they edit the server.
    await viewer.locator("#schedules-body > div:not(.form-slot) > *").first().waitFor();
    assert.equal(await viewer.getByRole("button", { name: "New schedule", exact: true }).count(), 0);
    assert.equal(await viewer.getByRole("link", { name: "Edit", exact: true }).count(), 0);
    assert.equal(await viewer.getByRole("button", { name: "Delete", exact: true }).count(), 0);
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

  it("creates a restart schedule, disables, edits and deletes it", async () => {
    const panel = admin.locator("#schedules");
    await panel.getByRole("button", { name: "New schedule", exact: true }).click();
    const form = admin.getByRole("form", { name: "New schedule" });
    await form.getByLabel("Name", { exact: true }).fill("e2e nightly restart");
    await form.getByLabel("Cron", { exact: true }).fill("0 4 * * *");
    assert.equal(await form.getByLabel("Action", { exact: true }).inputValue(), "restart");
    // A warning that is no number is refused before anything is sent.
    await form.getByLabel("Warnings (minutes before)", { exact: true }).fill("15, soon");
    await form.getByRole("button", { name: "Create schedule", exact: true }).click();
    await form.locator(".form-error").filter({ hasText: "soon" }).waitFor();
    // The controller refuses a bad cron expression, and the form says why.
    await form.getByLabel("Warnings (minutes before)", { exact: true }).fill("15, 5, 1");
    await form.getByLabel("Cron", { exact: true }).fill("not a cron");
    await form.getByRole("button", { name: "Create schedule", exact: true }).click();
    await form.locator(".form-error").filter({ hasText: /\S/ }).waitFor();
    await form.getByLabel("Cron", { exact: true }).fill("0 4 * * *");
    await form.getByRole("button", { name: "Create schedule", exact: true }).click();
    await form.waitFor({ state: "detached" });

    const row = panel.locator("tr", { hasText: "e2e nightly restart" });
    await row.getByText("Restart (warnings 15, 5, 1 min before)", { exact: true }).waitFor();
    await row.getByText("enabled", { exact: true }).waitFor();
    assert.match(await row.getByTestId("next-run").textContent(), /\d/, "a next run time");
    await shot(admin, "schedules");

    await row.getByRole("button", { name: "Disable e2e nightly restart", exact: true }).click();
    await row.getByText("disabled", { exact: true }).waitFor();
    assert.equal(await row.getByTestId("next-run").textContent(), "—");

    await row.getByRole("button", { name: "Edit e2e nightly restart", exact: true }).click();
    const edit = admin.getByRole("form", { name: "Edit schedule e2e nightly restart" });
    assert.equal(await edit.getByLabel("Warnings (minutes before)", { exact: true }).inputValue(), "15, 5, 1");
    await edit.getByLabel("Name", { exact: true }).fill("e2e restart");
    await edit.getByRole("button", { name: "Save schedule", exact: true }).click();
    await edit.waitFor({ state: "detached" });

    // Every server's schedules, linked to their server.
    await navLink(admin, "Schedules").click();
    const all = admin.locator("#schedules tr", { hasText: "e2e restart" });
    await all.getByRole("link", { name: "demo", exact: true }).waitFor();
    await all.getByText("disabled", { exact: true }).waitFor();
    await shot(admin, "schedules-all");
    await all.getByRole("button", { name: "Delete e2e restart", exact: true }).click();
    const dlg = admin.getByRole("dialog", { name: "Delete schedule e2e restart?" });
    await dlg.getByRole("button", { name: "Delete", exact: true }).click();
    await all.waitFor({ state: "detached" });
  });

  it("creates, edits and deletes a server, and refuses to delete a running one", async () => {
    await navLink(admin, "Fleet").click();
    await admin.getByRole("link", { name: "New server", exact: true }).click();
    const form = admin.getByRole("form", { name: "New server" });
    await form.getByLabel("Node", { exact: true }).selectOption({ label: "local" });
    assert.equal(await form.getByLabel("Game type", { exact: true }).inputValue(), "arma3");
    await form.getByLabel("Name", { exact: true }).fill("e2e-extra");
    await form.getByLabel("Executable path", { exact: true }).fill("/srv/e2e/arma3server_x64");
    await form.getByLabel("Game port", { exact: true }).fill("2402");
    await form.getByLabel("Mods", { exact: true }).fill("@a; @b");
    await form.getByLabel("Extra arguments", { exact: true }).fill("-loadMissionToMemory\n-autoInit");
    await shot(admin, "server-new");
    await form.getByRole("button", { name: "Create server", exact: true }).click();
    await admin.getByRole("heading", { name: "e2e-extra", exact: true }).waitFor();
    await status(admin).getByText("stopped").waitFor();

    await admin.getByRole("link", { name: "Edit", exact: true }).click();
    const edit = admin.getByRole("form", { name: "Edit e2e-extra" });
    assert.equal(await edit.getByLabel("Mods", { exact: true }).inputValue(), "@a;@b");
    assert.equal(await edit.getByLabel("Extra arguments", { exact: true }).inputValue(), "-loadMissionToMemory\n-autoInit");
    assert.equal(await edit.getByLabel("Game port", { exact: true }).inputValue(), "2402");
    await edit.getByLabel("Name", { exact: true }).fill("e2e-renamed");
    await edit.getByRole("button", { name: "Save", exact: true }).click();
    await admin.getByRole("heading", { name: "e2e-renamed", exact: true }).waitFor();

    await admin.getByRole("button", { name: "Delete", exact: true }).click();
    await admin.getByRole("dialog", { name: "Delete e2e-renamed?" }).getByRole("button", { name: "Delete", exact: true }).click();
    await admin.getByRole("heading", { name: "Fleet", exact: true }).waitFor();
    await serverRow(admin).getByText("running").waitFor();
    assert.equal(await admin.locator("#servers").getByRole("link", { name: "e2e-renamed", exact: true }).count(), 0);

    // The demo server runs: the controller refuses, and the console shows why.
    await admin.getByRole("link", { name: "demo", exact: true }).click();
    await status(admin).getByText("running").waitFor();
    await admin.getByRole("button", { name: "Delete", exact: true }).click();
    await admin.getByRole("dialog", { name: "Delete demo?" }).getByRole("button", { name: "Delete", exact: true }).click();
    await admin.locator("#notice .notice.error").filter({ hasText: /running/ }).waitFor();
    await admin.getByRole("heading", { name: "demo", exact: true }).waitFor();
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

  it("changes the admin's own password in the Account page", async () => {
    await admin.getByTestId("account-link").click();
    await admin.getByRole("heading", { name: "Account", exact: true }).waitFor();
    const error = admin.locator("#password .form-error");
    // The repeat must match; nothing is sent otherwise.
    await admin.getByTestId("current-password").fill(password);
    await admin.getByTestId("new-password").fill(newPassword);
    await admin.getByTestId("repeat-password").fill(`${newPassword}x`);
    await admin.getByRole("button", { name: "Change password", exact: true }).click();
    await error.filter({ hasText: "do not match" }).waitFor();
    // A wrong current password: the controller's answer is shown.
    await admin.getByTestId("current-password").fill("not-the-password");
    await admin.getByTestId("repeat-password").fill(newPassword);
    await admin.getByRole("button", { name: "Change password", exact: true }).click();
    await error.filter({ hasText: /current_password/ }).waitFor();
    await admin.getByTestId("current-password").fill(password);
    await admin.getByRole("button", { name: "Change password", exact: true }).click();
    await admin.getByTestId("password-status").filter({ hasText: "Password changed" }).waitFor();
    await shot(admin, "account");
    // Still logged in (the console logged in again with the new password): the API answers.
    await navLink(admin, "Fleet").click();
    await serverRow(admin).getByText("running").waitFor();
  });

  it("logs out", async () => {
    await admin.getByRole("button", { name: "Log out", exact: true }).click();
    await admin.waitForURL(/\/login$/);
    await admin.reload();
    await admin.getByRole("button", { name: "Log in", exact: true }).waitFor();
    assert.equal(await admin.evaluate(() => sessionStorage.getItem("languard.session")), null);
  });

  it("logs in with the new password, no longer with the old one", async () => {
    await admin.getByLabel("Username").fill("admin");
    await admin.getByLabel("Password").fill(password);
    await admin.getByRole("button", { name: "Log in", exact: true }).click();
    await admin.getByRole("alert").filter({ hasText: /\S/ }).waitFor();
    await login(admin, "admin", newPassword);
  });

  it("had no page errors, CSP violations or requests off 127.0.0.1", () => {
    assert.deepEqual(problems, []);
  });
});
