// The public API over grpc-web, on the page's own origin, with the caller's access token attached.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "./gen/languard/v1/auth_pb";
import { EventService } from "./gen/languard/v1/events_pb";
import { LogService } from "./gen/languard/v1/logs_pb";
import { MetricService } from "./gen/languard/v1/metrics_pb";
import { NodeService } from "./gen/languard/v1/nodes_pb";
import { PlayerService } from "./gen/languard/v1/players_pb";
import { ScheduleService } from "./gen/languard/v1/schedules_pb";
import { ServerService } from "./gen/languard/v1/servers_pb";
import { UserService } from "./gen/languard/v1/users_pb";

interface AuthHooks {
  /** A valid access token (refreshed first if it is about to expire), or undefined when logged out. */
  token(): Promise<string | undefined>;
  /** Called when the controller rejected the token: the session is over. */
  rejected(): void;
}

let hooks: AuthHooks = { token: async () => undefined, rejected: () => {} };

export function setAuthHooks(h: AuthHooks): void {
  hooks = h;
}

const withToken: Interceptor = (next) => async (req) => {
  // Login and Refresh carry no token (and must not wait for a refresh).
  const anonymous = req.service.typeName === AuthService.typeName && (req.method.name === "Login" || req.method.name === "Refresh");
  const token = anonymous ? undefined : await hooks.token();
  if (token) req.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(req);
  } catch (e) {
    if (token && isCode(e, Code.Unauthenticated)) hooks.rejected();
    throw e;
  }
};

const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors: [withToken] });

export const api = {
  auth: createClient(AuthService, transport),
  users: createClient(UserService, transport),
  nodes: createClient(NodeService, transport),
  servers: createClient(ServerService, transport),
  events: createClient(EventService, transport),
  logs: createClient(LogService, transport),
  players: createClient(PlayerService, transport),
  metrics: createClient(MetricService, transport),
  schedules: createClient(ScheduleService, transport),
};

export function isCode(e: unknown, code: Code): boolean {
  return ConnectError.from(e).code === code;
}

/** The service is not implemented by this controller (yet). */
export function isUnimplemented(e: unknown): boolean {
  return isCode(e, Code.Unimplemented);
}

/** The message of an error, without the "[code]" prefix, for people. */
export function errorText(e: unknown): string {
  const err = ConnectError.from(e);
  return err.rawMessage || Code[err.code] || "request failed";
}
