// Jobs: a batch job of one row (POST /v1/jobs), followed with a progress bar (GET /v1/jobs/{id}
// polled) until its ZIP can be downloaded (GET /v1/jobs/{id}/result, with the API key, so fetched).

import { call, callJson } from "./api.js";
import { busy, pickModel, saveBlob } from "./ui.js";

const POLL_MS = 500;

export function setUpJobs(generators) {
  const form = document.getElementById("job-form");
  pickModel(form.elements.model, generators, form.elements.category);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, "Queueing the job", () => submit(form.elements));
  });
}

async function submit(fields) {
  const row = { count: Number(fields.count.value) };
  if (fields.category.value) row.category = fields.category.value;
  const job = await callJson("/v1/jobs", { json: { model: fields.model.value, rows: [row], seed: Number(fields.seed.value) } });
  const entry = jobEntry(job, fields.category.value || "any category");
  document.getElementById("job-list").prepend(entry.item);
  follow(job, entry);
  return `Job ${job.id.slice(0, 8)} queued`;
}

function jobEntry(job, what) {
  const item = document.createElement("li");
  const title = document.createElement("span");
  const progress = document.createElement("progress");
  const state = document.createElement("span");
  title.textContent = `${job.total} × ${what}, ${job.model} (job ${job.id.slice(0, 8)})`;
  progress.max = 1;
  progress.setAttribute("aria-label", `Progress of job ${job.id.slice(0, 8)}`);
  state.className = "state";
  state.setAttribute("aria-live", "polite");
  item.append(title, progress, state);
  return { item, progress, state };
}

async function follow(job, entry) {
  for (;;) {
    entry.progress.value = job.progress;
    entry.state.textContent = `${job.state}: ${job.done} of ${job.total}`;
    entry.item.dataset.state = job.state;
    if (job.state === "failed") {
      entry.state.textContent = `failed: ${job.error}`;
      return;
    }
    if (job.state === "done") break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      job = await callJson(`/v1/jobs/${job.id}`);
    } catch (error) {
      entry.state.textContent = `cannot follow the job: ${error.message}`;
      return;
    }
  }
  const download = document.createElement("button");
  download.type = "button";
  download.textContent = "Download ZIP";
  download.setAttribute("aria-label", `Download the ZIP of job ${job.id.slice(0, 8)}`);
  download.addEventListener("click", () => busy(download, "Downloading", async () => {
    saveBlob(await (await call(job.result)).blob(), `job-${job.id}.zip`);
    return "Downloaded";
  }));
  entry.item.append(download);
}
