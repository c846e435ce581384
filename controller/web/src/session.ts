// The logged-in session: tokens (kept in sessionStorage, so a reload keeps the tab logged in and
// another tab has its own), refresh before expiry, and the caller's role.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { api, isCode, setAuthHooks } from "./api";
import { Code } from "@connectrpc/connect";
import type { LoginResponse } from "./gen/languard/v1/auth_pb";
import { Role } from "./gen/languard/v1/common_pb";

const KEY = "languard.session";

interface Stored {
  access: string;
  /** Access token expiry, ms since the epoch. */
  expires: number;
  refresh: string;
  username: string;
  role: Role;
}

let state: Stored | undefined = load();
let refreshing: Promise<void> | undefined;
let timer: number | undefined;
let onEnd: (reason: string) => void = () => {};

function load(): Stored | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Stored) : undefined;
  } catch {
    return undefined;
  }
}

function save(r: LoginResponse): void {
  const expires = r.accessTokenExpireTime ? timestampDate(r.accessTokenExpireTime).getTime() : Date.now() + 60_000;
  state = {
    access: r.accessToken,
    expires,
    refresh: r.refreshToken,
    username: r.user?.username ?? state?.username ?? "",
    role: r.user?.role ?? state?.role ?? Role.VIEWER,
  };
  sessionStorage.setItem(KEY, JSON.stringify(state));
  schedule();
}

/** Refresh a quarter of the lifetime (at most a minute) before the access token expires. */
function schedule(): void {
  clearTimeout(timer);
  if (!state) return;
  const left = state.expires - Date.now();
  timer = window.setTimeout(() => void refresh().catch(() => {}), Math.max(1000, left - Math.min(60_000, left / 4)));
}

/** Exchanges the refresh token for a new pair; concurrent callers share one call (the token rotates). */
function refresh(): Promise<void> {
  refreshing ??= (async () => {
    const current = state;
    if (!current) throw new Error("not logged in");
    try {
      save(await api.auth.refresh({ refreshToken: current.refresh }));
    } catch (e) {
      if (isCode(e, Code.Unauthenticated)) end("Your session has expired. Please log in again.");
      else timer = window.setTimeout(() => void refresh().catch(() => {}), 10_000);
      throw e;
    }
  })().finally(() => (refreshing = undefined));
  return refreshing;
}

function end(reason: string): void {
  clearTimeout(timer);
  const was = state;
  state = undefined;
  sessionStorage.removeItem(KEY);
  if (was) onEnd(reason);
}

/** The access token, refreshed first when it expires within 15 s (or a refresh is under way). */
async function validToken(): Promise<string | undefined> {
  if (refreshing) await refreshing;
  else if (state && state.expires - Date.now() < 15_000) await refresh();
  return state?.access;
}

setAuthHooks({
  token: validToken,
  rejected: () => end("Your session has ended. Please log in again."),
});

// Timers are throttled in background tabs: catch up when the tab is shown again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state) schedule();
});

export const session = {
  /** Called once with what to do when the session ends by itself (expiry, revocation). */
  onEnd(f: (reason: string) => void): void {
    onEnd = f;
  },
  get user(): { username: string; role: Role } | undefined {
    return state && { username: state.username, role: state.role };
  },
  /** The current access token (for the WebSocket). */
  get token(): string | undefined {
    return state?.access;
  },
  refresh,
  async login(username: string, password: string): Promise<void> {
    save(await api.auth.login({ username, password }));
  },
  /**
   * Changes the caller's own password. The controller revokes the caller's refresh tokens, so this
   * logs in again with the new password (ending the session if even that fails).
   */
  async changePassword(current: string, next: string): Promise<void> {
    const username = state?.username;
    await api.auth.changePassword({ currentPassword: current, newPassword: next });
    try {
      if (username) save(await api.auth.login({ username, password: next }));
    } catch {
      end("Your password was changed. Please log in again.");
    }
  },
  /** Confirms a stored session with WhoAmI and takes the role from it (roles can change). */
  async resume(): Promise<boolean> {
    if (!state) return false;
    const me = await api.auth.whoAmI({});
    if (!state || !me.user) return false;
    state.role = me.user.role;
    state.username = me.user.username;
    sessionStorage.setItem(KEY, JSON.stringify(state));
    schedule();
    return true;
  },
  async logout(): Promise<void> {
    try {
      await validToken();
      if (state) await api.auth.logout({ refreshToken: state.refresh });
    } catch {
      // The session ends here whatever the controller says.
    }
    clearTimeout(timer);
    state = undefined;
    sessionStorage.removeItem(KEY);
  },
  /** viewer < operator < admin. */
  can(role: Role): boolean {
    return !!state && state.role >= role;
  },
};
