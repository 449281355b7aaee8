// Generate: a grid of new products; a chosen image's metadata, its download, variants of it
// (POST /v1/variants) and colourways of its bytes (POST /v1/colourway).

import { callJson } from "./api.js";
import { addPickedColours, busy, coloursIn, dataUrl, fileOf, formOf, imageOf, pickModel, resultItem } from "./ui.js";

let chosen = null; // the image whose details are shown: the API's entry, with the model that made it

export function setUpGenerate(generators) {
  const form = document.getElementById("generate-form");
  pickModel(form.elements.model, generators, form.elements.category);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, "Generating", () => generate(form));
  });
  const variants = document.getElementById("variants-form");
  variants.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, "Making variants", () => makeVariants(variants));
  });
  const colourways = document.getElementById("details-colourway-form");
  addPickedColours(colourways.elements.picker, colourways.elements.colours);
  colourways.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, "Recolouring", () => recolour(colourways));
  });
}

async function generate(form) {
  const fields = form.elements;
  const request = { model: fields.model.value, n: Number(fields.n.value), seed: Number(fields.seed.value),
                    truncation: Number(fields.truncation.value), format: "png" };
  if (fields.category.value) request.category = fields.category.value;
  const { images } = await callJson("/v1/generate", { json: request });
  const grid = document.getElementById("grid");
  grid.replaceChildren(...images.map((image) => thumbnail(image, request.model)));
  document.getElementById("details").hidden = true;
  grid.querySelector("button")?.focus();
  return `${images.length} image(s) made`;
}

function thumbnail(image, model) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  const category = image.metadata.conditions.category;
  button.type = "button";
  button.className = "thumb";
  button.setAttribute("aria-pressed", "false");
  button.append(imageOf(image, `Image ${image.index}${category ? `: ${category}` : ""}`));
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll("#grid .thumb")) other.setAttribute("aria-pressed", String(other === button));
    showDetails(image, model);
  });
  item.append(button);
  return item;
}

const SHOWN_METADATA = [
  ["File", (image) => image.file_name],
  ["Model", (image) => image.metadata.model],
  ["Seed", (image) => image.metadata.seed],
  ["Index", (image) => image.metadata.index],
  ["Conditions", (image) => Object.entries(image.metadata.conditions).map(([name, value]) => `${name}: ${value}`).join(", ") || "none"],
  ["Asked", (image) => Object.entries(image.metadata.asked).map(([name, value]) => `${name}: ${value}`).join(", ") || "nothing"],
  ["Truncation", (image) => image.metadata.truncation],
  ["Backend", (image) => image.metadata.backend],
  ["Weights", (image) => `sha256 ${image.metadata.model_sha256.slice(0, 12)}…`],
  ["prodgen", (image) => image.metadata.prodgen_version],
];

function showDetails(image, model) {
  chosen = { image, model };
  const details = document.getElementById("details");
  const picture = document.getElementById("details-image");
  picture.src = dataUrl(image);
  picture.alt = `Image ${image.index} of seed ${image.metadata.seed}`;
  picture.classList.add("pixelated");
  const download = document.getElementById("details-download");
  download.href = dataUrl(image);
  download.download = image.file_name;
  document.getElementById("details-title").textContent = image.file_name;
  document.getElementById("details-metadata").replaceChildren(...SHOWN_METADATA.flatMap(([name, value]) => {
    const term = document.createElement("dt");
    const description = document.createElement("dd");
    term.textContent = name;
    description.textContent = String(value(image));
    return [term, description];
  }));
  document.getElementById("variants").replaceChildren();
  document.getElementById("details-colourways").replaceChildren();
  details.hidden = false;
}

function stem(fileName) {
  return fileName.replace(/\.[^.]+$/, "");
}

async function makeVariants(form) {
  const { image, model } = chosen;
  const { category, ...attributes } = image.metadata.asked; // the product as generate made it: same seed, index and asked conditions
  const request = { model, seed: image.metadata.seed, index: image.metadata.index, attributes,
                    n: Number(form.elements.n.value), distance: Number(form.elements.distance.value) };
  if (category) request.category = category;
  const { variants } = await callJson("/v1/variants", { json: request });
  document.getElementById("variants").replaceChildren(...variants.map((variant, k) =>
    resultItem(variant, `Variant ${k + 1}`, `${stem(image.file_name)}-variant-${k + 1}.png`)));
  return `${variants.length} variant(s) made`;
}

async function recolour(form) {
  const { image } = chosen;
  const upload = formOf({ photo: fileOf(image, image.file_name), colour: coloursIn(form.elements.colours.value) });
  const { colourways } = await callJson("/v1/colourway", { form: upload });
  document.getElementById("details-colourways").replaceChildren(...colourways.map((made) =>
    resultItem(made, made.colour, `${stem(image.file_name)}-${made.colour}.png`)));
  return `${colourways.length} colourway(s) made`;
}
