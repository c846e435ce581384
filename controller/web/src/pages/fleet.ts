// The fleet at a glance: nodes and servers, kept current by the live feed.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { api, isUnimplemented } from "../api";
import { fill, fmtAgo, fmtBytes, fmtTime, h, table, toDate } from "../dom";
import { feed, type EventData, type PlayerData, type StatusData } from "../feed";
import { ServerStatus } from "../gen/languard/v1/common_pb";
import type { Node } from "../gen/languard/v1/nodes_pb";
import type { Server } from "../gen/languard/v1/servers_pb";
import type { PageContext } from "../main";
import { badge, listAll, panel, showError, statusFromName, statusName } from "./common";

interface Usage {
  cpu: number;
  memory: number;
}

/** Reads a server's `metrics` feed message: CPU in percent of one core, resident memory in bytes. */
function usageFromFeed(data: unknown): Usage | undefined {
  const d = data as { cpu_percent?: unknown; rss_bytes?: unknown; memory_bytes?: unknown };
  const memory = d.rss_bytes ?? d.memory_bytes;
  return typeof d.cpu_percent === "number" && typeof memory === "number" ? { cpu: d.cpu_percent, memory } : undefined;
}

export function fleetPage({ main }: PageContext): () => void {
  const nodesPanel = panel("nodes", "Nodes");
  const serversPanel = panel("servers", "Servers");
  fill(main, h("h1", null, "Fleet"), nodesPanel.section, serversPanel.section);

  let nodes: Node[] = [];
  let servers: Server[] = [];
  const players = new Map<bigint, number>();
  const usage = new Map<bigint, Usage>();
  // undefined: not asked yet; false: the controller does not implement the service.
  let playersAvailable: boolean | undefined;
  let metricsAvailable: boolean | undefined;

  const loadNodes = async () => {
    nodes = await listAll(async (t) => {
      const r = await api.nodes.listNodes({ pageSize: 500, pageToken: t });
      return { items: r.nodes, next: r.nextPageToken };
    });
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
        ["Name", "Status", "Last seen", "Host", "Agent"],
        nodes.map((n) => [
          n.name,
          badge(n.online ? "online" : "offline"),
          h("time", { title: fmtTime(toDate(n.lastSeenTime)) }, fmtAgo(toDate(n.lastSeenTime))),
          n.hostname || "—",
          n.agentVersion || "—",
        ]),
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
  // Heartbeats move "last seen" without a feed message: re-read the nodes now and then.
  const timer = setInterval(() => void loadNodes().then(draw, () => {}), 30_000);
  void loadAll();
  return () => {
    off();
    clearInterval(timer);
  };
}
