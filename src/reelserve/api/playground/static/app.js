// The reelserve playground: a form over the generation API, its live progress and results.
// Plain DOM code, no build step. Everything the server sends is shown through textContent,
// never parsed as HTML: prompts and messages are user data.

// Relative to the page, so that a server behind a path prefix still works.
const API = new URL("api/v1/", document.baseURI);
const READYZ = new URL("readyz", document.baseURI);
const KEY_STORAGE = "reelserve.apiKey";
const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELED"]);
const GALLERY_SIZE = 12;
const RESUME_TRIES = 5;

// Which media each mode sends; the rest of the form is the same for every mode.
const MODE_MEDIA = {
  text: [],
  image: ["image_url"],
  "first-last": ["image_url", "end_image_url"],
  motion: ["image_url", "video_url"],
};

const STATUS_WORDS = {
  IN_QUEUE: "Waiting in the queue",
  IN_PROGRESS: "Generating",
  COMPLETED: "Done",
  FAILED: "Failed",
  CANCELED: "Canceled: the reserved credits were released",
};

const $ = (id) => document.getElementById(id);

/** An error answer of the API: `{"code", "message"}` plus the HTTP status. */
class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** The field the message names ("field: rule"), or null when it names none. */
  get field() {
    const match = /^([A-Za-z_][\w.-]*): /.exec(this.message);
    return match ? match[1] : null;
  }
}

// ---------------------------------------------------------------- the API

function storedKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  return fetch(new URL(path, API), {
    method,
    body,
    signal,
    headers: { Authorization: `Bearer ${storedKey()}`, ...headers },
  });
}

async function errorFrom(response) {
  const retryAfter = response.headers.get("Retry-After");
  try {
    const body = await response.json();
    return new ApiError(response.status, body.code, body.message || `HTTP ${response.status}`, retryAfter);
  } catch {
    // A proxy in front of the server may answer with HTML; keep the status at least.
    return new ApiError(response.status, `HTTP_${response.status}`, `The server answered HTTP ${response.status}.`);
  }
}

async function apiJson(path, options) {
  const response = await api(path, options);
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

// ---------------------------------------------------------------- Server-Sent Events

/**
 * One event block of a stream: its `data:` lines joined, and its `id:` (kept only to
 * resume a dropped stream). Comment lines such as `: keepalive` carry nothing.
 */
function parseEvent(block) {
  const data = [];
  let id = null;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return data.length ? { id, record: JSON.parse(data.join("\n")) } : null;
}

/**
 * The records of an SSE response, read through fetch streaming: EventSource cannot send
 * an Authorization header, nor a POST body.
 */
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = (buffer + value).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) yield event;
    }
  }
}

// ---------------------------------------------------------------- errors on the page

function clearErrors() {
  for (const element of document.querySelectorAll(".field-error, .form-error")) {
    element.textContent = "";
    element.hidden = true;
  }
  for (const element of document.querySelectorAll("[aria-invalid]")) {
    element.removeAttribute("aria-invalid");
  }
}

/** The element to focus for a field: a control, or the checked radio of a group. */
function controlFor(field) {
  const element = $(field);
  if (!element || element.closest("[hidden]")) return null;
  if (element.tagName === "FIELDSET") return element.querySelector("input:checked") || element.querySelector("input");
  return element;
}

function showFieldError(field, message) {
  const slot = $(`err-${field}`);
  const control = controlFor(field);
  if (!slot || !control) return false;
  slot.textContent = message;
  slot.hidden = false;
  $(field).setAttribute("aria-invalid", "true");
  control.focus();
  return true;
}

function showFormError(message) {
  const slot = $("err-form");
  slot.textContent = message;
  slot.hidden = false;
  slot.scrollIntoView({ block: "nearest" });
}

/** Put an error where the user will look for it: next to its field when it names one. */
function showError(error) {
  if (!(error instanceof ApiError)) {
    showFormError(`Could not reach the server (${error.message}).`);
    return;
  }
  if (error.status === 401) {
    showFieldError("api_key", error.message);
    return;
  }
  let message = error.message;
  if (error.retryAfter) message += ` Try again in ${error.retryAfter} s.`;
  const field = error.field === "feature" || error.field === "model" ? "feature" : error.field;
  if (!(field && showFieldError(field, message))) showFormError(message);
}

