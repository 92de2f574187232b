// Create: a form for every registered kind, generated from its payload JSON schema
// (GET /v1/kinds). Each property becomes a control by its type; image inputs upload as soon as
// they are chosen; anything nested is a JSON box. Problems show beside their field, found here
// before sending (nothing is sent while any remain) or by the server (a 422's fields).

import { api, ApiError, consoleUser } from "../api.js";
import { bytes, emptyState, errorBox, h } from "../dom.js";
import { navigate } from "../main.js";
import { useStyles } from "../render.js";

const LAST_KIND = "genqueue.create.kind";
const NAME = "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"; // a user name, as the API takes it
const OPTIONS = {
  properties: {
    user: { type: "string", title: "User", pattern: NAME, description: "whose task it is (My tasks shows yours)" },
    priority: {
      type: "integer", title: "Priority", minimum: -1000, maximum: 1000, default: 0, description: "higher runs first",
    },
  },
  required: ["user"],
};

// --- the schema, read as controls ---

function deref(schema, root) {
  let s = schema || {};
  while (s.$ref) s = (root.$defs || {})[s.$ref.split("/").pop()] || {};
  return s;
}

/** A property's schema with refs followed and "X or null" unwrapped; `nullable` says it was. */
function unwrap(prop, root) {
  const base = deref(prop, root);
  if (!base.anyOf) return { schema: base, nullable: false };
  const options = base.anyOf.filter((s) => s.type !== "null");
  const nullable = options.length < base.anyOf.length;
  if (options.length !== 1) return { schema: base, nullable };
  const { anyOf, ...own } = base; // title, description and default live beside anyOf
  return { schema: { ...deref(options[0], root), ...own }, nullable };
}

function isInputFile(s) {
  return Boolean(s.properties && s.properties.upload && s.properties.base64);
}

function controlOf(s, nullable, root) {
  if (isInputFile(s)) return "file";
  if (s.type === "array" && isInputFile(deref(s.items, root))) return "files";
  if (s.enum) return "select";
  if (s.type === "boolean") return nullable ? "tristate" : "checkbox";
  if (s.type === "integer" || s.type === "number") return "number";
  if (s.type === "string") return "text";
  return "json";
}

/** 'e.g. {"prompt": …, "style": "default"}': the keys a JSON box takes, as a placeholder. */
function skeleton(s, root) {
  const items = deref(s.items, root);
  if (items.enum) return `e.g. ${JSON.stringify(items.enum.slice(0, 2))}`;
  const names = s.propertyNames && s.propertyNames.enum;
  if (names) return `e.g. {"${names[0]}": …}`;
  const props = Object.entries(s.properties || {});
  if (!props.length) return null;
  const keys = props.map(([key, p]) => {
    const value = deref(p, root).default;
    return `"${key}": ${value === undefined || value === null ? "…" : JSON.stringify(value)}`;
  });
  return `e.g. {${keys.join(", ")}}`;
}

function hintOf(s, control) {
  if (control === "file") return "An image (PNG, JPEG, WebP…), uploaded as soon as it is chosen.";
  if (control === "files") return "One or more images, uploaded as soon as they are chosen.";
  const parts = [];
  if (s.description) parts.push(s.description.replace(/``/g, "").replace(/\s+/g, " ").trim());
  if (s.minimum != null || s.maximum != null) {
    parts.push(`${s.minimum ?? s.exclusiveMinimum ?? "…"} to ${s.maximum ?? "…"}`);
  }
  if (s.default != null && control === "number") parts.push(`default ${s.default}`);
  const choices = (s.items && s.items.enum) || (s.propertyNames && s.propertyNames.enum);
  if (choices) parts.push(`${s.items ? "any of" : "keys"}: ${choices.join(", ")}`);
  if (control === "json") parts.push("JSON");
  return parts.join(" · ");
}

// --- one field: its control, its hint, its problem, and how to read its value ---

