// The console's shell: routes (History API paths; the controller serves index.html for them),
// the header with navigation, the live-feed indicator and the session.

import "./style.css";
import { errorText } from "./api";
import { h, fill } from "./dom";
import { feed } from "./feed";
import { Role } from "./gen/languard/v1/common_pb";
import { accountPage } from "./pages/account";
import { adminNodesPage, usersPage } from "./pages/admin";
import { fleetPage } from "./pages/fleet";
import { loginPage } from "./pages/login";
import { schedulesPage } from "./pages/schedules";
import { serverPage } from "./pages/server";
import { editServerPage, newServerPage } from "./pages/serverform";
import { session } from "./session";

/** What a page gets: where to draw, and how to move elsewhere. Returns its clean-up. */
export interface PageContext {
  main: HTMLElement;
  go(path: string): void;
}
export type Page = (ctx: PageContext, param: string) => (() => void) | void;

const routes: [RegExp, Page, Role][] = [
  [/^\/$/, fleetPage, Role.VIEWER],
  [/^\/servers\/(\d+)$/, serverPage, Role.VIEWER],
  [/^\/servers\/new$/, newServerPage, Role.ADMIN],
  [/^\/servers\/(\d+)\/edit$/, editServerPage, Role.ADMIN],
  [/^\/schedules$/, schedulesPage, Role.OPERATOR],
  [/^\/nodes$/, adminNodesPage, Role.ADMIN],
  [/^\/users$/, usersPage, Role.ADMIN],
  [/^\/account$/, accountPage, Role.VIEWER],
];

const app = document.getElementById("app") as HTMLElement;
let cleanup: (() => void) | void;
let resumed = false;

function go(path: string): void {
  history.pushState(null, "", path);
  void render();
}

function roleName(r: Role): string {
  return Role[r].toLowerCase();
}

/** The header and main region, built once per login; navigation only refills the main region. */
let shellMain: HTMLElement | undefined;

function shell(): HTMLElement {
  if (shellMain && app.contains(shellMain)) {
    for (const a of app.querySelectorAll("header a:not(.brand)")) {
      if ((a as HTMLAnchorElement).pathname === location.pathname) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    shellMain.replaceChildren();
    return shellMain;
  }
  const user = session.user;
  const link = (href: string, label: string) =>
    h("a", { href, "aria-current": location.pathname === href ? "page" : false }, label);
  const feedState = h("span", { class: "feed", role: "status", title: "Live updates" }, "connecting…");
  feed.start((s) => {
    feedState.textContent = s === "live" ? "live" : s === "connecting" ? "connecting…" : "reconnecting…";
    feedState.dataset.state = s;
  });
  shellMain = h("main", { id: "main" });
  fill(
    app,
    h(
      "header",
      { class: "top" },
      h("a", { href: "/", class: "brand" }, "Languard"),
      h(
        "nav",
        { "aria-label": "Main" },
        link("/", "Fleet"),
        session.can(Role.OPERATOR) && link("/schedules", "Schedules"),
        session.can(Role.ADMIN) && [link("/nodes", "Nodes"), link("/users", "Users")],
      ),
      feedState,
      h("span", { class: "who" }, user?.username, " ", h("small", null, user ? `(${roleName(user.role)})` : "")),
      h("a", { href: "/account", "data-testid": "account-link", "aria-current": location.pathname === "/account" ? "page" : false }, "Account"),
      h("button", { type: "button", onclick: logout }, "Log out"),
    ),
    h("div", { id: "notice", "aria-live": "polite" }),
    shellMain,
  );
  return shellMain;
}

async function logout(): Promise<void> {
  feed.stop();
  await session.logout();
  resumed = false;
  go("/login");
}

function toLogin(message?: string): void {
  cleanup?.();
  cleanup = undefined;
  feed.stop();
  resumed = false;
  shellMain = undefined;
  const here = location.pathname;
  if (here !== "/login") history.replaceState(null, "", here === "/" ? "/login" : `/login?next=${encodeURIComponent(here)}`);
  loginPage({ main: app, go }, message ?? "");
}

async function render(): Promise<void> {
  cleanup?.();
  cleanup = undefined;
  if (location.pathname === "/login" || !session.user) {
    if (session.user) return go("/");
    return toLogin();
  }
  if (!resumed) {
    try {
      if (!(await session.resume())) return toLogin();
    } catch (e) {
      // A refused token has already ended the session (and shown the login page).
      if (session.user) toLogin(errorText(e));
      return;
    }
    resumed = true;
  }
  const main = shell();
  for (const [re, page, role] of routes) {
    const m = re.exec(location.pathname);
    if (!m) continue;
    if (!session.can(role)) break;
    cleanup = page({ main, go }, m[1] ?? "");
    return;
  }
  fill(main, h("h1", null, "Not found"), h("p", null, h("a", { href: "/" }, "Back to the fleet")));
}

session.onEnd((reason) => toLogin(reason));

// Same-origin links navigate without a reload.
document.addEventListener("click", (ev) => {
  const a = (ev.target as Element).closest?.("a");
  if (!a || a.origin !== location.origin || a.target || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  if (a.pathname + a.search !== location.pathname + location.search) go(a.pathname + a.search);
});
window.addEventListener("popstate", () => void render());

void render();
