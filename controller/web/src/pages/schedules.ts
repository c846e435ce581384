// Scheduled server tasks (ScheduleService): restarts with in-game warnings, messages and raw RCon
// commands on a cron schedule. One server's schedules on its page; every server's on /schedules.
// Viewers read; operators create, change and delete; schedules with a raw command need an admin.

import { api, errorText, isUnimplemented } from "../api";
import { checkbox, dialog, errorLine, field, fill, fmtTime, h, notify, table, toDate } from "../dom";
import { feed, type EventData } from "../feed";
import { Role } from "../gen/languard/v1/common_pb";
import type { Schedule } from "../gen/languard/v1/schedules_pb";
import type { PageContext } from "../main";
import { session } from "../session";
import { badge, listAll, panel, showError } from "./common";

type ActionCase = "restart" | "message" | "command";
type ActionInit =
  | { case: "restart"; value: { warningSeconds: number[]; warningMessage: string } }
  | { case: "message"; value: { text: string } }
  | { case: "command"; value: { command: string } };

const DEFAULT_WARNING = "Server restart in {minutes} minute(s)";

/** 900 → "15", 90 → "1.5". */
const minutes = (seconds: number) => String(+(seconds / 60).toFixed(2));

/** "15, 5, 1" (minutes before the restart) → [900, 300, 60], or why it cannot be read. */
export function parseWarnings(text: string): number[] | string {
  const seconds: number[] = [];
  for (const part of text.split(/[,;\s]+/).filter(Boolean)) {
    const m = Number(part);
    const s = Math.round(m * 60);
    if (!Number.isFinite(m) || s < 1 || s > 86400) return `Warnings: "${part}" is not a number of minutes above 0 and at most 1440.`;
    if (seconds.includes(s)) return `Warnings: ${part} minutes is listed twice.`;
    seconds.push(s);
  }
  return seconds.sort((a, b) => b - a);
}

function actionSummary(s: Schedule): string {
  const a = s.action;
  switch (a.case) {
    case "restart": {
      const w = a.value.warningSeconds;
      return w.length ? `Restart (warnings ${w.map(minutes).join(", ")} min before)` : "Restart (no warning)";
    }
    case "message":
      return `Message: ${a.value.text}`;
    case "command":
      return `Command: ${a.value.command}`;
    default:
      return "—";
  }
}

/** Comparable form of an action, to tell whether an edit changed it. */
function actionKey(a: Schedule["action"] | ActionInit): string {
  switch (a.case) {
    case "restart":
      return `r:${a.value.warningSeconds.join(",")}:${a.value.warningMessage}`;
    case "message":
      return `m:${a.value.text}`;
    case "command":
      return `c:${a.value.command}`;
    default:
      return "";
  }
}

/** May the caller change (or delete) this schedule? */
const mayChange = (s: Schedule) => session.can(Role.OPERATOR) && (s.action.case !== "command" || session.can(Role.ADMIN));

