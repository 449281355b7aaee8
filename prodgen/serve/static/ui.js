// Helpers the studio's screens share: the status and problem lines, images from the API's base64
// entries, downloads, and the model and category pickers.

import { ApiError } from "./api.js";

/** Runs `work` (a promise-returning function) with `button` disabled, saying what happens in the
 * status line and why it failed in the alert line; `work` may return the words to end with. */
export async function busy(button, doing, work) {
  const status = document.getElementById("status");
  const problem = document.getElementById("problem");
  button.disabled = true;
  problem.textContent = "";
  status.textContent = `${doing}…`;
  const start = performance.now();
  try {
    const said = await work();
    const took = performance.now() - start;
    status.textContent = `${said ?? "Done"} in ${took < 1000 ? `${Math.round(took)} ms` : `${(took / 1000).toFixed(1)} s`}.`;
  } catch (error) {
    status.textContent = "";
    problem.textContent = error instanceof ApiError ? error.message : `Something went wrong: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

export function dataUrl(encoded) {
  return `data:${encoded.media_type};base64,${encoded.data}`;
}

/** An API image entry as a File, to send back to the server (fetching its data: URL is not allowed by the page's policy). */
export function fileOf(encoded, fileName) {
  const bytes = Uint8Array.from(atob(encoded.data), (c) => c.charCodeAt(0));
  return new File([bytes], fileName, { type: encoded.media_type });
}

/** An <img> of an API image entry; a small image (a 28-pixel product) is scaled up without blurring. */
export function imageOf(encoded, alt) {
  const image = document.createElement("img");
  image.alt = alt;
  image.addEventListener("load", () => image.classList.toggle("pixelated", image.naturalWidth < 96), { once: true });
  image.src = dataUrl(encoded);
  return image;
}

/** A list item holding a captioned image and a link that downloads it as `fileName`. */
export function resultItem(encoded, caption, fileName) {
  const item = document.createElement("li");
  const figure = document.createElement("figure");
  const text = document.createElement("figcaption");
  const link = document.createElement("a");
  text.textContent = caption;
  link.href = dataUrl(encoded);
  link.download = fileName;
  link.textContent = "Download";
  link.setAttribute("aria-label", `Download ${caption}`);
  text.append(" ", link);
  figure.append(imageOf(encoded, caption), text);
  item.append(figure);
  return item;
}

export function saveBlob(blob, fileName) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: fileName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The colours typed into a field: CSS names or hex codes, separated by commas or new lines. */
export function coloursIn(text) {
  return text.split(/[,\n]/).map((colour) => colour.trim()).filter(Boolean);
}

/** A colour picker that adds its colour to a text field's list. */
export function addPickedColours(picker, field) {
  picker.addEventListener("change", () => {
    field.value = [...coloursIn(field.value), picker.value].join(", ");
  });
}

/** Fills a model <select> with `models` and keeps its category <select> (if any) to the chosen model's categories. */
export function pickModel(modelSelect, models, categorySelect = null) {
  modelSelect.replaceChildren(...models.map((model) => new Option(model.name, model.name)));
  modelSelect.disabled = models.length === 0;
  if (!categorySelect) return;
  const fillCategories = () => {
    const model = models.find((candidate) => candidate.name === modelSelect.value);
    const categories = model ? model.categories : [];
    categorySelect.replaceChildren(new Option(categories.length ? "Any (drawn at random)" : "None (unconditional)", ""),
      ...categories.map((category) => new Option(category, category)));
  };
  modelSelect.addEventListener("change", fillCategories);
  fillCategories();
}

/** Multipart form data: each field a string, a File, or a list of them (a repeated field); null fields left out. */
export function formOf(fields) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of [value].flat()) {
      if (item !== null && item !== undefined) form.append(name, item);
    }
  }
  return form;
}
