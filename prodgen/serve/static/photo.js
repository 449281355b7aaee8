// Photo: an uploaded product photo recoloured (POST /v1/colourway), masked (POST /v1/mask) or
// stylised after another image (POST /v1/stylise). The results are listed newest first.

import { callJson } from "./api.js";
import { addPickedColours, busy, coloursIn, formOf, resultItem } from "./ui.js";

export function setUpPhoto() {
  const file = document.getElementById("photo-file");
  const preview = document.getElementById("photo-preview");
  file.addEventListener("change", () => {
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !file.files.length;
    if (file.files.length) preview.src = URL.createObjectURL(file.files[0]);
  });
  const recolour = document.getElementById("photo-colourway-form");
  addPickedColours(recolour.elements.picker, recolour.elements.colours);
  onSubmit(recolour, "Recolouring", recolourPhoto);
  onSubmit(document.getElementById("mask-form"), "Finding the product", maskPhoto);
  onSubmit(document.getElementById("stylise-form"), "Stylising", stylisePhoto);
}

function onSubmit(form, doing, work) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const photo = document.getElementById("photo-file").files[0];
    if (!photo) {
      document.getElementById("problem").textContent = "Choose a product photo first.";
      document.getElementById("photo-file").focus();
      return;
    }
    busy(event.submitter, doing, () => work(form.elements, photo));
  });
}

function stem(file) {
  return file.name.replace(/\.[^.]+$/, "");
}

function show(items) {
  document.getElementById("photo-results").prepend(...items);
}

async function recolourPhoto(fields, photo) {
  const like = fields.like.files[0] ?? null;
  const { colourways } = await callJson("/v1/colourway", { form: formOf({ photo, colour: coloursIn(fields.colours.value), like }) });
  show(colourways.map((made) => resultItem(made, `${photo.name} in ${made.colour}`, `${stem(photo)}-${made.colour}.png`)));
  return `${colourways.length} colourway(s) made`;
}

async function maskPhoto(fields, photo) {
  const result = await callJson("/v1/mask", { form: formOf({ photo, tolerance: fields.tolerance.value }) });
  show([resultItem(result.image, `Mask of ${photo.name} (${result.method})`, `${stem(photo)}-mask.png`),
        resultItem(result.cutout, `Cut-out of ${photo.name}`, `${stem(photo)}-cutout.png`)]);
  return `Product found by ${result.method}`;
}

async function stylisePhoto(fields, photo) {
  const style = fields.style.files[0];
  const result = await callJson("/v1/stylise", { form: formOf({
    content: photo, style, method: fields.method.value, size: fields.size.value, steps: fields.steps.value,
    keep_background: String(fields.keep_background.checked),
  }) });
  show([resultItem(result.image, `${photo.name} after ${style.name} (${result.method})`, `${stem(photo)}-${result.method}.png`)]);
  return "Stylised";
}
