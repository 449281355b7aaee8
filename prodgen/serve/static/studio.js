// The studio's entry point: the screens as tabs (arrow keys move between them, the address's #hash
// opens one), and the served models handed to each screen.

import { callJson } from "./api.js";
import { setUpGenerate } from "./generate.js";
import { setUpJobs } from "./jobs.js";
import { setUpPhoto } from "./photo.js";
import { setUpSketch } from "./sketch.js";

const GENERATING_KINDS = ["generator", "autoencoder"];
const DRAWN_VIEWS = ["edges", "sketch", "grey"]; // translators whose input a drawing on white paper can be

function setUpTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const show = (chosen, focus) => {
    for (const tab of tabs) {
      const selected = tab === chosen;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) chosen.focus();
    history.replaceState(null, "", `#${chosen.getAttribute("aria-controls")}`);
  };
  for (const [index, tab] of tabs.entries()) {
    tab.addEventListener("click", () => show(tab, false));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      show(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
    });
  }
  const opened = tabs.find((tab) => `#${tab.getAttribute("aria-controls")}` === location.hash);
  if (opened) show(opened, false);
}

async function start() {
  setUpTabs();
  try {
    const { models } = await callJson("/v1/models");
    const generators = models.filter((model) => GENERATING_KINDS.includes(model.kind));
    setUpGenerate(generators);
    setUpPhoto();
    setUpSketch(models.filter((model) => model.kind === "translator" && DRAWN_VIEWS.includes(model.view)));
    setUpJobs(generators);
    document.getElementById("status").textContent = `${models.length} model(s) served: ${models.map((model) => model.name).join(", ")}.`;
  } catch (error) {
    document.getElementById("problem").textContent = `Cannot list the served models: ${error.message}`;
  }
}

start();
