// The identify page: record from the microphone (or take a file), send it to /api/identify, list the answer.
// The recording is captured as PCM by an AudioWorklet and sent as a 16-bit WAV: what MediaRecorder makes
// (WebM/Opus, MP4/AAC) the station cannot decode. Answers are shown through textContent only.
"use strict";

(() => {
  const section = document.querySelector("section.identify");
  if (!section) return;
  const recordSeconds = Number(section.dataset.recordSeconds) || 15;
  const $ = (id) => document.getElementById(id);
  const recordButton = $("record");
  const stopButton = $("stop");
  const fileInput = $("file");
  const sendFileButton = $("send-file");
  const useLocation = $("use-location");
  const status = $("status");
  const playback = $("playback");
  const results = $("results");
  let recording = null;

  function say(text, problem = false) {
    status.textContent = text;
    status.classList.toggle("problem", problem);
  }

  function busy(on) {
    recordButton.disabled = on || !canRecord();
    sendFileButton.disabled = on;
  }

  function canRecord() {
    return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.AudioWorkletNode);
  }

  async function startRecording() {
    results.replaceChildren();
    playback.hidden = true;
    busy(true);
    say("Starting the microphone…");
    // The phone's voice processing (echo cancellation, noise suppression, gain) removes much of a bird's song.
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const context = new AudioContext();
    await context.audioWorklet.addModule("/static/identify-worklet.js");
    const source = context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(context, "capture");
    const limit = Math.round(recordSeconds * context.sampleRate);
    recording = { stream, context, node, blocks: [], samples: 0, limit };
    node.port.onmessage = (event) => {
      if (!recording) return;
      recording.blocks.push(event.data);
      recording.samples += event.data.length;
      say(`Recording… ${Math.floor(recording.samples / context.sampleRate)} s of ${recordSeconds} s`);
      if (recording.samples >= limit) stopRecording().catch(failed);
    };
    source.connect(node);
    node.connect(context.destination); // the processor writes no output: silence, but it keeps running
    stopButton.disabled = false;
    say(`Recording… 0 s of ${recordSeconds} s`);
  }

  async function stopRecording() {
    const done = recording;
    if (!done) return;
    recording = null;
    stopButton.disabled = true;
    done.node.port.onmessage = null;
    done.stream.getTracks().forEach((track) => track.stop());
    const rate = done.context.sampleRate;
    await done.context.close();
    const samples = joined(done.blocks, Math.min(done.samples, done.limit));
    if (samples.length < rate / 2) {
      busy(false);
      say("The recording is shorter than half a second: record a little longer.", true);
      return;
    }
    const wav = wavOf(samples, rate);
    if (playback.src) URL.revokeObjectURL(playback.src);
    playback.src = URL.createObjectURL(wav);
    playback.hidden = false;
    await identify(wav, "recording.wav");
  }

  function joined(blocks, length) {
    const samples = new Float32Array(length);
    let at = 0;
    for (const block of blocks) {
      if (at >= length) break;
      const part = block.subarray(0, length - at);
      samples.set(part, at);
      at += part.length;
    }
    return samples;
  }

  // Mono 16-bit PCM WAV.
  function wavOf(samples, rate) {
    const view = new DataView(new ArrayBuffer(44 + samples.length * 2));
    const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
    text(0, "RIFF");
    view.setUint32(4, 36 + samples.length * 2, true);
    text(8, "WAVE");
    text(12, "fmt ");
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // one channel
    view.setUint32(24, rate, true);
    view.setUint32(28, rate * 2, true);
    view.setUint16(32, 2, true);
    view.setUint16(34, 16, true);
    text(36, "data");
    view.setUint32(40, samples.length * 2, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i] || 0));
      view.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([view.buffer], { type: "audio/wav" });
  }

  function here() {
    return new Promise((resolve, reject) =>
      navigator.geolocation.getCurrentPosition(resolve, reject, { timeout: 20000, maximumAge: 600000 }),
    );
  }

  function today() {
    const now = new Date();
    const two = (n) => String(n).padStart(2, "0");
    return `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  }

  async function identify(blob, name) {
    busy(true);
    results.replaceChildren();
    const form = new FormData();
    form.append("file", blob, name);
    let located = false;
    if (useLocation.checked && navigator.geolocation) {
      say("Finding where you are…");
      try {
        const position = await here();
        form.append("latitude", String(position.coords.latitude));
        form.append("longitude", String(position.coords.longitude));
        form.append("date", today());
        located = true;
      } catch (error) {
        say(`No location (${error.message}): identifying without the range filter…`);
      }
    }
    if (!useLocation.checked || located) say("Identifying…");
    try {
      const response = await fetch("/api/identify", { method: "POST", body: form, credentials: "same-origin" });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
      show(data.species || [], located);
    } catch (error) {
      say(error.message, true);
    } finally {
      busy(false);
    }
  }

  function show(species, located) {
    if (!species.length) {
      say("No species recognised: try again closer to the animal, or for longer.");
      return;
    }
    say(`${species.length} species${located ? " expected here" : ""}, most confident first:`);
    for (const s of species) {
      const item = document.createElement("li");
      const common = document.createElement("span");
      common.className = "common";
      common.textContent = s.common_name;
      const scientific = document.createElement("span");
      scientific.className = "scientific";
      scientific.textContent = s.scientific_name;
      const confidence = document.createElement("span");
      confidence.className = "confidence";
      confidence.textContent = `${Math.round(s.confidence * 100)} %`;
      item.append(confidence, common, scientific); // floated right: first, so that it stays on the first line
      results.append(item);
    }
  }

  function failed(error) {
    if (recording) recording.stream.getTracks().forEach((track) => track.stop());
    recording = null;
    stopButton.disabled = true;
    busy(false);
    say(`The microphone could not be used: ${error.message}`, true);
  }

  recordButton.addEventListener("click", () => startRecording().catch(failed));
  stopButton.addEventListener("click", () => stopRecording().catch(failed));
  sendFileButton.addEventListener("click", () => {
    const file = fileInput.files[0];
    if (!file) {
      say("Choose a recording first.", true);
      return;
    }
    identify(file, file.name);
  });
  if (!canRecord()) $("no-microphone").hidden = false;
  busy(false);
})();
