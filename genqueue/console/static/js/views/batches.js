// #/batches: many prompts submitted at once as one batch (POST /v1/batches), with options
// shared by every task, and the console user's recent batches. Also the pieces the batch page
// (batch.js) shares: the stylesheet and the per-status counts.

import { api, ApiError, consoleUser } from "../api.js";
import {
  badge, clock, emptyState, errorBox, FINAL, h, setFieldProblem, useStylesheet,
} from "../dom.js";
import { navigate } from "../main.js";

const STYLESHEET = "/static/css/batches.css";
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "expired"];
const RECENT = 10;

/** Load the batches stylesheet once, whichever view comes first. */
export function useStyles() {
  useStylesheet(STYLESHEET);
}

/** Tasks finished, whatever the outcome, from counts per status. */
export function doneCount(counts) {
  return FINAL.reduce((sum, status) => sum + (counts[status] || 0), 0);
}

/** "succeeded 8 · failed 2": a badge and a number per status that has tasks. */
export function countsList(counts) {
  const present = STATUSES.filter((status) => counts[status]);
  return h("ul.counts", { "aria-label": "Tasks per status" },
    present.map((status) => h("li", {}, badge(status), h("span", {}, String(counts[status])))));
}

/**
 * The payloads in `text`: a JSON array of payload objects when it starts with "[", else one
 * prompt per non-blank line. Throws an Error saying what is wrong with it.
 */
export function parseItems(text) {
  const trimmed = text.trim();
  if (!trimmed.startsWith("[")) {
    return trimmed.split(/\r?\n/).map((line) => line.trim()).filter(Boolean)
      .map((prompt) => ({ prompt }));
  }
  let items;
  try {
    items = JSON.parse(trimmed);
  } catch (err) {
    throw new Error(`This is not valid JSON: ${err.message}`);
  }
  const objects = Array.isArray(items)
    && items.every((item) => item && typeof item === "object" && !Array.isArray(item));
  if (!objects) throw new Error("JSON must be an array of payload objects, e.g. [{\"prompt\": \"a fox\"}].");
  return items;
}

/** A kind's options every task of the batch can share: plain enum and number fields. */
function sharedOptions(kind) {
  const properties = (kind.payload_schema && kind.payload_schema.properties) || {};
  return Object.entries(properties).filter(([name, schema]) =>
    name !== "prompt" && (Array.isArray(schema.enum) || ["integer", "number"].includes(schema.type)));
}

function optionField(name, schema) {
  const id = `opt-${name}`;
  const hintText = [schema.description,
    schema.minimum != null && schema.maximum != null ? `${schema.minimum}–${schema.maximum}` : null]
    .filter(Boolean).join(" · ");
  const control = Array.isArray(schema.enum)
    ? h("select", { id, name }, schema.enum.map((value) =>
      h("option", { value, selected: value === schema.default }, value)))
    : h("input", {
      id, name, type: "number", value: schema.default ?? "", min: schema.minimum, max: schema.maximum,
      step: schema.type === "integer" ? 1 : "any", "aria-describedby": hintText ? `${id}-hint` : null,
    });
  return h("div.field", { dataset: { option: name } },
    h("label", { for: id }, schema.title || name),
    control,
    hintText ? h("div.hint", { id: `${id}-hint` }, hintText) : null,
    h("div.problem", { id: `${id}-problem`, hidden: true }));
}

/** The shared options the user changed from their defaults (the kind's defaults need no saying). */
function sharedValues(form, options) {
  const values = {};
  for (const [name, schema] of options) {
    const raw = form.elements[name].value;
    if (raw === "" || raw === String(schema.default ?? "")) continue;
    values[name] = Array.isArray(schema.enum) ? raw : Number(raw);
  }
  return values;
}


