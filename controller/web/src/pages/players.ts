// Players on a server (live), their play sessions, and the server's BattlEye bans, with the
// RCon actions an operator may take: kick, ban, message, remove a ban.

import { api, errorText, isUnimplemented } from "../api";
import { dialog, fill, fmtTime, h, notify, table, toDate } from "../dom";
import { feed, type PlayerData } from "../feed";
import { Role } from "../gen/languard/v1/common_pb";
import type { Player } from "../gen/languard/v1/players_pb";
import { session } from "../session";
import { panel, showError } from "./common";

interface Row {
  slot: number;
  name: string;
  guid: string;
  ping: number;
  inLobby: boolean;
  joined?: Date;
}

const fromApi = (p: Player): Row => ({
  slot: p.slot,
  name: p.name,
  guid: p.guid,
  ping: p.ping,
  inLobby: p.inLobby,
  joined: toDate(p.joinedTime),
});
const fromFeed = (p: PlayerData): Row => ({
  slot: p.slot,
  name: p.name,
  guid: p.guid,
  ping: p.ping,
  inLobby: p.in_lobby,
  joined: new Date(p.joined_time),
});

/** Runs an RCon action and reports its outcome. */
async function act(what: string, call: () => Promise<{ output: string }>): Promise<boolean> {
  try {
    const r = await call();
    notify(r.output ? `${what}: ${r.output}` : `${what}: done.`);
    return true;
  } catch (e) {
    notify(`${what}: ${isUnimplemented(e) ? "not available yet" : errorText(e)}`, "error");
    return false;
  }
}

