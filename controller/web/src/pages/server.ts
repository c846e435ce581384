// One server: its state and power actions, console, players, resources, schedules and history;
// for admins, links to edit and delete it.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { api, errorText, isCode } from "../api";
import { dialog, fill, fmtTime, h, notify, table, toDate } from "../dom";
import { feed, type EventData, type StatusData } from "../feed";
import { Role, ServerStatus } from "../gen/languard/v1/common_pb";
import { ServerEventSchema, type ServerEvent } from "../gen/languard/v1/events_pb";
import type { Server } from "../gen/languard/v1/servers_pb";
import type { PageContext } from "../main";
import { session } from "../session";
import { badge, panel, showError, statusFromName, statusName } from "./common";
import { consolePanel } from "./console";
import { metricsPanel } from "./metrics";
import { playerPanels } from "./players";
import { schedulesPanel } from "./schedules";

type Power = "start" | "stop" | "restart" | "kill";

/** Which power actions make sense in a status. */
function allowed(s: ServerStatus, action: Power): boolean {
  const up = s === ServerStatus.RUNNING || s === ServerStatus.STARTING;
  switch (action) {
    case "start":
      return !up && s !== ServerStatus.STOPPING;
    case "stop":
    case "restart":
      return up;
    case "kill":
      return up || s === ServerStatus.STOPPING;
  }
}

export function serverPage({ main, go }: PageContext, idParam: string): () => void {
  const id = BigInt(idParam);
  let server: Server | undefined;
  const title = h("h1", null, `Server #${id}`);
  const state = h("p", { class: "server-state", role: "status" });
  const power = h("div", { class: "power", role: "group", "aria-label": "Power" });
  const history = panel("events", "Event history");
  const consoleP = consolePanel(id);
  const playersP = playerPanels(id);
  const metricsP = metricsPanel(id);
  const schedulesP = schedulesPanel(id);
  const manage = h("div", { class: "power", role: "group", "aria-label": "Manage" });
  fill(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "/" }, "Fleet"), " / "),
    title,
    h("div", { class: "server-head" }, state, power, manage),
    h("div", { class: "grid" }, consoleP.section, playersP.sections[0]),
    metricsP.section,
    schedulesP.section,
    history.section,
    h("div", { class: "grid" }, playersP.sections.slice(1)),
  );

  function drawHead(): void {
    if (!server) return;
    title.textContent = server.name;
    fill(
      state,
      badge(statusName(server.status)),
      server.statusStale && " (last known; the node is offline)",
      server.pid ? ` · pid ${server.pid}` : "",
      server.status === ServerStatus.RUNNING && server.startedTime ? ` · since ${fmtTime(toDate(server.startedTime))}` : "",
    );
    if (session.can(Role.ADMIN))
      fill(
        manage,
        h("a", { href: `/servers/${id}/edit`, class: "button" }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => void remove() }, "Delete"),
      );
    if (!session.can(Role.OPERATOR)) return;
    const button = (action: Power, label: string, danger = false) =>
      h("button", { type: "button", class: danger ? "danger" : "", disabled: !allowed(server!.status, action), onclick: () => run(action) }, label);
    fill(power, button("start", "Start"), button("stop", "Stop"), button("restart", "Restart"), button("kill", "Kill", true));
  }

  async function run(action: Power): Promise<void> {
    if (!server) return;
    if (
      action === "kill" &&
      !(await dialog({
        title: `Kill ${server.name}?`,
        text: "The process group gets SIGKILL at once: players are dropped and unsaved mission state is lost.",
        confirm: "Kill",
        danger: true,
      }))
    )
      return;
    const calls = {
      start: () => api.servers.startServer({ id }),
      stop: () => api.servers.stopServer({ id }),
      restart: () => api.servers.restartServer({ id }),
      kill: () => api.servers.killServer({ id }),
    };
    for (const b of power.querySelectorAll("button")) b.disabled = true;
    try {
      server = await calls[action]();
      notify(`${server.name}: ${action} requested.`);
    } catch (e) {
      notify(`${action}: ${errorText(e)}`, "error");
    }
    drawHead();
  }

  async function remove(): Promise<void> {
    if (!server) return;
    const name = server.name;
    const ok = await dialog({
      title: `Delete ${name}?`,
      text: "The server is removed from its node and from Languard. Refused while it is running: stop it first.",
      confirm: "Delete",
      danger: true,
    });
    if (!ok) return;
    try {
      await api.servers.deleteServer({ id });
      notify(`Server ${name} deleted.`);
      go("/");
    } catch (e) {
      notify(`Delete: ${errorText(e)}`, "error");
    }
  }

  let events: ServerEvent[] = [];
  let nextEvents = "";
  function drawEvents(): void {
    fill(
      history.body,
      table(
        "Event history",
        ["Time", "Type", "What", "By"],
        events.map((e) => [fmtTime(toDate(e.time)), e.type, e.message, e.actor]),
        "No events yet.",
      ),
      nextEvents && h("button", { type: "button", onclick: () => void loadEvents(true) }, "Load more"),
    );
  }
  async function loadEvents(more = false): Promise<void> {
    try {
      const r = await api.events.listEvents({ serverId: id, pageSize: 50, pageToken: more ? nextEvents : "" });
      events = more ? [...events, ...r.events] : r.events;
      nextEvents = r.nextPageToken;
      drawEvents();
    } catch (e) {
      showError(history.body, "Event history", e);
    }
  }

  async function load(): Promise<void> {
    try {
      server = await api.servers.getServer({ id });
      drawHead();
    } catch (e) {
      fill(state, h("span", { class: "error", role: "alert" }, isCode(e, Code.NotFound) ? "No such server." : errorText(e)));
    }
  }

  const off = feed.on((m) => {
    if (m.type === "resync") {
      void load();
      void loadEvents();
      return;
    }
    if (m.server_id !== Number(id) || !server) return;
    if (m.type === "status") {
      const d = m.data as StatusData;
      server.status = statusFromName(d.status);
      server.pid = d.pid;
      drawHead();
      // Start time and the like come from the server itself.
      if (server.status === ServerStatus.RUNNING) void load();
    } else if (m.type === "event") {
      const d = m.data as EventData;
      // The spec was changed (by someone else, maybe): show the new name.
      if (d.event_type === "spec") void load();
      if (events.some((e) => Number(e.id) === d.id)) return;
      events.unshift(
        create(ServerEventSchema, {
          id: BigInt(d.id),
          serverId: id,
          nodeId: BigInt(m.node_id),
          type: d.event_type,
          message: d.message,
          attributes: d.attributes,
          actor: d.actor,
          time: timestampFromDate(new Date(m.ts)),
        }),
      );
      drawEvents();
    }
  });

  void load();
  void loadEvents();
  return () => {
    off();
    consoleP.stop();
    playersP.stop();
    metricsP.stop();
    schedulesP.stop();
  };
}
