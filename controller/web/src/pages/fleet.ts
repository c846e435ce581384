// The fleet at a glance: nodes and servers, kept current by the live feed.

import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { api, isUnimplemented } from "../api";
import { fill, fmtAgo, fmtBytes, fmtTime, h, table, toDate } from "../dom";
import { feed, type EventData, type PlayerData, type StatusData } from "../feed";
import { Role, ServerStatus } from "../gen/languard/v1/common_pb";
import type { Node } from "../gen/languard/v1/nodes_pb";
import type { Server } from "../gen/languard/v1/servers_pb";
import type { PageContext } from "../main";
import { session } from "../session";
import { badge, listAll, panel, showError, statusFromName, statusName } from "./common";

interface Usage {
  cpu: number;
  memory: number;
}

/** A host's load: CPU of the whole host in percent, memory in bytes, the one-minute load average. */
interface HostLoad {
  cpu: number;
  used: number;
  total: number;
  load1?: number;
  /** When it was sampled, ms since the epoch. */
  time: number;
}

function loadFromNode(n: Node): HostLoad | undefined {
  const l = n.load;
  return (
    l && {
      cpu: l.cpuPercent,
      used: Number(l.memoryUsedBytes),
      total: Number(l.memoryTotalBytes),
      load1: l.load1,
      time: l.sampleTime ? timestampDate(l.sampleTime).getTime() : 0,
    }
  );
}

/** Reads a server's `metrics` feed message: CPU in percent of one core, resident memory in bytes. */
function usageFromFeed(data: unknown): Usage | undefined {
  const d = data as { cpu_percent?: unknown; rss_bytes?: unknown; memory_bytes?: unknown };
  const memory = d.rss_bytes ?? d.memory_bytes;
  return typeof d.cpu_percent === "number" && typeof memory === "number" ? { cpu: d.cpu_percent, memory } : undefined;
}