/** The create / edit form. `servers` offers a server picker (creating from the overview page). */
function scheduleForm(opts: {
  schedule?: Schedule;
  serverId?: bigint;
  servers?: [bigint, string][];
  done: (s: Schedule) => void;
  cancel: () => void;
}): HTMLFormElement {
  const s = opts.schedule;
  const admin = session.can(Role.ADMIN);
  const a = s?.action;
  const server =
    !s && opts.servers
      ? h("select", { name: "server", required: true }, opts.servers.map(([id, name]) => h("option", { value: String(id) }, name)))
      : undefined;
  const name = h("input", { name: "name", required: true, maxlength: 100, autocomplete: "off", value: s?.name ?? "" });
  const cron = h("input", { name: "cron", required: true, autocomplete: "off", placeholder: "0 4 * * *", value: s?.cron ?? "" });
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zone = h("input", { name: "time_zone", autocomplete: "off", placeholder: "UTC", value: s?.timeZone ?? "" });
  const enabled = checkbox("Enabled", "enabled", s?.enabled ?? true);
  const kinds: [ActionCase, string][] = [
    ["restart", "Restart with warnings"],
    ["message", "Message to everyone"],
  ];
  if (admin) kinds.push(["command", "RCon command (admin)"]);
  const kind = h(
    "select",
    { name: "action" },
    kinds.map(([v, l]) => h("option", { value: v, selected: v === (a?.case ?? "restart") }, l)),
  );
  const warnings = h("input", {
    name: "warnings",
    autocomplete: "off",
    placeholder: "15, 5, 1",
    value: a?.case === "restart" ? a.value.warningSeconds.map(minutes).join(", ") : s ? "" : "15, 5, 1",
  });
  const warningText = h("input", {
    name: "warning_message",
    autocomplete: "off",
    maxlength: 400,
    placeholder: DEFAULT_WARNING,
    value: a?.case === "restart" ? a.value.warningMessage : "",
  });
  const text = h("input", { name: "text", autocomplete: "off", maxlength: 400, value: a?.case === "message" ? a.value.text : "" });
  const command = h("input", { name: "command", autocomplete: "off", maxlength: 400, placeholder: "#lock", value: a?.case === "command" ? a.value.command : "" });
  const groups: Record<ActionCase, HTMLElement> = {
    restart: h(
      "div",
      { class: "row" },
      field("Warnings (minutes before)", warnings, "Comma-separated; empty for none."),
      field("Warning text", warningText, "{minutes} and {seconds} are replaced with the time left."),
    ),
    message: h("div", { class: "row" }, field("Message", text)),
    command: h("div", { class: "row" }, field("Command", command, "Sent verbatim over RCon.")),
  };
  const showGroup = () => {
    for (const [k, g] of Object.entries(groups)) g.hidden = k !== kind.value;
  };
  kind.addEventListener("change", showGroup);
  showGroup();

  const error = errorLine();
  const submit = h("button", { type: "submit", class: "primary" }, s ? "Save schedule" : "Create schedule");
  const form = h(
    "form",
    { class: "stack", "aria-label": s ? `Edit schedule ${s.name}` : "New schedule", "data-testid": "schedule-form" },
    h(
      "div",
      { class: "row" },
      server && field("Server", server),
      field("Name", name),
      field("Cron", cron, "minute hour day month weekday (seconds first with 6 fields)"),
      field("Time zone", zone, `IANA name, empty for UTC (here: ${here})`),
    ),
    h("div", { class: "row" }, field("Action", kind), enabled),
    Object.values(groups),
    error,
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "button", onclick: opts.cancel }, "Cancel"),
      submit,
    ),
  );

  function readAction(): ActionInit | string {
    switch (kind.value as ActionCase) {
      case "restart": {
        const w = parseWarnings(warnings.value);
        if (typeof w === "string") return w;
        return { case: "restart", value: { warningSeconds: w, warningMessage: warningText.value.trim() } };
      }
      case "message":
        if (!text.value.trim()) return "Message: the text is required.";
        return { case: "message", value: { text: text.value.trim() } };
      case "command":
        if (!command.value.trim()) return "Command: the command is required.";
        return { case: "command", value: { command: command.value.trim() } };
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const action = readAction();
    if (typeof action === "string") {
      error.textContent = action;
      return;
    }
    const values = {
      name: name.value.trim(),
      cron: cron.value.trim(),
      timeZone: zone.value.trim(),
      enabled: (enabled.querySelector("input") as HTMLInputElement).checked,
      action,
    };
    submit.disabled = true;
    try {
      if (!s) {
        const serverId = server ? BigInt(server.value) : opts.serverId;
        if (!serverId) throw new Error("no server");
        opts.done(await api.schedules.createSchedule({ schedule: { serverId, ...values } }));
        notify(`Schedule ${values.name} created.`);
      } else {
        const paths: string[] = [];
        if (values.name !== s.name) paths.push("name");
        if (values.cron !== s.cron) paths.push("cron");
        if (values.timeZone !== s.timeZone) paths.push("time_zone");
        if (values.enabled !== s.enabled) paths.push("enabled");
        if (actionKey(action) !== actionKey(s.action)) paths.push("action");
        if (paths.length === 0) return opts.cancel();
        opts.done(await api.schedules.updateSchedule({ id: s.id, schedule: values, updateMask: { paths } }));
        notify(`Schedule ${values.name} saved.`);
      }
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * The schedules of one server (`serverId`), or of every server (undefined: with a server column
 * and a server picker in the create form).
 */
export function schedulesPanel(serverId?: bigint): { section: HTMLElement; stop: () => void } {
  const operator = session.can(Role.OPERATOR);
  const add = h("button", { type: "button", class: "primary", hidden: !operator }, "New schedule");
  const { section, body } = panel("schedules", "Schedules", add);
  const formSlot = h("div", { class: "form-slot" });
  const list = h("div");
  body.append(formSlot, list);

  let schedules: Schedule[] = [];
  let servers = new Map<bigint, string>();

  function closeForm(): void {
    formSlot.replaceChildren();
    add.hidden = !operator;
  }

  function openForm(schedule?: Schedule): void {
    add.hidden = true;
    const form = scheduleForm({
      schedule,
      serverId,
      servers: serverId === undefined ? [...servers] : undefined,
      done: (saved) => {
        closeForm();
        const i = schedules.findIndex((x) => x.id === saved.id);
        if (i >= 0) schedules[i] = saved;
        else schedules.push(saved);
        draw();
      },
      cancel: closeForm,
    });
    fill(formSlot, form);
    form.querySelector("input")?.focus();
  }

  async function setEnabled(s: Schedule, enabled: boolean): Promise<void> {
    try {
      const saved = await api.schedules.updateSchedule({ id: s.id, schedule: { enabled }, updateMask: { paths: ["enabled"] } });
      schedules = schedules.map((x) => (x.id === s.id ? saved : x));
      notify(`Schedule ${s.name} ${enabled ? "enabled" : "disabled"}.`);
      draw();
    } catch (e) {
      notify(`${s.name}: ${errorText(e)}`, "error");
    }
  }

  async function remove(s: Schedule): Promise<void> {
    if (!(await dialog({ title: `Delete schedule ${s.name}?`, text: actionSummary(s), confirm: "Delete", danger: true }))) return;
    try {
      await api.schedules.deleteSchedule({ id: s.id });
      schedules = schedules.filter((x) => x.id !== s.id);
      notify(`Schedule ${s.name} deleted.`);
      draw();
    } catch (e) {
      notify(`${s.name}: ${errorText(e)}`, "error");
    }
  }

  function draw(): void {
    const all = serverId === undefined;
    fill(
      list,
      table(
        "Schedules",
        [...(all ? ["Server"] : []), "Name", "When", "Action", "State", "Next run", "Last run", ...(operator ? [""] : [])],
        schedules.map((s) => {
          const last = toDate(s.lastRunTime);
          const failed = s.lastResult.startsWith("failed");
          const cells: (Node | string)[] = [];
          if (all) cells.push(h("a", { href: `/servers/${s.serverId}` }, servers.get(s.serverId) ?? `#${s.serverId}`));
          cells.push(
            s.name,
            h("span", null, h("code", null, s.cron), " ", h("small", { class: "muted" }, s.timeZone || "UTC")),
            actionSummary(s),
            badge(s.enabled ? "enabled" : "disabled"),
            h("span", { "data-testid": "next-run" }, s.enabled ? fmtTime(toDate(s.nextRunTime)) : "—"),
            last ? h("span", null, fmtTime(last), h("br"), h("small", { class: failed ? "error" : "muted" }, s.lastResult)) : "never",
          );
          if (operator)
            cells.push(
              mayChange(s)
                ? h(
                    "div",
                    { class: "actions" },
                    h("button", { type: "button", onclick: () => void setEnabled(s, !s.enabled), "aria-label": `${s.enabled ? "Disable" : "Enable"} ${s.name}` }, s.enabled ? "Disable" : "Enable"),
                    h("button", { type: "button", onclick: () => openForm(s), "aria-label": `Edit ${s.name}` }, "Edit"),
                    h("button", { type: "button", class: "danger", onclick: () => void remove(s), "aria-label": `Delete ${s.name}` }, "Delete"),
                  )
                : h("small", { class: "muted" }, "admin only"),
            );
          return cells;
        }),
        "No schedules.",
      ),
    );
  }

  async function load(): Promise<void> {
    try {
      const [found, names] = await Promise.all([
        listAll(async (t) => {
          const r = await api.schedules.listSchedules({ serverId: serverId ?? 0n, pageSize: 500, pageToken: t });
          return { items: r.schedules, next: r.nextPageToken };
        }),
        serverId === undefined
          ? listAll(async (t) => {
              const r = await api.servers.listServers({ pageSize: 500, pageToken: t });
              return { items: r.servers, next: r.nextPageToken };
            })
          : Promise.resolve([]),
      ]);
      schedules = found;
      servers = new Map(names.map((x) => [x.id, x.name]));
      draw();
    } catch (e) {
      if (isUnimplemented(e)) add.hidden = true;
      showError(list, "Schedules", e);
    }
  }

  add.addEventListener("click", () => openForm());
  // Every step of a schedule is recorded as a `schedule` event: re-read for the last run and the next.
  const off = feed.on((m) => {
    if (m.type === "resync") return void load();
    if (m.type !== "event" || (m.data as EventData).event_type !== "schedule") return;
    if (serverId === undefined || m.server_id === Number(serverId)) void load();
  });
  void load();
  return { section, stop: off };
}

export function schedulesPage({ main }: PageContext): () => void {
  const p = schedulesPanel();
  fill(main, h("h1", null, "Schedules"), p.section);
  return p.stop;
}