export function playerPanels(serverId: bigint): { sections: HTMLElement[]; stop: () => void } {
  const operator = session.can(Role.OPERATOR);
  const messageAll = h("button", { type: "button", hidden: !operator }, "Message everyone");
  const players = panel("players", "Players online", messageAll);
  const sessions = panel("sessions", "Session history");
  const refreshBans = h("button", { type: "button" }, "Refresh");
  const banGuid = h("button", { type: "button", hidden: !operator }, "Ban a GUID");
  const bans = panel("bans", "Bans", banGuid, refreshBans);
  let available = true;

  const ref = (r: Row) => ({ guid: r.guid, slot: r.slot });

  function drawPlayers(rows: Row[]): void {
    fill(
      players.body,
      table(
        "Players online",
        ["#", "Name", "GUID", "Ping", "Joined", ...(operator ? ["Actions"] : [])],
        rows.map((r) => [
          String(r.slot),
          [r.name, r.inLobby && h("small", null, " (lobby)")],
          r.guid ? h("code", { title: r.guid }, r.guid.slice(0, 8) + "…") : "—",
          r.ping < 0 ? "—" : `${r.ping} ms`,
          fmtTime(r.joined),
          operator &&
            h(
              "div",
              { class: "actions" },
              h("button", { type: "button", onclick: () => kick(r), "aria-label": `Kick ${r.name}` }, "Kick"),
              h("button", { type: "button", onclick: () => ban(r), "aria-label": `Ban ${r.name}` }, "Ban"),
              h("button", { type: "button", onclick: () => message(r), "aria-label": `Message ${r.name}` }, "Message"),
            ),
        ]),
        "Nobody is on.",
      ),
    );
  }

  async function kick(r: Row): Promise<void> {
    const v = await dialog({
      title: `Kick ${r.name}?`,
      fields: [{ name: "reason", label: "Reason (shown to the player)" }],
      confirm: "Kick",
      danger: true,
    });
    if (v) await act(`Kick ${r.name}`, () => api.players.kickPlayer({ serverId, player: ref(r), reason: v.reason }));
  }

  async function ban(r: Row): Promise<void> {
    const v = await dialog({
      title: `Ban ${r.name}?`,
      fields: [
        { name: "minutes", label: "Minutes (0 = permanent)", type: "number", value: "0" },
        { name: "reason", label: "Reason" },
      ],
      confirm: "Ban",
      danger: true,
    });
    if (v && (await act(`Ban ${r.name}`, () => api.players.banPlayer({ serverId, player: ref(r), minutes: Number(v.minutes) || 0, reason: v.reason }))))
      void loadBans();
  }

  async function message(r?: Row): Promise<void> {
    const v = await dialog({
      title: r ? `Message ${r.name}` : "Message everyone",
      fields: [{ name: "text", label: "Message", required: true }],
      confirm: "Send",
    });
    if (v) await act("Message", () => api.players.sendMessage({ serverId, text: v.text, player: r && ref(r) }));
  }

  async function loadPlayers(): Promise<void> {
    try {
      drawPlayers((await api.players.listPlayers({ serverId })).players.map(fromApi));
    } catch (e) {
      available = !isUnimplemented(e);
      messageAll.hidden = true;
      showError(players.body, "Players", e);
    }
  }

  async function loadSessions(): Promise<void> {
    try {
      const r = await api.players.listPlayerSessions({ serverId, pageSize: 50 });
      fill(
        sessions.body,
        table(
          "Session history",
          ["Name", "GUID", "Joined", "Left"],
          r.sessions.map((s) => [s.name, s.guid ? h("code", null, s.guid) : "—", fmtTime(toDate(s.joinedTime)), s.leftTime ? fmtTime(toDate(s.leftTime)) : "on now"]),
          "No sessions yet.",
        ),
      );
    } catch (e) {
      showError(sessions.body, "Session history", e);
    }
  }

  async function loadBans(): Promise<void> {
    try {
      // Every page: a list longer than one page is read whole.
      const r = { bans: [] as Awaited<ReturnType<typeof api.players.listBans>>["bans"] };
      let pageToken = "";
      do {
        const page = await api.players.listBans({ serverId, pageToken });
        r.bans.push(...page.bans);
        pageToken = page.nextPageToken;
      } while (pageToken);
      fill(
        bans.body,
        table(
          "Bans",
          ["#", "Target", "Kind", "Time left", "Reason", ...(operator ? [""] : [])],
          r.bans.map((b) => [
            String(b.number),
            h("code", null, b.target),
            b.ipBan ? "IP" : "GUID",
            b.minutesLeft < 0n ? "permanent" : b.minutesLeft === 0n ? "expired" : `${b.minutesLeft} min`,
            b.reason,
            operator &&
              h(
                "button",
                {
                  type: "button",
                  "aria-label": `Remove ban ${b.number}`,
                  onclick: async () => {
                    const ok = await dialog({ title: `Remove ban #${b.number}?`, text: `Target: ${b.target}`, confirm: "Remove" });
                    if (ok && (await act(`Remove ban #${b.number}`, () => api.players.removeBan({ serverId, number: b.number })))) void loadBans();
                  },
                },
                "Remove",
              ),
          ]),
          "No bans.",
        ),
      );
    } catch (e) {
      showError(bans.body, "Bans", e);
    }
  }

  messageAll.addEventListener("click", () => void message());
  refreshBans.addEventListener("click", () => void loadBans());
  banGuid.addEventListener("click", async () => {
    const v = await dialog({
      title: "Ban a GUID",
      fields: [
        { name: "guid", label: "BattlEye GUID", required: true },
        { name: "minutes", label: "Minutes (0 = permanent)", type: "number", value: "0" },
        { name: "reason", label: "Reason" },
      ],
      confirm: "Ban",
      danger: true,
    });
    if (v && (await act("Ban", () => api.players.banPlayer({ serverId, player: { guid: v.guid.trim() }, minutes: Number(v.minutes) || 0, reason: v.reason }))))
      void loadBans();
  });

  const off = feed.on((m) => {
    if (m.type === "resync") {
      void loadPlayers();
      void loadSessions();
    }
    if (m.type !== "players" || m.server_id !== Number(serverId) || !available) return;
    drawPlayers((m.data as { players: PlayerData[] }).players.map(fromFeed));
    void loadSessions();
  });
  void loadPlayers();
  void loadSessions();
  void loadBans();
  return { sections: [players.section, sessions.section, bans.section], stop: off };
}
