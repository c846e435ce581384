// The caller's own account: who they are, and changing their password (AuthService.ChangePassword).

import { errorText } from "../api";
import { errorLine, field, fill, h, notify } from "../dom";
import { Role } from "../gen/languard/v1/common_pb";
import type { PageContext } from "../main";
import { session } from "../session";
import { panel } from "./common";

export function accountPage({ main }: PageContext): void {
  const user = session.user;
  const pw = (name: string, testid: string, autocomplete: string) =>
    h("input", { name, type: "password", required: true, autocomplete, "data-testid": testid, ...(name === "current" ? {} : { minlength: 8 }) });
  const current = pw("current", "current-password", "current-password");
  const next = pw("new", "new-password", "new-password");
  const repeat = pw("repeat", "repeat-password", "new-password");
  const error = errorLine();
  const done = h("p", { class: "form-ok", role: "status", "data-testid": "password-status" });
  const submit = h("button", { type: "submit", class: "primary" }, "Change password");
  const form = h(
    "form",
    { class: "stack narrow", "aria-label": "Change password" },
    field("Current password", current),
    field("New password", next, "At least 8 characters."),
    field("Repeat the new password", repeat),
    error,
    done,
    h("div", { class: "buttons" }, submit),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    done.textContent = "";
    if (next.value !== repeat.value) {
      error.textContent = "The new passwords do not match.";
      return;
    }
    submit.disabled = true;
    try {
      await session.changePassword(current.value, next.value);
      form.reset();
      done.textContent = "Password changed. Other sessions of yours must log in again.";
      notify("Password changed.");
    } catch (e) {
      error.textContent = errorText(e);
    } finally {
      submit.disabled = false;
    }
  });
  const pwPanel = panel("password", "Password");
  pwPanel.body.append(form);
  fill(
    main,
    h("h1", null, "Account"),
    h("p", null, "Logged in as ", h("strong", null, user?.username), user ? ` (${Role[user.role].toLowerCase()})` : ""),
    pwPanel.section,
  );
}