function buildField(name, prop, required, root, prefix = "f") {
  const { schema: s, nullable } = unwrap(prop, root);
  const control = controlOf(s, nullable, root);
  const id = `${prefix}-${name}`;
  const field = { name, s, control, required, nullable, upload: null };
  const described = `${id}-hint ${id}-problem`;
  const common = { id, name, "aria-describedby": described, "aria-required": required ? "true" : null };
  // A $ref'd property's own title is its name: the referenced schema's title is its type's.
  const named = prop.title || name.charAt(0).toUpperCase() + name.slice(1).replace(/_/g, " ");
  const label = `${named}${required ? " (required)" : ""}`;
  let input;
  if (control === "select" || control === "tristate") {
    const values = control === "select" ? s.enum : [true, false];
    const blank = control === "tristate" || s.default == null;
    input = h("select", common, blank ? h("option", { value: "" }, control === "tristate" ? "(default)" : "–") : null,
      values.map((v) => h("option", { value: JSON.stringify(v), selected: v === s.default }, String(v))));
  } else if (control === "checkbox") {
    input = h("input", { ...common, type: "checkbox", checked: s.default === true });
  } else if (control === "number") {
    input = h("input", { ...common, type: "number", inputmode: s.type === "integer" ? "numeric" : "decimal",
      step: s.type === "integer" ? "1" : "any", min: s.minimum, max: s.maximum, value: s.default ?? "" });
  } else if (control === "file" || control === "files") {
    input = h("input", { ...common, type: "file", accept: "image/*", multiple: control === "files" });
    field.status = h("div.upload-status", { "aria-live": "polite" });
    input.addEventListener("change", () => startUpload(field));
  } else if (control === "json" || (s.maxLength || 0) > 200 || /prompt|text/.test(name)) {
    const text = control === "json" ? (s.default != null ? JSON.stringify(s.default, null, 2) : "") : s.default ?? "";
    const placeholder = control === "json" ? skeleton(s, root) : null;
    input = h("textarea", { ...common, rows: 3, spellcheck: control !== "json", placeholder }, text);
  } else {
    input = h("input", { ...common, type: "text", value: s.default ?? "", autocomplete: "off" });
  }
  field.input = input;
  field.problem = h("div.problem", { id: `${id}-problem` });
  const hint = h("div.hint", { id: `${id}-hint` }, hintOf(s, control));
  const wide = input.tagName === "TEXTAREA" || control === "file" || control === "files";
  field.node = control === "checkbox"
    ? h("div.field.check", {}, h("label", { for: id }, input, " ", label), hint, field.problem)
    : h(`div.field${wide ? ".wide" : ""}`, {},
      h("label", { for: id }, label), input, hint, field.status, field.problem);
  // Fixing a field clears its message: checked again as it changes once a problem shows.
  const recheck = () => {
    if (!field.problem.textContent || field.upload) return;
    const { error } = readNow(field);
    showProblem(field, error || "");
  };
  input.addEventListener("input", recheck);
  input.addEventListener("change", recheck);
  return field;
}

function showProblem(field, message) {
  field.problem.textContent = message;
  if (message) field.input.setAttribute("aria-invalid", "true");
  else field.input.removeAttribute("aria-invalid");
}

async function uploadOne(file) {
  const headers = { "Content-Type": file.type || "application/octet-stream" };
  return api("/v1/uploads", { method: "POST", body: file, headers });
}

function startUpload(field) {
  const files = [...field.input.files];
  showProblem(field, "");
  field.status.replaceChildren(files.length ? "Uploading…" : "");
  if (!files.length) { field.upload = null; return; }
  const pending = Promise.all(files.map(uploadOne));
  field.upload = pending;
  pending.then((uploads) => {
    if (field.upload !== pending) return; // another choice replaced this one
    field.status.replaceChildren(...uploads.map((u) => h("span.uploaded", {},
      h("img.thumb", { src: u.url, alt: "" }), ` ${u.width}×${u.height} ${u.format}, ${bytes(u.size)}`)));
  }, (err) => {
    if (field.upload !== pending) return;
    field.status.replaceChildren();
    showProblem(field, `Upload refused: ${problemText(err)}`);
  });
}

