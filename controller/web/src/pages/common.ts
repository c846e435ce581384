// Pieces shared by the pages: status badges, panels, the "not available yet" state, paging.

import { errorText, isUnimplemented } from "../api";
import { h, fill } from "../dom";
import { ServerStatus } from "../gen/languard/v1/common_pb";

/** "running", "stopped", ...: the API sends the enum, the WebSocket these names. */
export function statusName(s: ServerStatus): string {
  return s === ServerStatus.UNSPECIFIED ? "unknown" : ServerStatus[s].toLowerCase();
}

export function statusFromName(name: string): ServerStatus {
  return ServerStatus[name.toUpperCase() as keyof typeof ServerStatus] ?? ServerStatus.UNSPECIFIED;
}

export function badge(text: string, kind = text): HTMLElement {
  return h("span", { class: `badge ${kind}` }, text);
}

/** A titled section; returns it and its body. */
export function panel(id: string, title: string, ...tools: Node[]): { section: HTMLElement; body: HTMLElement } {
  const body = h("div", { class: "panel-body", id: `${id}-body` });
  const section = h(
    "section",
    { class: "panel", id, "aria-labelledby": `${id}-title` },
    h("div", { class: "panel-head" }, h("h2", { id: `${id}-title` }, title), tools),
    body,
  );
  return { section, body };
}

/** Shows why a panel has nothing: "not available yet" when the controller lacks the service. */
export function showError(body: HTMLElement, what: string, e: unknown): void {
  fill(
    body,
    isUnimplemented(e)
      ? h("p", { class: "unavailable", role: "status" }, `${what}: not available yet on this controller.`)
      : h("p", { class: "error", role: "alert" }, `${what}: ${errorText(e)}`),
  );
}

/** Reads every page of a list call. */
export async function listAll<T>(page: (token: string) => Promise<{ items: T[]; next: string }>): Promise<T[]> {
  const all: T[] = [];
  let token = "";
  do {
    const r = await page(token);
    all.push(...r.items);
    token = r.next;
  } while (token);
  return all;
}
