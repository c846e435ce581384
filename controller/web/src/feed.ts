// The live feed: one WebSocket (/ws) for every server while logged in, reconnecting with backoff.
// Pages subscribe to its messages; after a reconnect or a "lagged" message they get a "resync"
// message and re-read what they show, since messages may have been missed.

import { session } from "./session";

export interface FeedMessage {
  type: "hello" | "status" | "event" | "log" | "players" | "lagged" | "metrics" | "resync";
  server_id: number;
  node_id: number;
  ts: string;
  /** Its shape depends on `type`: StatusData, LogData, {players: PlayerData[]}, EventData, ... */
  data: unknown;
}

export interface StatusData {
  status: string;
  previous: string;
  pid: number;
  reason: string;
}
export interface LogData {
  id: number;
  level: string;
  kind: string;
  text: string;
  time: string;
}
export interface PlayerData {
  slot: number;
  name: string;
  guid: string;
  verified: boolean;
  address: string;
  ping: number;
  in_lobby: boolean;
  joined_time: string;
}
export interface EventData {
  id: number;
  event_type: string;
  message: string;
  attributes: Record<string, string>;
  actor: string;
}

type Listener = (m: FeedMessage) => void;
type State = "connecting" | "live" | "offline";

const listeners = new Set<Listener>();
let stateListener: (s: State) => void = () => {};
let socket: WebSocket | undefined;
let retry: number | undefined;
let delay = 1000;
let connectedBefore = false;

function emit(m: FeedMessage): void {
  for (const l of listeners) l(m);
}

function resync(): void {
  emit({ type: "resync", server_id: 0, node_id: 0, ts: new Date().toISOString(), data: {} });
}

function connect(): void {
  const token = session.token;
  if (!token) return;
  stateListener("connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  socket = ws;
  ws.onmessage = (ev) => {
    const m = JSON.parse(String(ev.data)) as FeedMessage;
    if (m.type === "hello") {
      delay = 1000;
      stateListener("live");
      if (connectedBefore) resync();
      connectedBefore = true;
    } else if (m.type === "lagged") {
      resync();
    } else {
      emit(m);
    }
  };
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    socket = undefined;
    stateListener("offline");
    if (ev.code === 4001) {
      // The token was refused: refresh it (which ends the session if that fails too), then retry.
      session.refresh().then(schedule, () => {});
    } else {
      schedule();
    }
  };
}

function schedule(): void {
  clearTimeout(retry);
  retry = window.setTimeout(connect, delay);
  delay = Math.min(delay * 2, 15_000);
}

export const feed = {
  start(onState: (s: State) => void): void {
    stateListener = onState;
    connectedBefore = false;
    delay = 1000;
    connect();
  },
  stop(): void {
    clearTimeout(retry);
    const ws = socket;
    socket = undefined;
    ws?.close(1000);
  },
  /** Adds a listener; returns the function that removes it. */
  on(l: Listener): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};