// ---------------------------------------------------------------- the form

function currentMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function checkedValue(name) {
  return document.querySelector(`input[name="${name}"]:checked`).value;
}

/** Show the controls of the chosen mode only; the others keep their values. */
function applyMode() {
  const motionOnly = $("model").value === "kling-ai/motion-control-v2.6";
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.disabled = motionOnly && radio.value !== "motion";
    if (motionOnly && radio.value === "motion") radio.checked = true;
  }
  const mode = currentMode();
  for (const element of document.querySelectorAll("[data-modes]")) {
    element.hidden = !element.dataset.modes.split(" ").includes(mode);
  }
}

/** The multipart body for the chosen mode: only the fields that mode uses. */
function collectBody() {
  const mode = currentMode();
  const body = new FormData();
  const prompt = $("prompt").value.trim();
  // An empty prompt is left out, so that the server says "prompt: is required" where needed.
  if (prompt) body.append("prompt", prompt);
  const negative = $("negative_prompt").value.trim();
  if (negative) body.append("negative_prompt", negative);
  for (const field of MODE_MEDIA[mode]) {
    const file = $(field).files[0];
    const link = $(`${field}-link`).value.trim();
    if (file) body.append(field, file, file.name);
    else if (link) body.append(field, link);
  }
  body.append("aspect_ratio", checkedValue("aspect_ratio"));
  body.append("quality", checkedValue("quality"));
  if (mode === "motion") {
    body.append("feature", "motion-control");
    body.append("character_orientation", checkedValue("character_orientation"));
    body.append("keep_original_sound", String($("keep_original_sound").checked));
  } else {
    body.append("duration", checkedValue("duration"));
    body.append("generate_audio", String($("generate_audio").checked));
  }
  const seed = $("seed").value.trim();
  if (seed) body.append("seed", seed);
  return body;
}

// ---------------------------------------------------------------- drop zones

const previewUrls = new Map();

function showPreview(zone, file) {
  const preview = zone.querySelector(".preview");
  const media = preview.querySelector("img, video");
  const field = zone.dataset.field;
  if (previewUrls.has(field)) URL.revokeObjectURL(previewUrls.get(field));
  previewUrls.delete(field);
  if (!file) {
    preview.hidden = true;
    media.removeAttribute("src");
    return;
  }
  const url = URL.createObjectURL(file);
  previewUrls.set(field, url);
  media.src = url;
  if (media.tagName === "IMG") media.alt = `Preview of ${file.name}`;
  else media.setAttribute("aria-label", `Preview of ${file.name}`);
  preview.hidden = false;
}

function wireDropZone(zone) {
  const input = zone.querySelector('input[type="file"]');
  input.addEventListener("change", () => showPreview(zone, input.files[0]));
  zone.querySelector(".clear-file").addEventListener("click", () => {
    input.value = "";
    showPreview(zone, null);
    input.focus();
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault(); // without this the browser opens the dropped file instead
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (!file) return;
    // One file only, set through a DataTransfer as the input's FileList cannot be built.
    const transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    input.dispatchEvent(new Event("change"));
  });
}

// ---------------------------------------------------------------- the current job

/** The job being followed: its id, and the controller that stops reading its stream. */
let job = null;

function resetJob() {
  $("result").hidden = true;
  $("player").removeAttribute("src");
  $("player").load();
  $("job-id").textContent = "";
  showProgress(0);
}

function showProgress(percent) {
  $("progress").value = percent;
  $("progress").textContent = `${percent}%`;
  $("progress-text").textContent = `${percent}%`;
}

function describeStatus(record) {
  if (record.status === "IN_QUEUE" && Number.isInteger(record.queue_position)) {
    const ahead = record.queue_position;
    return ahead === 0 ? "Next in the queue" : `Waiting in the queue: ${ahead} ahead`;
  }
  if (record.status === "FAILED") return `Failed: ${record.message || record.code || "unknown error"}`;
  return STATUS_WORDS[record.status] || record.status;
}

