// #/search: images like an uploaded one in a collection (POST /v1/uploads, then
// POST /v1/collections/<name>/search with the upload's id), and past tasks whose prompt is
// close to a given one (GET /v1/prompts/similar). Both answer with scores, best first.

import { api } from "../api.js";
import { emptyState, errorBox, h, setFieldProblem, useStylesheet } from "../dom.js";

const STYLESHEET = "/static/css/batches.css";
const UPLOAD_ID = /^u-[0-9a-f]{32}$/;
const CREATE_EXAMPLE = `curl -X POST $API/v1/collections -H 'Content-Type: application/json' \\
  -d '{"name": "photos"}'
curl --data-binary @shoe.jpg $API/v1/uploads        # -> {"id": "u-..."}
curl -X POST $API/v1/collections/photos/items -H 'Content-Type: application/json' \\
  -d '{"items": [{"image": {"upload": "u-..."}}]}'`;

/** A picture of a collection item: an image URL in its metadata, else the upload it came
 * from (items ingested from an upload are named by the upload's id). */
function itemImage(hit) {
  const meta = hit.metadata || {};
  const url = [meta.image_url, meta.thumbnail_url, meta.url]
    .find((u) => typeof u === "string" && /^(\/|https?:)/.test(u));
  if (url) return url;
  return UPLOAD_ID.test(hit.id) ? `/v1/artifacts/${hit.id}/original` : null;
}

function thumb(src) {
  const none = () => h("div.thumb.none", { "aria-hidden": "true" }, "no image");
  if (!src) return none();
  // Described by the text beside it; an expired file falls back to the placeholder.
  const img = h("img.thumb", { src, alt: "" });
  img.addEventListener("error", () => img.replaceWith(none()));
  return img;
}

function hitRow(rank, picture, ...body) {
  return h("li", {}, h("span.rank", {}, `${rank}`), thumb(picture), h("div.body", {}, ...body));
}

function score(value) {
  return h("span.score", {}, `score ${value.toFixed(3)}`);
}

function fieldWithProblem(id, label, control, hint) {
  if (hint) control.setAttribute("aria-describedby", `${id}-hint`);
  return h("div.field", {},
    h("label", { for: id }, label), control,
    hint ? h("div.hint", { id: `${id}-hint` }, hint) : null,
    h("div.problem", { id: `${id}-problem`, hidden: true }));
}

function showProblem(field, message) {
  setFieldProblem(field, message);
  if (message) field.querySelector("input, select").focus();
}

