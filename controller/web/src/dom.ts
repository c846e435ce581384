// Small DOM helpers: element building, formatting, dialogs and the notice line.

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, unknown>;

/** Builds an element: `on*` attributes become listeners, `true` a bare attribute, falsy values none. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v as EventListener);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else if (v !== false && v !== null && v !== undefined) {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else if (c !== null && c !== undefined && c !== false) el.append(String(c));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A table with a header row; `rows` are arrays of cells. */
export function table(caption: string, head: string[], rows: Child[][], empty = "None."): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    null,
    h("caption", { class: "sr-only" }, caption),
    h("thead", null, h("tr", null, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, rows.map((r) => h("tr", null, r.map((c) => h("td", null, c))))),
  );
}

export function toDate(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}

export function fmtTime(d: Date | undefined): string {
  return d ? d.toLocaleString() : "—";
}

/** "12 s ago", "3 min ago", ... */
export function fmtAgo(d: Date | undefined): string {
  if (!d) return "never";
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

let ids = 0;

/** A labelled form control, with an optional hint under it (its description, not part of its name). */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  control.id ||= `f-${++ids}`;
  const hintId = hint ? `${control.id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hint && h("small", { class: "hint", id: hintId }, hint));
}

/** A checkbox with its label on the right. */
export function checkbox(label: string, name: string, checked: boolean): HTMLLabelElement {
  return h("label", { class: "check" }, h("input", { type: "checkbox", name, checked }), label);
}

/** The error line of a form (empty until something went wrong). */
export function errorLine(): HTMLParagraphElement {
  return h("p", { class: "error form-error", role: "alert" });
}

interface Field {
  name: string;
  label: string;
  type?: "text" | "password" | "number" | "select";
  value?: string;
  options?: [string, string][];
  required?: boolean;
}

/**
 * A modal dialog. Resolves to the field values when confirmed, null when cancelled.
 * With no fields it is a plain confirmation.
 */
export function dialog(opts: {
  title: string;
  text?: string;
  fields?: Field[];
  confirm: string;
  danger?: boolean;
}): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: "dialog-title" }, opts.title),
      opts.text ? h("p", null, opts.text) : null,
      (opts.fields ?? []).map((f) =>
        h(
          "label",
          null,
          f.label,
          f.type === "select"
            ? h("select", { name: f.name }, (f.options ?? []).map(([v, l]) => h("option", { value: v, selected: v === f.value }, l)))
            : h("input", { name: f.name, type: f.type ?? "text", value: f.value ?? "", required: f.required ?? false, autocomplete: "off" }),
        ),
      ),
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "button", value: "cancel", onclick: () => dlg.close("cancel") }, "Cancel"),
        h("button", { type: "submit", value: "ok", class: opts.danger ? "danger" : "primary" }, opts.confirm),
      ),
    );
    const dlg = h("dialog", { "aria-labelledby": "dialog-title" }, form);
    dlg.addEventListener("close", () => {
      const values = Object.fromEntries([...new FormData(form)].map(([k, v]) => [k, String(v)]));
      dlg.remove();
      resolve(dlg.returnValue === "ok" ? values : null);
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Shows a short message in the page's live region (announced by screen readers). */
export function notify(message: string, kind: "ok" | "error" = "ok"): void {
  const region = document.getElementById("notice");
  if (!region) return;
  const item = h("p", { class: `notice ${kind}` }, message);
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