function showRecord(record) {
  $("status-text").textContent = record.status;
  $("status-detail").textContent = describeStatus(record);
  $("job-id").textContent = record.id;
  showProgress(Math.max(0, Math.min(100, Math.round(record.progress ?? 0))));
  $("cancel").disabled = !(job && job.id === record.id && !TERMINAL.has(record.status));
  if (record.status === "COMPLETED") showResult(record);
}

function showResult(record) {
  const video = record.data && (record.data.video || record.data.videos[0]);
  if (!video) return;
  if (!video.url) {
    // Retention deleted the file: the record keeps its metadata and says when.
    $("status-detail").textContent = `The video file expired (${video.expired_at}).`;
    return;
  }
  const player = $("player");
  if (player.getAttribute("src") !== video.url) player.src = video.url;
  player.setAttribute("aria-label", `Generated video: ${record.input?.prompt || record.id}`);
  $("fact-width").textContent = video.width;
  $("fact-height").textContent = video.height;
  $("fact-duration").textContent = Number(video.duration).toFixed(2);
  $("fact-audio").textContent = video.has_audio ? "yes" : "no";
  $("fact-usage").textContent = record.usage ? String(record.usage.total) : "—";
  $("download").href = video.url;
  $("download").setAttribute("download", video.file_name || `${record.id}.mp4`);
  $("result").hidden = false;
}

/** Read a stream to its end; returns the last record and the last event id seen. */
async function readStream(response, state) {
  for await (const event of sseEvents(response)) {
    if (event.id !== null) state.lastEventId = event.id;
    state.record = event.record;
    if (job && !job.id) {
      job.id = event.record.id;
      refreshGallery(); // the new job shows in the gallery while it runs
    }
    showRecord(event.record);
  }
  return state;
}

/**
 * Follow a job to its end. A connection that drops early (a proxy's idle timeout, a
 * network change) is picked up where it stopped: the server keeps the events.
 */
async function followJob(response, signal) {
  const state = await readStream(response, { record: null, lastEventId: null });
  for (let tries = 1; state.record && !TERMINAL.has(state.record.status); tries++) {
    if (tries > RESUME_TRIES) throw new Error("the event stream kept closing early");
    await new Promise((resolve) => setTimeout(resolve, 500 * tries));
    const headers = state.lastEventId ? { "Last-Event-ID": state.lastEventId } : {};
    const next = await api(`generation/${state.record.id}/events`, { headers, signal });
    if (!next.ok) throw await errorFrom(next);
    await readStream(next, state);
  }
  return state.record;
}

/** Stop reading the job followed so far; the job itself goes on (cancel is separate). */
function leaveJob() {
  if (job) job.controller.abort();
  job = null;
  $("cancel").disabled = true;
}

async function watch(path, init) {
  leaveJob();
  const controller = new AbortController();
  const mine = { id: init.id || null, controller };
  job = mine;
  try {
    const response = await api(path, { ...init, signal: controller.signal });
    if (!response.ok) throw await errorFrom(response);
    resetJob();
    await followJob(response, controller.signal);
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
  } finally {
    if (job === mine) job = null;
    if (!job) $("cancel").disabled = true;
    refreshCredits();
    refreshGallery();
  }
}

async function onGenerate(event) {
  event.preventDefault();
  clearErrors();
  if (!storedKey()) {
    showFieldError("api_key", "api_key: paste an API key first");
    return;
  }
  const submit = $("submit");
  submit.disabled = true;
  try {
    await watch(`generation/sse/${$("model").value}`, { method: "POST", body: collectBody() });
  } finally {
    submit.disabled = false;
  }
}

async function onCancel() {
  if (!job || !job.id) return;
  $("cancel").disabled = true;
  try {
    await apiJson(`generation/${job.id}/cancel`, { method: "POST" });
    // The stream brings the CANCELED record; nothing more to do here.
  } catch (error) {
    // 409: it finished first, and the stream shows how.
    if (!(error instanceof ApiError && error.status === 409)) showError(error);
  }
}

// ---------------------------------------------------------------- credits and gallery

async function refreshCredits() {
  const total = $("credits-total");
  if (!storedKey()) {
    total.textContent = "—";
    return;
  }
  try {
    const credits = await apiJson("credits");
    total.textContent = `${credits.total} (subscription ${credits.subscription}, permanent ${credits.permanent})`;
  } catch (error) {
    total.textContent = "—";
    if (error instanceof ApiError && error.status === 401) showFieldError("api_key", error.message);
  }
}