function newBatchForm(kinds) {
  const kindSelect = h("select", { id: "batch-kind", name: "kind" },
    kinds.map((k) => h("option", { value: k.name, selected: k.name === "image.generate" }, k.name)));
  const text = h("textarea", {
    id: "batch-prompts", name: "prompts", rows: 8, "aria-describedby": "batch-prompts-hint",
    placeholder: "a lighthouse at sunset\na red fox in the snow",
  });
  const file = h("input", { id: "batch-file", type: "file", accept: ".txt,.json,text/plain,application/json" });
  const tally = h("span.muted", { id: "batch-tally" }, "0 tasks");
  const options = h("div.row", { id: "batch-options" });
  const formError = h("div", { id: "batch-error" });
  const submit = h("button", { type: "submit" }, "Submit batch");
  const promptsField = h("div.field", {},
    h("label", { for: "batch-prompts" }, "Prompts"),
    text,
    h("div.hint", { id: "batch-prompts-hint" },
      "One prompt per line, or a JSON array of payload objects (each over the shared options)."),
    h("div.problem", { id: "batch-prompts-problem", hidden: true }));

  let optionList = [];
  const showOptions = () => {
    const kind = kinds.find((k) => k.name === kindSelect.value);
    optionList = sharedOptions(kind);
    options.replaceChildren(...optionList.map(([name, schema]) => optionField(name, schema)));
  };
  const recount = () => {
    try {
      const n = parseItems(text.value).length;
      tally.textContent = `${n} task${n === 1 ? "" : "s"}`;
    } catch {
      tally.textContent = "not valid JSON yet";
    }
  };
  kindSelect.addEventListener("change", showOptions);
  text.addEventListener("input", recount);
  file.addEventListener("change", async () => {
    if (!file.files.length) return;
    text.value = await file.files[0].text();
    recount();
  });
  showOptions();

  const form = h("form.card", { id: "new-batch", "aria-labelledby": "new-batch-title", novalidate: true },
    h("h3#new-batch-title", {}, "New batch"),
    h("div.row", {},
      h("div.field", {}, h("label", { for: "batch-kind" }, "Kind"), kindSelect),
      h("div.field", {}, h("label", { for: "batch-file" }, "Or load a file (.txt, .json)"), file)),
    promptsField,
    h("h3", {}, "Shared options"),
    options,
    formError,
    h("div.actions", {}, submit, tally));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.replaceChildren();
    setFieldProblem(promptsField, null);
    for (const field of options.querySelectorAll(".field")) setFieldProblem(field, null);
    let items;
    try {
      items = parseItems(text.value);
    } catch (err) {
      setFieldProblem(promptsField, err.message);
      return;
    }
    if (!items.length) {
      setFieldProblem(promptsField, "Write at least one prompt, one per line.");
      text.focus();
      return;
    }
    const shared = sharedValues(form, optionList);
    const user = consoleUser();
    const tasks = items.map((item) => ({ kind: kindSelect.value, payload: { ...shared, ...item }, user }));
    submit.disabled = true;
    try {
      const batch = await api("/v1/batches", { method: "POST", json: { tasks, user } });
      navigate(`/batches/${batch.id}`);
    } catch (err) {
      submit.disabled = false;
      showProblems(err, { options, promptsField, formError, lines: !text.value.trim().startsWith("[") });
    }
  });
  return form;
}

/** A refused batch: each problem beside the shared option it names, else listed by line. */
function showProblems(err, { options, promptsField, formError, lines }) {
  if (!(err instanceof ApiError) || !err.fields.length) {
    formError.replaceChildren(errorBox(`The batch was not submitted: ${err.message}`));
    return;
  }
  const perItem = [];
  for (const { field, message } of err.fields) {
    const match = /^tasks\.(\d+)\.payload\.([^.]+)/.exec(field);
    const option = match && options.querySelector(`[data-option="${match[2]}"]`);
    if (option) {
      setFieldProblem(option, message);
    } else if (match) {
      perItem.push(`${lines ? "Prompt" : "Item"} ${Number(match[1]) + 1}, ${match[2]}: ${message}`);
    } else {
      perItem.push(`${field}: ${message}`);
    }
  }
  if (perItem.length) setFieldProblem(promptsField, [...new Set(perItem)].slice(0, 5).join("; "));
  const first = options.querySelector("[aria-invalid='true']") || promptsField.querySelector("textarea");
  first.focus();
}

/** The user's newest batches with their counts (GET /v1/batches). */
async function recentBatches(user) {
  const page = await api("/v1/batches", { query: { user, limit: RECENT } });
  return page.items;
}

function recentTable(batches) {
  if (!batches.length) {
    return emptyState("No batches yet. Write a few prompts above and submit them: the batch shows up here.");
  }
  return h("div.table-wrap", {},
    h("table", { id: "recent-batches" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Batch"), h("th", { scope: "col" }, "Submitted"),
        h("th", { scope: "col" }, "Done"), h("th", { scope: "col" }, "Tasks"))),
      h("tbody", {}, batches.map((b) => h("tr", {},
        h("td", {}, h("a", { href: `#/batches/${b.id}`, title: b.id }, `${b.id.slice(0, 8)}…`)),
        h("td", {}, clock(b.created_at)),
        h("td.done", {}, `${doneCount(b.counts)}/${b.size}`),
        h("td", {}, countsList(b.counts)))))));
}

export async function mount(root) {
  useStyles();
  const user = consoleUser();
  const recent = h("section.card", { "aria-labelledby": "recent-title" },
    h("h3#recent-title", {}, `Recent batches of ${user}`), h("p.muted", {}, "Loading…"));
  root.append(h("h2", {}, "Batches"));

  const [kinds, batches] = await Promise.allSettled([api("/v1/kinds"), recentBatches(user)]);
  if (kinds.status === "rejected") {
    root.append(errorBox(`The kinds could not be loaded: ${kinds.reason.message}`));
  } else {
    const promptKinds = kinds.value.filter((k) => {
      const prompt = k.payload_schema && k.payload_schema.properties && k.payload_schema.properties.prompt;
      return prompt && prompt.type === "string";
    });
    root.append(promptKinds.length
      ? newBatchForm(promptKinds)
      : emptyState("No registered kind takes a prompt, so there is nothing to batch here."));
  }
  recent.lastChild.replaceWith(batches.status === "fulfilled"
    ? recentTable(batches.value)
    : errorBox(`Recent batches could not be loaded: ${batches.reason.message}`));
  root.append(recent);
}
