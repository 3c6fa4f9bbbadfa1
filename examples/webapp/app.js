"use strict";
// A web page that queries a Clipper app directly from the browser (the query API answers
// cross-origin requests from origins in CLIPPER_CORS_ALLOWED_ORIGINS).
//
// ?api=<query API address> (default: this host, port 1337) &app=<app name> (default digits)

const params = new URLSearchParams(location.search);
const API = (params.get("api") || `${location.protocol}//${location.hostname}:1337`)
  .replace(/\/$/, "");
const APP = params.get("app") || "digits";

const pad = document.getElementById("pad");
const input = document.getElementById("input");
const ink = pad.getContext("2d");
let lastInput = null;  // the values of the last prediction, for feedback

// -- drawing ------------------------------------------------------------------------------

ink.lineWidth = 22;
ink.lineCap = "round";
ink.lineJoin = "round";
let drawing = false;

function point(event) {
  const box = pad.getBoundingClientRect();
  return [event.clientX - box.left, event.clientY - box.top];
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  ink.beginPath();
  ink.moveTo(...point(event));
  ink.lineTo(...point(event));
  ink.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  ink.lineTo(...point(event));
  ink.stroke();
});
pad.addEventListener("pointerup", () => {
  drawing = false;
  input.value = formatInput(toDigitImage());
});

document.getElementById("clear").addEventListener("click", () => {
  ink.clearRect(0, 0, pad.width, pad.height);
  input.value = "";
});

// The drawing as scikit-learn's digits are made: the ink's bounding box, scaled to fit
// 32×32 (centred, keeping the aspect ratio), then 4×4 blocks counted into 8×8 values 0–16.
function toDigitImage() {
  const pixels = ink.getImageData(0, 0, pad.width, pad.height).data;
  let [left, top, right, bottom] = [pad.width, pad.height, -1, -1];
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (pixels[(y * pad.width + x) * 4 + 3] > 0) {
        left = Math.min(left, x); right = Math.max(right, x);
        top = Math.min(top, y); bottom = Math.max(bottom, y);
      }
    }
  }
  const values = new Array(64).fill(0);
  if (right < 0) return values;
  const small = document.createElement("canvas");
  small.width = small.height = 32;
  const size = Math.max(right - left, bottom - top) + 1;
  const scale = 28 / size;  // a 2-pixel margin, as in the data set
  const [width, height] = [(right - left + 1) * scale, (bottom - top + 1) * scale];
  small.getContext("2d").drawImage(pad, left, top, right - left + 1, bottom - top + 1,
    (32 - width) / 2, (32 - height) / 2, width, height);
  const alpha = small.getContext("2d").getImageData(0, 0, 32, 32).data;
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      if (alpha[(y * 32 + x) * 4 + 3] > 127) values[Math.floor(y / 4) * 8 + Math.floor(x / 4)] += 1;
    }
  }
  return values;
}

function formatInput(values) {
  const rows = [];
  for (let row = 0; row < 8; row++) rows.push(values.slice(row * 8, row * 8 + 8).join(", "));
  return rows.join(",\n");
}

function parseInput() {
  const values = input.value.split(/[\s,]+/).filter(Boolean).map(Number);
  if (values.length !== 64 || values.some((v) => !Number.isFinite(v))) {
    throw new Error(`the input needs 64 numbers, it has ${values.length}`);
  }
  return values;
}

// -- the query API ---------------------------------------------------------------------------

async function post(path, body) {
  const response = await fetch(`${API}/${APP}/${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const reply = await response.json();  // errors are JSON too: {"error", "cause"}
  if (!response.ok) throw new Error(`${reply.error}: ${reply.cause}`);
  return reply;
}

async function predict() {
  showError("");
  try {
    const values = input.value.trim() ? parseInput() : toDigitImage();
    input.value = formatInput(values);
    const started = performance.now();
    const reply = await post("predict", { input: values });
    lastInput = values;
    showPrediction(reply, performance.now() - started);
  } catch (error) {
    showError(error.message);
  }
}

function showPrediction(reply, elapsedMs) {
  document.getElementById("prediction").textContent = String(reply.output);
  const details = document.getElementById("details");
  details.textContent = reply.default
    ? `Default answer (${reply.default_explanation}).`
    : `Answered by ${reply.models.join(", ")} in ${elapsedMs.toFixed(0)} ms ` +
      `(query ${reply.query_id}).`;
  details.dataset.models = reply.models.join(",");
  document.getElementById("feedback").hidden = reply.default;
  document.getElementById("feedback-result").textContent = "";
}

async function sendFeedback(label) {
  try {
    // Clipper's feedback: the input and its true label; every linked model is judged on it.
    const reply = await post("update", { uid: 0, input: lastInput, label });
    const rewards = Object.entries(reply.rewards)
      .map(([model, reward]) => `${model}: ${reward}`).join(", ");
    document.getElementById("feedback-result").textContent =
      `Thanks! Rewards: ${rewards || "none"} (policy ${reply.policy}).`;
  } catch (error) {
    showError(error.message);
  }
}

function showError(message) {
  document.getElementById("error").textContent = message;
}

document.getElementById("predict").addEventListener("click", predict);
document.getElementById("correct").addEventListener("click", () =>
  sendFeedback(Number(document.getElementById("prediction").textContent)));
for (let digit = 0; digit <= 9; digit++) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = String(digit);
  button.className = "label";
  button.addEventListener("click", () => sendFeedback(digit));
  document.getElementById("labels").append(button);
}
document.getElementById("app-name").textContent = APP;
document.getElementById("api-url").textContent = API;
