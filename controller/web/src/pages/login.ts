// The login form. `message` says why the user is here (e.g. the session expired).

import { errorText } from "../api";
import { h, fill } from "../dom";
import type { PageContext } from "../main";
import { session } from "../session";

export function loginPage({ main, go }: PageContext, message: string): void {
  const error = h("p", { class: "error", role: "alert" }, message);
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Languard"),
    error,
    h("label", null, "Username", h("input", { name: "username", autocomplete: "username", required: true, autofocus: true })),
    h("label", null, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    submit.disabled = true;
    error.textContent = "";
    try {
      await session.login(String(data.get("username")), String(data.get("password")));
      const next = new URLSearchParams(location.search).get("next") ?? "/";
      // Only paths of this site (not "//host").
      go(/^\/(?!\/)/.test(next) ? next : "/");
    } catch (e) {
      error.textContent = errorText(e);
      submit.disabled = false;
    }
  });
  fill(main, form);
}
