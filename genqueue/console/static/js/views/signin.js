// The sign-in form, shown in place of any view while the API asks for a key (GENQUEUE_AUTH):
// POST /v1/session checks the key and keeps it in an HttpOnly cookie, which every later
// request and event stream of the console carries.

import { api } from "../api.js";
import { h, setFieldProblem } from "../dom.js";

/** Fill `root` with the form; call onSignedIn(session) once a key is accepted. */
export function signIn(root, onSignedIn) {
  const key = h("input", {
    id: "sign-in-key", name: "key", type: "password", autocomplete: "off", required: true,
    spellcheck: "false", "aria-describedby": "sign-in-key-hint",
  });
  const field = h("div.field", {},
    h("label", { for: "sign-in-key" }, "API key"), key,
    h("div.hint", { id: "sign-in-key-hint" },
      "A key from your operator (genqueue keys create). It stays in this browser until you sign out."),
    h("div.problem", { id: "sign-in-key-problem", hidden: true }));
  const submit = h("button", { type: "submit", id: "sign-in" }, "Sign in");
  const form = h("form.card", { id: "sign-in-form", "aria-labelledby": "sign-in-title", novalidate: true },
    h("h2#sign-in-title", {}, "Sign in"),
    h("p.muted", {}, "This genqueue asks for an API key."), field, submit);
  key.addEventListener("input", () => setFieldProblem(field, ""));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = key.value.trim();
    if (!value) {
      setFieldProblem(field, "Enter your API key.");
      key.focus();
      return;
    }
    submit.disabled = true;
    try {
      onSignedIn(await api("/v1/session", { method: "POST", json: { key: value } }));
    } catch (err) {
      const why = err.status === 401 ? "This key is not valid: unknown, mistyped or revoked." : err.message;
      setFieldProblem(field, why);
      key.focus();
    } finally {
      submit.disabled = false;
    }
  });
  document.title = "Sign in · genqueue";
  root.replaceChildren(form);
  key.focus();
}
