// Creating a server and changing its spec (admin): ServerService.CreateServer, and UpdateServer with
// an update_mask naming only the fields that were changed here. Arma 3 servers get their adapter's
// fields; servers of a declared adapter a key/value editor for the settings it names.

import { create } from "@bufbuild/protobuf";
import { api, errorText, isUnimplemented } from "../api";
import { checkbox, errorLine, field, fill, h, notify } from "../dom";
import type { Node } from "../gen/languard/v1/nodes_pb";
import { Arma3SettingsSchema, GameTypeSchema, type GameType, type Server } from "../gen/languard/v1/servers_pb";
import type { PageContext } from "../main";
import { listAll, showError } from "./common";

/** What a controller without ListGameTypes knows: the built-in adapter. */
const ARMA3 = create(GameTypeSchema, { name: "arma3", displayName: "Arma 3", source: "builtin", hasRcon: true });

const list = (text: string, sep: string | RegExp) =>
  text
    .split(sep)
    .map((x) => x.trim())
    .filter(Boolean);

/** Map → a string that is equal for equal maps (to tell whether settings changed). */
const canon = (m: Record<string, string>) => JSON.stringify(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)));

export function newServerPage(ctx: PageContext): void {
  void serverForm(ctx);
}

export function editServerPage(ctx: PageContext, idParam: string): void {
  void serverForm(ctx, BigInt(idParam));
}

/** The key/value rows of a declared adapter's settings: its declared names first, then any others. */
function settingsEditor(type: GameType, values: Record<string, string>): { el: HTMLElement; read: () => Record<string, string> } {
  const rows = h("div", { class: "kv" });
  const row = (key: string, value: string, declared: boolean) => {
    const required = type.requiredSettings.includes(key);
    const r = h(
      "div",
      { class: "row kv-row" },
      h("input", { class: "kv-key", "aria-label": "Setting name", value: key, readonly: declared, required: !declared, placeholder: "name" }),
      h("input", {
        class: "kv-value",
        "aria-label": `Value of ${key || "the setting"}`,
        value,
        required,
        placeholder: required ? "required" : "",
      }),
      !declared && h("button", { type: "button", onclick: () => r.remove() }, "Remove"),
    );
    rows.append(r);
  };
  const names = [...type.requiredSettings, ...type.settings.filter((n) => !type.requiredSettings.includes(n))];
  for (const n of names) row(n, values[n] ?? "", true);
  for (const [k, v] of Object.entries(values)) if (!names.includes(k)) row(k, v, false);
  const el = h(
    "fieldset",
    null,
    h("legend", null, `${type.displayName || type.name} settings`),
    h(
      "p",
      { class: "hint" },
      names.length
        ? `The adapter uses: ${names.join(", ")}${type.requiredSettings.length ? `; required: ${type.requiredSettings.join(", ")}` : ""}. Empty values are left out.`
        : "The adapter declares no settings.",
    ),
    rows,
    h("button", { type: "button", onclick: () => row("", "", false) }, "Add setting"),
  );
  const read = () => {
    const out: Record<string, string> = {};
    for (const r of rows.children) {
      const k = (r.querySelector(".kv-key") as HTMLInputElement).value.trim();
      const v = (r.querySelector(".kv-value") as HTMLInputElement).value;
      if (k && v !== "") out[k] = v;
    }
    return out;
  };
  return { el, read };
}