function imageSearch(collections, state) {
  const card = h("section.card", { "aria-labelledby": "image-search-title" },
    h("h3#image-search-title", {}, "Images like this one"));
  if (!collections.length) {
    card.append(emptyState(
      "No collections yet. Create one with the API and add images to it; then search it here.",
      h("pre.example", { tabindex: 0, "aria-label": "Example commands" }, CREATE_EXAMPLE)));
    return card;
  }
  const collection = h("select", { id: "search-collection", name: "collection" },
    collections.map((c) => h("option", { value: c.name },
      `${c.name} (${c.size ?? "?"} item${c.size === 1 ? "" : "s"})`)));
  const file = h("input", { id: "search-image", type: "file", accept: "image/*" });
  const k = h("input", { id: "search-k", type: "number", min: 1, max: 100, value: 5 });
  const fileField = fieldWithProblem("search-image", "Image", file);
  const submit = h("button", { type: "submit" }, "Search");
  const out = h("div", { id: "search-results" });
  const form = h("form", { novalidate: true },
    h("div.row", {},
      fieldWithProblem("search-collection", "Collection", collection),
      fileField,
      fieldWithProblem("search-k", "Results", k)),
    h("div.actions", {}, submit));
  card.append(form, out);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showProblem(fileField, null);
    const chosen = file.files[0];
    if (!chosen) {
      showProblem(fileField, "Choose an image to search with.");
      return;
    }
    submit.disabled = true;
    out.replaceChildren(h("p.muted", { role: "status" }, "Searching…"));
    try {
      const upload = await api("/v1/uploads", {
        method: "POST", body: chosen, headers: { "Content-Type": chosen.type || "application/octet-stream" },
      });
      const answer = await api(`/v1/collections/${encodeURIComponent(collection.value)}/search`, {
        method: "POST", json: { image: { upload: upload.id }, k: Number(k.value) || 5 },
      });
      if (state.queryUrl) URL.revokeObjectURL(state.queryUrl);
      state.queryUrl = URL.createObjectURL(chosen);
      out.replaceChildren(
        h("div.row", {}, h("img.query-image", { src: state.queryUrl, alt: `Your image, ${chosen.name}` }),
          h("p.muted", {}, `Embedded in ${answer.embed_s} s, searched in ${answer.search_s} s.`)),
        answer.results.length
          ? h("ol.hits", { "aria-label": "Nearest items" }, answer.results.map((hit, i) =>
            hitRow(i + 1, itemImage(hit),
              h("strong.item-id", {}, hit.id), " ", score(hit.score),
              metadataLine(hit.metadata),
              h("div", {}, h("a.muted", { href: `#/tasks/${hit.task_id}` }, "indexed by task")))))
          : emptyState("The collection is empty: add images to it first."));
    } catch (err) {
      out.replaceChildren(errorBox(`The search failed: ${err.message}`));
    } finally {
      submit.disabled = false;
    }
  });
  return card;
}

function metadataLine(metadata) {
  const pairs = Object.entries(metadata || {}).map(([key, value]) => `${key}: ${value}`);
  return pairs.length ? h("div.muted", {}, pairs.join(" · ")) : null;
}

function promptSearch() {
  const q = h("input", { id: "prompt-query", type: "search", name: "q", maxlength: 2000 });
  const field = fieldWithProblem("prompt-query", "Prompt", q, "Finds succeeded tasks whose prompt says much the same.");
  const submit = h("button", { type: "submit" }, "Find similar");
  const out = h("div", { id: "prompt-results" });
  const form = h("form", { novalidate: true }, field, h("div.actions", {}, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showProblem(field, null);
    if (!q.value.trim()) {
      showProblem(field, "Write a prompt to compare with.");
      return;
    }
    submit.disabled = true;
    // The API's first search loads the language model and embeds the recent prompts.
    out.replaceChildren(h("p.muted", { role: "status" }, "Searching…"));
    try {
      const hits = await api("/v1/prompts/similar", { query: { q: q.value.trim(), k: 10 } });
      out.replaceChildren(hits.length
        ? h("ol.hits", { "aria-label": "Similar past prompts" }, hits.map(({ score: value, task }, i) =>
          hitRow(i + 1, task.result && task.result.image_url,
            h("a.prompt", { href: `#/tasks/${task.id}` }, task.payload.prompt), " ", score(value),
            h("div.muted", {}, `${task.kind} · ${new Date(task.created_at).toLocaleString()}`))))
        : emptyState("No succeeded task has a prompt yet: generate a few images first."));
    } catch (err) {
      out.replaceChildren(errorBox(`The search failed: ${err.message}`));
    } finally {
      submit.disabled = false;
    }
  });
  return h("section.card", { "aria-labelledby": "prompt-search-title" },
    h("h3#prompt-search-title", {}, "Similar past prompts"), form, out);
}

export async function mount(root) {
  useStylesheet(STYLESHEET);
  const state = { queryUrl: null };
  root.append(h("h2", {}, "Search"));
  try {
    root.append(imageSearch(await api("/v1/collections"), state));
  } catch (err) {
    root.append(errorBox(`The collections could not be loaded: ${err.message}`));
  }
  root.append(promptSearch());
  return () => {
    if (state.queryUrl) URL.revokeObjectURL(state.queryUrl);
  };
}