function problemText(err) {
  if (err instanceof ApiError && err.fields.length) return err.fields.map((f) => f.message).join("; ");
  return err.message || String(err);
}

/** The field's value now (files excepted): {value}, {omit: true} or {error}. */
function readNow(field) {
  const { s, control, input, required } = field;
  const raw = input.value;
  const missing = () => (required ? { error: "Required." } : { omit: true });
  switch (control) {
    case "checkbox":
      return { value: input.checked };
    case "select":
    case "tristate":
      return raw === "" ? missing() : { value: JSON.parse(raw) };
    case "number": {
      if (input.validity.badInput) return { error: "Enter a number." };
      if (raw.trim() === "") return missing();
      const n = Number(raw);
      if (s.type === "integer" && !Number.isInteger(n)) return { error: "Enter a whole number." };
      if (s.minimum != null && n < s.minimum) return { error: `Must be at least ${s.minimum}.` };
      if (s.maximum != null && n > s.maximum) return { error: `Must be at most ${s.maximum}.` };
      const { exclusiveMinimum: above, exclusiveMaximum: below } = s;
      if (above != null && n <= above) return { error: `Must be more than ${above}.` };
      if (below != null && n >= below) return { error: `Must be less than ${below}.` };
      return { value: n };
    }
    case "json": {
      if (raw.trim() === "") return missing();
      let value;
      try { value = JSON.parse(raw); } catch (err) { return { error: `Not valid JSON: ${err.message}` }; }
      const want = s.type === "array" ? "array" : s.type === "object" || s.properties ? "object" : null;
      const got = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
      if (want && got !== want && !(got === "null" && field.nullable)) return { error: `Expected a JSON ${want}.` };
      return { value };
    }
    case "file":
    case "files":
      return field.upload ? { value: null } : required ? { error: "Choose an image." } : { omit: true };
    default: {
      if (raw === "") return missing();
      if (s.minLength != null && raw.length < s.minLength) return { error: `At least ${s.minLength} characters.` };
      if (s.maxLength != null && raw.length > s.maxLength) return { error: `At most ${s.maxLength} characters.` };
      if (s.pattern && !matches(s.pattern, raw)) return { error: `Must match ${s.pattern}` };
      return { value: raw };
    }
  }
}

function matches(pattern, text) {
  try {
    return new RegExp(pattern, "u").test(text);
  } catch {
    return true; // a Python-only pattern: the server judges it
  }
}

/** The field's value, waiting for its upload if it has one. */
async function read(field) {
  const now = readNow(field);
  if (now.error || now.omit || !field.upload) return now;
  try {
    const uploads = await field.upload;
    const refs = uploads.map((u) => ({ upload: u.id }));
    return { value: field.control === "files" ? refs : refs[0] };
  } catch (err) {
    return { error: `Upload refused: ${problemText(err)}` };
  }
}

// --- the form ---

function fieldsOf(schema, prefix) {
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  if (!Object.keys(props).length) {
    // A free-form payload (debug.echo): one JSON box for all of it.
    const whole = buildField("payload", { type: "object", title: "Payload", default: {} }, false, schema, prefix);
    whole.whole = true;
    return [whole];
  }
  return Object.entries(props).map(([name, prop]) => buildField(name, prop, required.has(name), schema, prefix));
}

function kindPicker(kinds, chosen) {
  const queues = [...new Set(kinds.map((k) => k.queue))];
  return h("select#kind", { name: "kind", "aria-describedby": "kind-about" },
    queues.map((q) => h("optgroup", { label: `queue ${q}` },
      kinds.filter((k) => k.queue === q)
        .map((k) => h("option", { value: k.name, selected: k.name === chosen }, k.name)))));
}

