// The drawing page: the pad's drawing (pad.js) is sent to POST /predict?explain=1 after every stroke;
// photos are sent the same way. Only the answer to the newest drawing is ever shown:
// a new drawing aborts the request in flight, and an answer for an older drawing is dropped.
"use strict";

(() => {
  const SHRINK_SIDES = [2048, 1600, 1200, 800];  // photos over the service's byte limit are reduced to fit

  const $ = (id) => document.getElementById(id);
  const pad = $("pad"), photo = $("photo"), prediction = $("prediction"), confidence = $("confidence");
  const seen = $("seen"), seenFigure = seen.closest("figure"), status = $("status"), errorBox = $("error");
  const warningList = $("warnings");
  const rows = Array.from(document.querySelectorAll("#bars li"));

  let drawing = 0;         // number of the newest drawing or photo; answers for older ones are dropped
  let inflight = null;     // AbortController of the request in flight
  let maxBody = 1 << 20;   // updated from /v1/model
  const urls = { photo: null, seen: null };

  const drawingPad = window.mnistlitePad(pad, {
    onStart: () => {
      if (!photo.hidden) clearAll();  // drawing after a photo starts a new drawing
    },
    onEnd: submitDrawing,
  });
  pad.addEventListener("keydown", (e) => {
    if (e.key === "Delete" || e.key === "Backspace" || e.key === "Escape") {
      e.preventDefault();
      clearAll();
    }
  });

  // ---- sending -------------------------------------------------------------------------------
  function newDrawing() {
    drawing += 1;
    prediction.dataset.latest = String(drawing);  // data-drawing says which drawing data-class answers
    if (inflight) inflight.abort();
    inflight = null;
    prediction.removeAttribute("data-class");  // no answer is the answer to this drawing yet
    prediction.dataset.state = "pending";
    prediction.setAttribute("aria-busy", "true");
    errorBox.hidden = true;
    return drawing;
  }

  function submitDrawing() {
    const n = newDrawing();
    status.textContent = "Reading your drawing\u2026";
    pad.toBlob((blob) => {
      if (n === drawing && blob) send(blob, "drawing.png", n, "");
    }, "image/png");
  }

  async function send(blob, filename, n, note) {
    const ctl = new AbortController();
    inflight = ctl;
    const form = new FormData();
    form.append("file", blob, filename);
    const started = performance.now();
    let resp, body = null;
    try {
      resp = await fetch("/predict?explain=1", {
        method: "POST", body: form, signal: ctl.signal, cache: "no-store",
        headers: { Accept: "application/json" },
      });
      body = await resp.json().catch(() => null);
    } catch (err) {
      if (ctl.signal.aborted || n !== drawing) return;  // superseded by a newer drawing
      showError(0, "The service could not be reached", String((err && err.message) || err));
      return;
    } finally {
      if (inflight === ctl) inflight = null;
    }
    if (n !== drawing) return;  // an answer to an older drawing: never shown
    if (!resp.ok || !body) {  // a refusal, or something that is not the service's JSON (a proxy's page)
      const title = (body && body.title) || `HTTP ${resp.status}`;
      showError(resp.status, title, (body && (body.description || body.error)) || resp.statusText || "");
      return;
    }
    showAnswer(body, n, Math.round(performance.now() - started), note);
  }

  // ---- the answer ----------------------------------------------------------------------------
  const percent = (p) => `${(100 * p).toFixed(p >= 0.9995 || p < 0.0005 ? 0 : 1)}%`;

  function setBars(probabilities, top) {
    rows.forEach((li, d) => {
      const p = probabilities ? Number(probabilities[d]) || 0 : 0;
      li.querySelector(".fill").style.width = `${(100 * p).toFixed(2)}%`;
      li.querySelector(".pct").textContent = probabilities ? percent(p) : "\u2013";
      li.classList.toggle("top", d === top);
    });
  }

  function setSeen(b64) {
    if (urls.seen) URL.revokeObjectURL(urls.seen);
    urls.seen = null;
    seen.hidden = !b64;
    seenFigure.hidden = !b64;
    if (!b64) {
      seen.removeAttribute("src");
      return;
    }
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    urls.seen = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
    seen.src = urls.seen;
  }

  // An abstention in words: "Not sure: 4 or 9?" (the two likeliest digits) or "not a digit".
  function abstention(a) {
    if (a.abstain_reason === "unsure") {
      const order = a.probabilities.map((p, d) => [Number(p), d]).sort((x, y) => y[0] - x[0]);
      const [first, second] = [order[0][1], order[1][1]].sort((x, y) => x - y);
      return `Not sure: ${first} or ${second}?`;
    }
    return "That doesn't look like a digit";
  }

  function showAnswer(a, n, ms, note) {
    const cls = a.predicted_class;
    prediction.textContent = a.abstain ? abstention(a) : String(cls);
    if (a.abstain) prediction.dataset.abstain = a.abstain_reason || "unsure";
    else delete prediction.dataset.abstain;
    prediction.title = a.abstain ? (a.reason || "") : "";
    prediction.dataset.class = String(cls);
    prediction.dataset.drawing = String(n);
    prediction.dataset.state = "done";
    prediction.removeAttribute("aria-busy");
    confidence.textContent = a.abstain ? (a.abstain_reason === "unsure" ? `${percent(a.confidence)} at most`
      : "Try drawing one digit, large, in the middle.") : `${percent(a.confidence)} confident`;
    setBars(a.probabilities, cls);
    setSeen(a.preprocessed_png);
    showWarnings(a.warnings || []);
    status.textContent = `${note ? note + " " : ""}Answered in ${ms} ms by model ${a.model_version}.`;
  }

  // No answer on show: "?", a note instead of the confidence, no bars, no 28x28 view, no warnings.
  function clearAnswer(state, note) {
    prediction.textContent = "?";
    delete prediction.dataset.abstain;
    prediction.removeAttribute("data-class");
    prediction.removeAttribute("aria-busy");
    prediction.dataset.state = state;
    confidence.textContent = note;
    setBars(null, -1);
    setSeen(null);
    showWarnings([]);
    status.textContent = "";
  }

  function showError(code, title, description) {
    clearAnswer("error", "No answer.");
    errorBox.replaceChildren();
    const strong = document.createElement("strong");
    strong.textContent = code ? `${title} (${code})` : title;
    errorBox.append(strong, document.createTextNode(description));
    errorBox.hidden = false;
  }

  // The detector's reasons, e.g. "noise: 61% mid-gray pixels (digits: < 17%)", said plainly; the
  // exact reason stays underneath for whoever wants it.
  const PLAIN = [
    [/^blank/, "The picture looks empty: there is hardly any ink in it."],
    [/border/, "The ink runs to the edge of the picture: the digit may be cut off, or the picture holds more than one digit."],
    [/mid-gray|faint gray/, "Much of the picture is grey rather than ink or paper, so it looks more like noise or a shadow than a digit."],
    [/background/, "There is more ink than paper: this does not look like a single handwritten digit."],
    [/solid strokes/, "The strokes are faint: no part of them is solid ink."],
    [/isolated/, "There are specks scattered around the digit, like noise or dust."],
    [/edges/, "The strokes are ragged, like noise rather than a pen line."],
  ];

  function showWarnings(warnings) {
    warningList.replaceChildren();
    for (const w of warnings) {
      const plain = (PLAIN.find(([re]) => re.test(w)) || [null, "This does not look like a handwritten digit."])[1];
      const li = document.createElement("li");
      const detail = document.createElement("small");
      detail.textContent = `Detector: ${w}`;
      li.append(document.createTextNode(`${plain} The answer may mean little. `), detail);
      warningList.append(li);
    }
    warningList.hidden = warnings.length === 0;
  }

  function resetAnswer() {
    clearAnswer("empty", "Draw a digit to start.");
    prediction.removeAttribute("data-drawing");
    errorBox.hidden = true;
  }

  function hidePhoto() {
    photo.hidden = true;
    photo.removeAttribute("src");
    if (urls.photo) URL.revokeObjectURL(urls.photo);
    urls.photo = null;
  }

  function clearAll() {
    newDrawing();
    drawingPad.clear();
    hidePhoto();
    resetAnswer();
  }
  $("clear").addEventListener("click", () => {
    clearAll();
    pad.focus({ preventScroll: true });
  });

  // ---- photos --------------------------------------------------------------------------------
  const kb = (bytes) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`);

  async function shrink(file, limit) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);  // applies the EXIF orientation, as the service does
    } catch (_) {
      return null;  // a format this browser cannot read: send it as it is and let the service judge
    }
    for (const side of SHRINK_SIDES) {
      const k = Math.min(1, side / Math.max(bitmap.width, bitmap.height));
      const c = document.createElement("canvas");
      c.width = Math.max(1, Math.round(bitmap.width * k));
      c.height = Math.max(1, Math.round(bitmap.height * k));
      c.getContext("2d").drawImage(bitmap, 0, 0, c.width, c.height);
      const blob = await new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.92));
      if (blob && blob.size <= limit) {
        return { blob, note: `Your ${bitmap.width}\u00d7${bitmap.height} photo (${kb(file.size)}) was reduced to ` +
                             `${c.width}\u00d7${c.height} to fit the service's ${kb(maxBody)} limit.` };
      }
    }
    return null;
  }

  async function sendFile(input) {
    const file = input.files && input.files[0];
    input.value = "";  // choosing the same file again is a new photo too
    if (!file) return;
    const n = newDrawing();
    drawingPad.clear();
    hidePhoto();
    urls.photo = URL.createObjectURL(file);
    photo.src = urls.photo;
    photo.hidden = false;
    setSeen(null);
    status.textContent = `Reading your photo (${file.name || "photo"}, ${kb(file.size)})\u2026`;
    let blob = file, note = "";
    const limit = maxBody - 4096;  // room for the multipart envelope
    if (file.size > limit) {
      const small = await shrink(file, limit);
      if (small) ({ blob, note } = small);
    }
    if (n === drawing) send(blob, file.name || "photo", n, note);
  }
  for (const id of ["file", "camera"]) $(id).addEventListener("change", (e) => sendFile(e.target));
  // A file this browser cannot show (not an image, or a format it does not know) leaves the pad blank
  // rather than a broken-image icon; the service still gets it and says what it makes of it.
  photo.addEventListener("error", () => {
    if (photo.hasAttribute("src")) photo.hidden = true;
  });

  // ---- the model, for the footer -------------------------------------------------------------
  fetch("/v1/model", { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((m) => {
      const acc = m.training_metrics && m.training_metrics.test_accuracy;
      const accuracy = typeof acc === "number" ? `test accuracy ${(100 * acc).toFixed(2)}%`
                                               : "test accuracy not recorded in the model file";
      $("model-info").textContent = `Model ${m.name} ${m.version} (${(m.layer_sizes || []).join("-")}), ${accuracy}`;
      const limit = m.input && m.input.image && m.input.image.max_body_bytes;
      if (Number.isInteger(limit) && limit > 0) maxBody = limit;
    })
    .catch((err) => {
      $("model-info").textContent = `Model information unavailable (${err.message || err}).`;
    });

  resetAnswer();
})();