export function fleetPage({ main }: PageContext): () => void {
  const nodesPanel = panel("nodes", "Nodes");
  const serversPanel = panel(
    "servers",
    "Servers",
    ...(session.can(Role.ADMIN) ? [h("a", { href: "/servers/new", class: "button primary" }, "New server")] : []),
  );
  fill(main, h("h1", null, "Fleet"), nodesPanel.section, serversPanel.section);

  let nodes: Node[] = [];
  let servers: Server[] = [];
  const players = new Map<bigint, number>();
  const usage = new Map<bigint, Usage>();
  // Host load by node: from Node.load, then live from the feed's node samples (server_id 0).
  const hostLoad = new Map<bigint, HostLoad>();
  // undefined: not asked yet; false: the controller does not implement the service.
  let playersAvailable: boolean | undefined;
  let metricsAvailable: boolean | undefined;

  const loadNodes = async () => {
    nodes = await listAll(async (t) => {
      const r = await api.nodes.listNodes({ pageSize: 500, pageToken: t });
      return { items: r.nodes, next: r.nextPageToken };
    });
    for (const n of nodes) {
      const l = loadFromNode(n);
      // The feed's samples carry no load average: keep the newest CPU and memory, take load1 here.
      const live = hostLoad.get(n.id);
      if (l) hostLoad.set(n.id, live && live.time > l.time ? { ...live, load1: l.load1 } : l);
    }
  };
  const loadServers = async () => {
    servers = await listAll(async (t) => {
      const r = await api.servers.listServers({ pageSize: 500, pageToken: t });
      return { items: r.servers, next: r.nextPageToken };
    });
  };
  // Players and resource use are optional extras: one call per server, stopped at UNIMPLEMENTED.
  const loadExtras = async () => {
    for (const s of servers) {
      if (playersAvailable !== false) {
        try {
          players.set(s.id, (await api.players.listPlayers({ serverId: s.id })).players.length);
          playersAvailable = true;
        } catch (e) {
          if (isUnimplemented(e)) playersAvailable = false;
        }
      }
      if (metricsAvailable !== false) {
        try {
          const r = await api.metrics.listMetrics({
            serverId: s.id,
            startTime: timestampFromDate(new Date(Date.now() - 10 * 60_000)),
          });
          const last = r.points.at(-1);
          if (last) usage.set(s.id, { cpu: last.cpuPercentAvg, memory: last.memoryBytesAvg });
          metricsAvailable = true;
        } catch (e) {
          if (isUnimplemented(e)) metricsAvailable = false;
        }
      }
    }
    draw();
  };

  const dash = (available: boolean | undefined) =>
    h("span", { title: available === false ? "not available yet" : "no data" }, "—");

  function draw(): void {
    const nodeName = new Map(nodes.map((n) => [n.id, n.name]));
    fill(
      nodesPanel.body,
      table(
        "Nodes",
        ["Name", "Status", "Last seen", "Host", "CPU", "Memory", "Load", "Agent"],
        nodes.map((n) => {
          const l = n.online ? hostLoad.get(n.id) : undefined;
          return [
            n.name,
            badge(n.online ? "online" : "offline"),
            h("time", { title: fmtTime(toDate(n.lastSeenTime)) }, fmtAgo(toDate(n.lastSeenTime))),
            n.hostname || "—",
            h("span", { "data-testid": "node-cpu" }, l ? `${l.cpu.toFixed(0)} %` : "—"),
            h("span", { "data-testid": "node-memory" }, l && l.total ? `${fmtBytes(l.used)} / ${fmtBytes(l.total)}` : "—"),
            h("span", { "data-testid": "node-load" }, l?.load1 !== undefined ? l.load1.toFixed(2) : "—"),
            n.agentVersion || "—",
          ];
        }),
        "No nodes yet.",
      ),
    );
    fill(
      serversPanel.body,
      table(
        "Servers",
        ["Name", "Node", "Status", "Players", "CPU", "Memory", "Running since"],
        servers.map((s) => {
          const u = usage.get(s.id);
          const running = s.status === ServerStatus.RUNNING;
          return [
            h("a", { href: `/servers/${s.id}` }, s.name),
            nodeName.get(s.nodeId) ?? `#${s.nodeId}`,
            [badge(statusName(s.status)), s.statusStale && h("small", { title: "The node is offline" }, " (stale)")],
            players.has(s.id) ? String(players.get(s.id)) : dash(playersAvailable),
            u && running ? `${u.cpu.toFixed(0)} %` : dash(metricsAvailable),
            u && running ? fmtBytes(u.memory) : dash(metricsAvailable),
            running ? fmtTime(toDate(s.startedTime)) : "—",
          ];
        }),
        "No servers yet.",
      ),
    );
  }

  async function loadAll(): Promise<void> {
    try {
      await Promise.all([loadNodes(), loadServers()]);
      draw();
      await loadExtras();
    } catch (e) {
      showError(serversPanel.body, "Servers", e);
    }
  }

  const off = feed.on((m) => {
    const server = servers.find((s) => Number(s.id) === m.server_id);
    switch (m.type) {
      case "status":
        if (!server) return void loadServers().then(draw, () => {});
        server.status = statusFromName((m.data as StatusData).status);
        server.pid = (m.data as StatusData).pid;
        if (server.status === ServerStatus.RUNNING) server.startedTime = timestampFromDate(new Date(m.ts));
        break;
      case "event": {
        const type = (m.data as EventData).event_type;
        const node = nodes.find((n) => Number(n.id) === m.node_id);
        if (node && (type === "node_online" || type === "node_offline")) {
          node.online = type === "node_online";
          node.lastSeenTime = timestampFromDate(new Date(m.ts));
          for (const s of servers) if (s.nodeId === node.id) s.statusStale = !node.online;
        } else if (type === "spec") {
          return void loadServers().then(draw, () => {});
        }
        break;
      }
      case "players":
        if (!server) return;
        players.set(server.id, (m.data as { players: PlayerData[] }).players.length);
        break;
      case "metrics": {
        if (!m.server_id) {
          const d = m.data as { cpu_percent?: unknown; rss_bytes?: unknown; memory_total_bytes?: unknown };
          const node = nodes.find((n) => Number(n.id) === m.node_id);
          if (!node || typeof d.cpu_percent !== "number" || typeof d.rss_bytes !== "number") return;
          const before = hostLoad.get(node.id);
          const total = typeof d.memory_total_bytes === "number" ? d.memory_total_bytes : (before?.total ?? 0);
          hostLoad.set(node.id, { cpu: d.cpu_percent, used: d.rss_bytes, total, load1: before?.load1, time: Date.parse(m.ts) || Date.now() });
          break;
        }
        const u = usageFromFeed(m.data);
        if (!server || !u) return;
        usage.set(server.id, u);
        break;
      }
      case "resync":
        return void loadAll();
      default:
        return;
    }
    draw();
  });
  // Heartbeats move "last seen" and the load average has no feed message: re-read the nodes now and then.
  const timer = setInterval(() => void loadNodes().then(draw, () => {}), 15_000);
  void loadAll();
  return () => {
    off();
    clearInterval(timer);
  };
}