export async function mount(root) {
  useStyles();
  root.append(h("h2", {}, "Create a task"));
  let kinds;
  try {
    kinds = await api("/v1/kinds");
  } catch (err) {
    root.append(errorBox(`The kinds could not be loaded: ${err.message}`));
    return;
  }
  if (!kinds.length) {
    root.append(emptyState("No kinds are registered on this API, so there is nothing to create."));
    return;
  }
  const stored = localStorage.getItem(LAST_KIND);
  let kind = kinds.find((k) => k.name === stored) || kinds.find((k) => k.name === "image.generate") || kinds[0];
  const picker = kindPicker(kinds, kind.name);
  const about = h("p.hint.muted#kind-about");
  const payloadAbout = h("p.hint.muted");
  const payloadBox = h("div.form-grid");
  const optionsBox = h("div.form-grid");
  const formError = h("div.form-error");
  const submit = h("button#submit", { type: "submit" }, "Submit");
  const form = h("form.card.create", { novalidate: true },
    h("div.field", {}, h("label", { for: "kind" }, "Kind"), picker, about),
    h("fieldset", {}, h("legend", {}, "Payload"), payloadAbout, payloadBox),
    h("fieldset", {}, h("legend", {}, "Task options"), optionsBox),
    formError, h("div.actions", {}, submit));
  root.append(form);

  let fields = [];
  let options = [];
  const show = () => {
    const runs = `Runs on queue ${kind.queue}, up to ${kind.max_attempts} attempts.`;
    about.textContent = `${kind.description || ""} ${runs}`.trim();
    const schema = kind.payload_schema || {};
    payloadAbout.textContent = (schema.description || "").replace(/``/g, "").replace(/\s+/g, " ").trim();
    payloadAbout.hidden = !payloadAbout.textContent;
    fields = fieldsOf(schema, "f");
    payloadBox.replaceChildren(...fields.map((f) => f.node));
    formError.replaceChildren();
  };
  options = fieldsOf(OPTIONS, "o");
  options[0].input.value = consoleUser();
  optionsBox.replaceChildren(...options.map((f) => f.node));
  show();
  picker.addEventListener("change", () => {
    kind = kinds.find((k) => k.name === picker.value);
    localStorage.setItem(LAST_KIND, kind.name);
    show();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.replaceChildren();
    submit.disabled = true;
    try {
      const body = await collect(kind, fields, options);
      if (!body) return;
      const task = await api("/v1/tasks", { method: "POST", json: body });
      localStorage.setItem(LAST_KIND, kind.name);
      navigate(`/tasks/${task.id}`);
    } catch (err) {
      showServerProblems(err, fields, options, formError);
    } finally {
      submit.disabled = false;
    }
  });
}

/** The request body, or null after showing every problem found (focus on the first). */
async function collect(kind, fields, options) {
  const payload = {};
  const body = { kind: kind.name };
  let first = null;
  for (const [list, target] of [[fields, payload], [options, body]]) {
    for (const field of list) {
      const { value, omit, error } = await read(field);
      showProblem(field, error || "");
      if (error) first = first || field;
      else if (!omit) target[field.name] = value;
    }
  }
  if (first) {
    first.input.focus();
    return null;
  }
  body.payload = fields.some((f) => f.whole) ? payload.payload || {} : payload;
  return body;
}

function showServerProblems(err, fields, options, formError) {
  const unplaced = [];
  const whole = fields.find((f) => f.whole);
  let first = null;
  for (const problem of err instanceof ApiError ? err.fields : []) {
    // "payload.width" is the width field; "payload.layout.scale" the layout box; "user" an option.
    const path = problem.field.split(".");
    const inPayload = path[0] === "payload";
    const field = inPayload
      ? whole || fields.find((f) => f.name === path[1])
      : options.find((f) => f.name === path[0]);
    if (!field) { unplaced.push(`${problem.field}: ${problem.message}`); continue; }
    const where = path.slice(inPayload && !whole ? 2 : 1).join(".");
    showProblem(field, `${where ? `${where}: ` : ""}${problem.message}`);
    first = first || field;
  }
  if (first) first.input.focus();
  if (unplaced.length || !first) {
    const unreachable = "The API cannot be reached: nothing was submitted.";
    const text = unplaced.length ? unplaced.join("; ") : err.status === 0 ? unreachable : err.message;
    formError.replaceChildren(errorBox(`Not submitted: ${text}`));
  }
}