function galleryItem(record) {
  const video = record.status === "COMPLETED" && record.data ? record.data.video : null;
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "card";
  button.dataset.id = record.id;
  if (video && video.url) {
    const thumb = document.createElement("video");
    thumb.preload = "metadata";
    thumb.muted = true;
    // A fragment past 0 makes the browser paint a frame instead of an empty box.
    thumb.src = `${video.url}#t=0.5`;
    thumb.setAttribute("aria-hidden", "true");
    button.append(thumb);
  } else {
    const placeholder = document.createElement("span");
    placeholder.className = "thumb-placeholder";
    placeholder.textContent = record.status;
    button.append(placeholder);
  }
  const status = document.createElement("span");
  status.className = `badge status-${record.status.toLowerCase()}`;
  status.textContent = record.status;
  const prompt = document.createElement("span");
  prompt.className = "card-prompt";
  prompt.textContent = record.input?.prompt || "(no prompt)";
  button.append(status, prompt);
  button.addEventListener("click", () => openRecord(record));
  item.append(button);
  return item;
}

/** A gallery card was chosen: play a finished job, or follow one that still runs. */
function openRecord(record) {
  clearErrors();
  if (TERMINAL.has(record.status)) {
    leaveJob();
    resetJob();
    showRecord(record);
    $("job-heading").scrollIntoView({ block: "start" });
    if (record.status === "COMPLETED") $("player").focus();
    return;
  }
  watch(`generation/${record.id}/events`, { id: record.id });
}

function describeGallery(count) {
  if (count === 0) return "No generations in this workspace yet.";
  const which = count === 1 ? "The only generation so far" : `The ${count} most recent, newest first`;
  return `${which}. Choose one to open it.`;
}

async function refreshGallery() {
  const list = $("gallery");
  const note = $("gallery-note");
  if (!storedKey()) {
    list.replaceChildren();
    note.textContent = "Use a key to see this workspace's generations.";
    return;
  }
  try {
    const page = await apiJson(`generations?limit=${GALLERY_SIZE}`);
    list.replaceChildren(...page.items.map(galleryItem));
    note.textContent = describeGallery(page.items.length);
  } catch (error) {
    note.textContent = `Could not load the gallery: ${error.message}`;
  }
}

// ---------------------------------------------------------------- key and readiness

async function onKey(event) {
  event.preventDefault();
  clearErrors();
  const key = $("api_key").value.trim();
  if (!key) {
    showFieldError("api_key", "api_key: paste an API key first");
    return;
  }
  localStorage.setItem(KEY_STORAGE, key);
  await Promise.all([refreshCredits(), refreshGallery()]);
}

function onForget() {
  localStorage.removeItem(KEY_STORAGE);
  $("api_key").value = "";
  clearErrors();
  refreshCredits();
  refreshGallery();
  $("api_key").focus();
}

/** The tiny profile runs random weights: say so before anyone wonders about the noise. */
async function checkReadiness() {
  let report;
  try {
    report = await (await fetch(READYZ)).json();
  } catch {
    return;
  }
  const lines = [];
  if (report.warning) lines.push(["Random-weights profile: videos are noise (for tests)", report.warning]);
  if (report.status !== "ready") lines.push(["Service not ready", JSON.stringify(report)]);
  if (!lines.length) return;
  $("banner-title").textContent = lines.map(([title]) => title).join(" · ");
  $("banner-detail").textContent = lines.map(([, detail]) => detail).join(" · ");
  $("banner").hidden = false;
}

function start() {
  $("api_key").value = storedKey();
  $("key-form").addEventListener("submit", onKey);
  $("forget-key").addEventListener("click", onForget);
  $("generate").addEventListener("submit", onGenerate);
  $("cancel").addEventListener("click", onCancel);
  $("refresh-gallery").addEventListener("click", refreshGallery);
  $("model").addEventListener("change", applyMode);
  for (const radio of document.querySelectorAll('input[name="mode"]')) {
    radio.addEventListener("change", applyMode);
  }
  for (const zone of document.querySelectorAll(".drop")) wireDropZone(zone);
  applyMode();
  checkReadiness();
  refreshCredits();
  refreshGallery();
}

start();