async function serverForm({ main, go }: PageContext, id?: bigint): Promise<void> {
  const body = h("div", null, h("p", { class: "loading" }, "Loading…"));
  fill(
    main,
    h("p", { class: "crumbs" }, h("a", { href: "/" }, "Fleet"), " / ", id !== undefined && [h("a", { href: `/servers/${id}` }, `Server #${id}`), " / "]),
    h("h1", null, id === undefined ? "New server" : "Edit server"),
    body,
  );

  let nodes: Node[];
  let types: GameType[];
  let server: Server | undefined;
  try {
    [nodes, types, server] = await Promise.all([
      listAll(async (t) => {
        const r = await api.nodes.listNodes({ pageSize: 500, pageToken: t });
        return { items: r.nodes, next: r.nextPageToken };
      }),
      api.servers.listGameTypes({}).then(
        (r) => (r.gameTypes.length ? r.gameTypes : [ARMA3]),
        (e) => {
          if (isUnimplemented(e)) return [ARMA3];
          throw e;
        },
      ),
      id === undefined ? undefined : api.servers.getServer({ id }),
    ]);
  } catch (e) {
    showError(body, id === undefined ? "New server" : "Server", e);
    return;
  }
  const s = server;
  if (s && !types.some((t) => t.name === s.gameType)) types.push(create(GameTypeSchema, { name: s.gameType, displayName: s.gameType }));
  const a = s?.arma3 ?? create(Arma3SettingsSchema, { gamePort: 2302 });

  const input = (name: string, value: string | number, extra: Record<string, unknown> = {}) =>
    h("input", { name, value: String(value), autocomplete: "off", ...extra });
  const num = (name: string, value: number, min: number, max: number) => input(name, value, { type: "number", min, max, step: 1, required: true });

  const nodeSelect = h(
    "select",
    { name: "node", required: true, disabled: !!s },
    nodes.map((n) => h("option", { value: String(n.id), selected: s?.nodeId === n.id }, `${n.name}${n.online ? "" : " (offline)"}`)),
  );
  const typeSelect = h(
    "select",
    { name: "game_type", disabled: !!s },
    types.map((t) => h("option", { value: t.name, selected: (s?.gameType || "arma3") === t.name }, t.displayName ? `${t.displayName} (${t.name})` : t.name)),
  );
  const name = input("name", s?.name ?? "", { required: true, maxlength: 100 });
  const exe = input("executable_path", s?.executablePath ?? "", { required: true, placeholder: "/srv/arma3/arma3server_x64" });
  const wd = input("working_dir", s?.workingDir ?? "", { placeholder: "the executable's directory" });

  const gamePort = num("game_port", a.gamePort || 2302, 1024, 65531);
  const profiles = input("profiles_dir", a.profilesDir, { placeholder: "server/ next to the executable" });
  const config = input("config_path", a.configPath, { placeholder: "/srv/arma3/server.cfg" });
  const basic = input("basic_config_path", a.basicConfigPath, { placeholder: "/srv/arma3/basic.cfg" });
  const mods = input("mods", a.mods.join(";"), { placeholder: "@CBA_A3;@ace" });
  const serverMods = input("server_mods", a.serverMods.join(";"));
  const extra = h("textarea", { name: "extra_args", rows: 3 }, a.extraArgs.join("\n"));
  const arma = h(
    "fieldset",
    null,
    h("legend", null, "Arma 3"),
    h(
      "div",
      { class: "row" },
      field("Game port", gamePort, "The next 4 ports are used too."),
      field("Profiles directory", profiles),
      field("server.cfg path", config),
      field("basic.cfg path", basic),
    ),
    h(
      "div",
      { class: "row" },
      field("Mods", mods, "Separated by ';', in load order."),
      field("Server mods", serverMods, "Separated by ';'."),
      field("Extra arguments", extra, "One per line, passed verbatim."),
    ),
  );

  const rconPort = num("rcon_port", s?.rconPort ?? 0, 0, 65535);
  const rconPassword = input("rcon_password", "", { type: "password", autocomplete: "new-password" });
  const clearPassword = s?.rconPasswordSet ? checkbox("Remove the password", "clear_rcon_password", false) : undefined;
  const rcon = h(
    "fieldset",
    null,
    h("legend", null, "RCon"),
    h(
      "div",
      { class: "row" },
      field("RCon port", rconPort, "UDP on 127.0.0.1; 0 turns RCon off."),
      field("RCon password", rconPassword, s ? (s.rconPasswordSet ? "Set; leave empty to keep it." : "Not set.") : "Required with a port."),
      clearPassword,
    ),
  );

  const autoRestart = checkbox("Restart automatically after a crash", "auto_restart", s?.autoRestart ?? true);
  const maxRestarts = num("max_restarts", s?.maxRestarts ?? 3, 0, 1000);
  const restartWindow = num("restart_window_seconds", s?.restartWindowSeconds ?? 600, 0, 86400 * 7);
  const cleanExitStops = checkbox("An exit with code 0 is a stop, not a crash", "clean_exit_stops", s?.cleanExitStops ?? false);
  const crashes = h(
    "fieldset",
    null,
    h("legend", null, "Crashes"),
    h("div", { class: "row" }, autoRestart, field("At most this many restarts", maxRestarts), field("within seconds", restartWindow)),
    h("div", { class: "row" }, cleanExitStops),
  );

  // The adapter's part: the Arma 3 fields, or the settings editor of a declared adapter.
  const adapterSlot = h("div");
  let settings: ReturnType<typeof settingsEditor> | undefined;
  const gameType = () => types.find((t) => t.name === typeSelect.value) ?? ARMA3;
  const showAdapter = () => {
    const t = gameType();
    settings = undefined;
    if (t.name === "arma3") fill(adapterSlot, arma);
    else {
      settings = settingsEditor(t, s?.gameType === t.name ? s.settings : {});
      fill(adapterSlot, settings.el);
    }
    rcon.hidden = !t.hasRcon && !s?.rconPort;
  };
  typeSelect.addEventListener("change", showAdapter);
  showAdapter();

  const error = errorLine();
  const submit = h("button", { type: "submit", class: "primary" }, s ? "Save" : "Create server");
  const form = h(
    "form",
    { class: "stack", "aria-label": s ? `Edit ${s.name}` : "New server", "data-testid": "server-form" },
    h(
      "fieldset",
      null,
      h("legend", null, "Server"),
      h("div", { class: "row" }, field("Node", nodeSelect), field("Name", name), field("Game type", typeSelect)),
      h("div", { class: "row" }, field("Executable path", exe), field("Working directory", wd)),
    ),
    adapterSlot,
    rcon,
    crashes,
    error,
    h(
      "div",
      { class: "buttons" },
      h("a", { href: s ? `/servers/${s.id}` : "/", class: "button" }, "Cancel"),
      submit,
    ),
  );
  fill(body, form);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const isArma = gameType().name === "arma3";
    const spec = {
      nodeId: BigInt(nodeSelect.value || 0),
      name: name.value.trim(),
      gameType: typeSelect.value,
      executablePath: exe.value.trim(),
      workingDir: wd.value.trim(),
      arma3: isArma
        ? {
            gamePort: Number(gamePort.value),
            profilesDir: profiles.value.trim(),
            configPath: config.value.trim(),
            basicConfigPath: basic.value.trim(),
            mods: list(mods.value, ";"),
            serverMods: list(serverMods.value, ";"),
            extraArgs: list(extra.value, /\r?\n/),
          }
        : undefined,
      settings: settings?.read() ?? {},
      rconPort: rcon.hidden ? 0 : Number(rconPort.value),
      autoRestart: (autoRestart.querySelector("input") as HTMLInputElement).checked,
      maxRestarts: Number(maxRestarts.value),
      restartWindowSeconds: Number(restartWindow.value),
      cleanExitStops: (cleanExitStops.querySelector("input") as HTMLInputElement).checked,
    };
    const clear = (clearPassword?.querySelector("input") as HTMLInputElement | undefined)?.checked ?? false;
    submit.disabled = true;
    try {
      if (!s) {
        const created = await api.servers.createServer({ server: spec, rconPassword: rconPassword.value });
        notify(`Server ${created.name} created.`);
        go(`/servers/${created.id}`);
        return;
      }
      const paths: string[] = [];
      const diff = (path: string, now: unknown, before: unknown) => {
        if (now !== before) paths.push(path);
      };
      diff("name", spec.name, s.name);
      diff("executable_path", spec.executablePath, s.executablePath);
      diff("working_dir", spec.workingDir, s.workingDir);
      if (spec.arma3) {
        const n = spec.arma3;
        diff("arma3.game_port", n.gamePort, a.gamePort);
        diff("arma3.profiles_dir", n.profilesDir, a.profilesDir);
        diff("arma3.config_path", n.configPath, a.configPath);
        diff("arma3.basic_config_path", n.basicConfigPath, a.basicConfigPath);
        diff("arma3.mods", n.mods.join(";"), a.mods.join(";"));
        diff("arma3.server_mods", n.serverMods.join(";"), a.serverMods.join(";"));
        diff("arma3.extra_args", n.extraArgs.join("\n"), a.extraArgs.join("\n"));
      } else {
        diff("settings", canon(spec.settings), canon(s.settings));
      }
      diff("rcon_port", spec.rconPort, s.rconPort);
      if (rconPassword.value || clear) paths.push("rcon_password");
      diff("auto_restart", spec.autoRestart, s.autoRestart);
      diff("max_restarts", spec.maxRestarts, s.maxRestarts);
      diff("clean_exit_stops", spec.cleanExitStops, s.cleanExitStops);
      diff("restart_window_seconds", spec.restartWindowSeconds, s.restartWindowSeconds);
      if (paths.length === 0) {
        notify("Nothing changed.");
        go(`/servers/${s.id}`);
        return;
      }
      const saved = await api.servers.updateServer({
        id: s.id,
        server: spec,
        updateMask: { paths },
        rconPassword: clear ? "" : rconPassword.value,
      });
      notify(`${saved.name} saved; takes effect at its next start.`);
      go(`/servers/${s.id}`);
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      submit.disabled = false;
    }
  });
}
