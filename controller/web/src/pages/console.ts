// A server's live console: TailLogs (backlog, then live) or, where the controller has no TailLogs,
// a ListLogs backlog followed by the WebSocket's `log` messages. Level colours, pause, search and
// jump-to-bottom; at most MAX_LINES lines are kept.

import { api, errorText, isUnimplemented } from "../api";
import { h, toDate } from "../dom";
import { feed, type LogData } from "../feed";
import { LogLevel, type LogEntry } from "../gen/languard/v1/logs_pb";
import { panel, showError } from "./common";

const MAX_LINES = 2000;
const BACKLOG = 300;

interface Line {
  id: bigint;
  level: string;
  time: Date;
  text: string;
}

export function consolePanel(serverId: bigint): { section: HTMLElement; stop: () => void } {
  const search = h("input", { type: "search", placeholder: "Search", "aria-label": "Search the console" });
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const jump = h("button", { type: "button", class: "jump", hidden: true }, "Jump to bottom");
  const { section, body } = panel("console", "Console", search, pause);
  const log = h("div", { class: "console", role: "log", "aria-label": "Console output", tabindex: "0" });
  const status = h("p", { class: "muted", role: "status" });
  body.append(status, log, jump);

  let lastId = -1n;
  let paused = false;
  let pending: Line[] = [];
  let stopped = false;
  const abort = new AbortController();

  const matches = (el: HTMLElement) => {
    const q = search.value.trim().toLowerCase();
    return !q || (el.textContent ?? "").toLowerCase().includes(q);
  };

  function render(lines: Line[]): void {
    const stick = nearBottom();
    for (const l of lines) {
      const el = h(
        "div",
        { class: `line ${l.level}` },
        h("time", { datetime: l.time.toISOString() }, l.time.toLocaleTimeString()),
        " ",
        l.text,
      );
      el.hidden = !matches(el);
      log.append(el);
    }
    while (log.childElementCount > MAX_LINES) log.firstElementChild?.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  // Measured, not remembered: a scroll event is delivered a frame late, so lines arriving right
  // after the user scrolled up must not pull the view back down.
  function nearBottom(): boolean {
    return log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  }

  function add(l: Line): void {
    if (l.id <= lastId) return;
    lastId = l.id;
    if (paused) {
      pending.push(l);
      pause.textContent = `Resume (${pending.length} new)`;
    } else {
      render([l]);
    }
  }

  log.addEventListener("scroll", () => {
    jump.hidden = nearBottom();
  });
  jump.addEventListener("click", () => {
    log.scrollTop = log.scrollHeight;
  });
  search.addEventListener("input", () => {
    const stick = nearBottom();
    for (const el of log.children) (el as HTMLElement).hidden = !matches(el as HTMLElement);
    if (stick) log.scrollTop = log.scrollHeight;
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      render(pending);
      pending = [];
    }
  });

  const fromEntry = (e: LogEntry): Line => ({
    id: e.id,
    level: e.level === LogLevel.UNSPECIFIED ? "info" : LogLevel[e.level].toLowerCase(),
    time: toDate(e.time) ?? new Date(),
    text: e.text,
  });

  // The WebSocket is the live source only when TailLogs is missing.
  let offFeed: (() => void) | undefined;

  async function tail(): Promise<void> {
    while (!stopped) {
      try {
        for await (const e of api.logs.tailLogs({ serverId, backlog: BACKLOG }, { signal: abort.signal })) {
          status.textContent = "";
          add(fromEntry(e));
        }
      } catch (e) {
        if (stopped) return;
        if (isUnimplemented(e)) return backlogThenFeed();
        status.textContent = `Disconnected (${errorText(e)}); retrying…`;
      }
      // The stream ended (controller restart, network): resume after a pause; ids skip the repeat.
      await new Promise((r) => setTimeout(r, 3000));
    }
  }

  async function backlogThenFeed(): Promise<void> {
    // Subscribe first and hold live lines until the backlog is shown: no gap; ids drop repeats.
    let early: Line[] | undefined = [];
    offFeed = feed.on((m) => {
      if (m.type !== "log" || m.server_id !== Number(serverId)) return;
      const d = m.data as LogData;
      const line = { id: BigInt(d.id), level: d.level, time: new Date(d.time), text: d.text };
      if (early) early.push(line);
      else add(line);
    });
    try {
      const r = await api.logs.listLogs({ serverId, pageSize: BACKLOG });
      for (const e of r.entries.reverse()) add(fromEntry(e));
      for (const l of early) add(l);
      early = undefined;
    } catch (e) {
      offFeed();
      offFeed = undefined;
      if (!stopped) showError(body, "The console", e);
    }
  }

  void tail();
  return {
    section,
    stop() {
      stopped = true;
      abort.abort();
      offFeed?.();
    },
  };
}
