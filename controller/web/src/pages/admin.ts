// Admin pages: users and roles (UserService), nodes and their enrollment tokens (NodeService).

import { api, errorText } from "../api";
import { dialog, fill, fmtAgo, fmtTime, h, notify, table, toDate } from "../dom";
import { Role } from "../gen/languard/v1/common_pb";
import type { CreateNodeResponse } from "../gen/languard/v1/nodes_pb";
import type { PageContext } from "../main";
import { session } from "../session";
import { badge, listAll, panel, showError } from "./common";

const ROLES: [string, string][] = [
  [String(Role.VIEWER), "viewer"],
  [String(Role.OPERATOR), "operator"],
  [String(Role.ADMIN), "admin"],
];

/** A form whose submit runs `action` with its values and resets it on success. */
function form(label: string, fields: HTMLElement[], submit: string, action: (v: FormData) => Promise<void>): HTMLFormElement {
  const f = h("form", { class: "inline", "aria-label": label }, fields, h("button", { type: "submit", class: "primary" }, submit));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await action(new FormData(f));
      f.reset();
    } catch (e) {
      notify(errorText(e), "error");
    }
  });
  return f;
}

export function usersPage({ main }: PageContext): void {
  const list = panel("users", "Users");
  const create = form(
    "New user",
    [
      h("label", null, "Username", h("input", { name: "username", required: true, autocomplete: "off" })),
      h("label", null, "Password", h("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" })),
      h("label", null, "Role", h("select", { name: "role" }, ROLES.map(([v, l]) => h("option", { value: v }, l)))),
    ],
    "Create user",
    async (v) => {
      const u = await api.users.createUser({ username: String(v.get("username")), password: String(v.get("password")), role: Number(v.get("role")) });
      notify(`User ${u.username} created.`);
      await load();
    },
  );
  const newUser = panel("new-user", "New user");
  newUser.body.append(create);
  fill(main, h("h1", null, "Users"), newUser.section, list.section);

  async function load(): Promise<void> {
    try {
      const users = await listAll(async (t) => {
        const r = await api.users.listUsers({ pageSize: 500, pageToken: t });
        return { items: r.users, next: r.nextPageToken };
      });
      const me = session.user?.username;
      fill(
        list.body,
        table(
          "Users",
          ["Id", "Username", "Role", "Created", ""],
          users.map((u) => [
            String(u.id),
            u.username,
            h(
              "select",
              {
                "aria-label": `Role of ${u.username}`,
                onchange: async (ev: Event) => {
                  const role = Number((ev.target as HTMLSelectElement).value) as Role;
                  try {
                    await api.users.updateUser({ id: u.id, role });
                    notify(`${u.username} is now ${Role[role].toLowerCase()}.`);
                  } catch (e) {
                    notify(errorText(e), "error");
                    void load();
                  }
                },
              },
              ROLES.map(([v, l]) => h("option", { value: v, selected: Number(v) === u.role }, l)),
            ),
            fmtTime(toDate(u.createTime)),
            h(
              "div",
              { class: "actions" },
              h(
                "button",
                {
                  type: "button",
                  onclick: async () => {
                    const v = await dialog({
                      title: `New password for ${u.username}`,
                      text: "Their refresh tokens are revoked: they must log in again.",
                      fields: [{ name: "password", label: "Password (at least 8 characters)", type: "password", required: true }],
                      confirm: "Set password",
                    });
                    if (!v) return;
                    try {
                      await api.users.updateUser({ id: u.id, password: v.password });
                      notify(`Password of ${u.username} changed.`);
                    } catch (e) {
                      notify(errorText(e), "error");
                    }
                  },
                },
                "Set password",
              ),
              u.username !== me &&
                h(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    onclick: async () => {
                      if (!(await dialog({ title: `Delete ${u.username}?`, confirm: "Delete", danger: true }))) return;
                      try {
                        await api.users.deleteUser({ id: u.id });
                        notify(`${u.username} deleted.`);
                        await load();
                      } catch (e) {
                        notify(errorText(e), "error");
                      }
                    },
                  },
                  "Delete",
                ),
            ),
          ]),
        ),
      );
    } catch (e) {
      showError(list.body, "Users", e);
    }
  }
  void load();
}

export function adminNodesPage({ main }: PageContext): void {
  const list = panel("node-list", "Nodes");
  const enrol = panel("new-node", "New node");
  const token = h("div", { class: "token", role: "status" });

  function showToken(r: CreateNodeResponse): void {
    const url = location.origin;
    fill(
      token,
      h("p", null, `Token of node ${r.node?.name} — shown only now; store it safely:`),
      h("code", { class: "secret" }, r.token),
      h("p", null, "Start the agent on that host with:"),
      h("pre", null, `languard-agent --controller-url ${url} --node-token ${r.token} --state-dir /var/lib/languard-agent`),
    );
  }

  enrol.body.append(
    form(
      "New node",
      [h("label", null, "Name", h("input", { name: "name", required: true, autocomplete: "off" }))],
      "Create node",
      async (v) => {
        showToken(await api.nodes.createNode({ name: String(v.get("name")) }));
        await load();
      },
    ),
    token,
  );
  fill(main, h("h1", null, "Nodes"), enrol.section, list.section);

  async function load(): Promise<void> {
    try {
      const nodes = await listAll(async (t) => {
        const r = await api.nodes.listNodes({ pageSize: 500, pageToken: t });
        return { items: r.nodes, next: r.nextPageToken };
      });
      fill(
        list.body,
        table(
          "Nodes",
          ["Id", "Name", "Status", "Last seen", "Host", "OS", "Agent", ""],
          nodes.map((n) => [
            String(n.id),
            n.name,
            badge(n.online ? "online" : "offline"),
            fmtAgo(toDate(n.lastSeenTime)),
            n.hostname || "—",
            n.os || "—",
            n.agentVersion || "—",
            h(
              "div",
              { class: "actions" },
              h(
                "button",
                {
                  type: "button",
                  onclick: async () => {
                    const ok = await dialog({
                      title: `New token for ${n.name}?`,
                      text: "The current token stops working at once and the agent is disconnected until it is given the new one.",
                      confirm: "Rotate token",
                      danger: true,
                    });
                    if (!ok) return;
                    try {
                      showToken(await api.nodes.rotateNodeToken({ id: n.id }));
                    } catch (e) {
                      notify(errorText(e), "error");
                    }
                  },
                },
                "Rotate token",
              ),
              h(
                "button",
                {
                  type: "button",
                  class: "danger",
                  onclick: async () => {
                    if (!(await dialog({ title: `Delete node ${n.name}?`, text: "Refused while servers still belong to it.", confirm: "Delete", danger: true }))) return;
                    try {
                      await api.nodes.deleteNode({ id: n.id });
                      notify(`Node ${n.name} deleted.`);
                      await load();
                    } catch (e) {
                      notify(errorText(e), "error");
                    }
                  },
                },
                "Delete",
              ),
            ),
          ]),
          "No nodes yet.",
        ),
      );
    } catch (e) {
      showError(list.body, "Nodes", e);
    }
  }
  void load();
}
