// Sketch: draw a product's outline (dark lines on white, as the edges and sketch views are) or upload a
// drawing, and a pix2pix translator makes the product (POST /v1/translate).

import { callJson } from "./api.js";
import { busy, formOf, resultItem } from "./ui.js";

const PAPER = "#ffffff";
const INK = "#000000";

export function setUpSketch(translators) {
  const form = document.getElementById("sketch-form");
  const canvas = document.getElementById("sketch-canvas");
  const pen = canvas.getContext("2d");
  const clear = () => {
    pen.fillStyle = PAPER;
    pen.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  form.elements.model.replaceChildren(...translators.map((model) => new Option(`${model.name} (${model.view} → product)`, model.name)));
  document.getElementById("sketch-none").hidden = translators.length > 0;
  form.elements.model.disabled = form.querySelector('[type="submit"]').disabled = translators.length === 0;
  document.getElementById("sketch-clear").addEventListener("click", clear);
  document.getElementById("sketch-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const drawing = await createImageBitmap(file);
    const scale = Math.min(canvas.width / drawing.width, canvas.height / drawing.height);
    const width = drawing.width * scale, height = drawing.height * scale;
    clear();
    pen.drawImage(drawing, (canvas.width - width) / 2, (canvas.height - height) / 2, width, height);
  });
  drawWithPointer(canvas, pen, () => Number(form.elements.pen.value));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, "Translating", () => translate(form.elements.model.value, canvas));
  });
}

function drawWithPointer(canvas, pen, width) {
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(pen, last, last, width());
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    stroke(pen, last, next, width());
    last = next;
  });
  const lift = () => { last = null; };
  canvas.addEventListener("pointerup", lift);
  canvas.addEventListener("pointercancel", lift);
}

function stroke(pen, [x0, y0], [x1, y1], width) {
  pen.strokeStyle = INK;
  pen.lineWidth = width;
  pen.lineCap = pen.lineJoin = "round";
  pen.beginPath();
  pen.moveTo(x0, y0);
  pen.lineTo(x1, y1);
  pen.stroke();
}

async function translate(model, canvas) {
  const drawing = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const result = await callJson("/v1/translate", { form: formOf({ model, photo: new File([drawing], "drawing.png", { type: "image/png" }) }) });
  document.getElementById("sketch-results").replaceChildren(
    resultItem(result.model_input, "What the model saw", "drawing-as-input.png"),
    resultItem(result.image, `Product by ${model}`, "product.png"));
  return "Product made";
}
