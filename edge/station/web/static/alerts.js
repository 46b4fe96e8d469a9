// The alerts page, live: each alert the feed (/api/alerts/stream) brings is added at the top, highlighted and
// announced by a short tone; a change of one shown (its clip, its mark, who is on the way) updates its card.
// Cards are copies of the page's <template>, filled with textContent and attributes: never HTML from the feed.
"use strict";

(() => {
  const state = document.getElementById("feed-state");
  if (!state) return; // an older page of alerts: not live
  const list = document.getElementById("alerts");
  const template = document.getElementById("alert-template");
  const onlyBox = state.dataset.box;
  const onlyId = state.dataset.id; // the page of one alert

  for (const card of list.querySelectorAll(".alert-card")) card.dataset.shownMs = String(Date.now());

  function cardOf(alert) {
    for (const card of list.querySelectorAll(".alert-card")) {
      if (card.dataset.box === alert.box && card.dataset.id === alert.id) return card;
    }
    return null;
  }

  function setLink(element, attribute, value) {
    if (value && element.getAttribute(attribute) !== value) element.setAttribute(attribute, value);
  }

  function fill(card, alert) {
    for (const element of card.querySelectorAll("[data-field]")) {
      const value = element.dataset.field === "top_khz" ? alert.clip && alert.clip.top_khz : alert[element.dataset.field];
      element.textContent = value === null || value === undefined ? "" : String(value);
    }
    const heard = card.querySelector("[data-ago]");
    heard.dataset.ago = alert.heard_utc;
    heard.textContent = edgeAgo(alert.heard_utc);
    card.querySelector("time[data-field=heard_text]").dateTime = alert.heard_utc;
    card.dataset.detectedUtc = alert.detected_utc || "";
    const media = card.querySelector(".clip-media");
    media.hidden = !alert.clip;
    if (alert.clip) {
      setLink(card.querySelector("audio"), "src", alert.clip.audio); // unchanged: a playing clip goes on
      setLink(card.querySelector(".spectrogram img"), "src", alert.clip.image);
      setLink(card.querySelector("a.download"), "href", alert.clip.download);
    }
    edgeShowMark(alert.box, alert.id, alert);
    edgeShowAcknowledgement(alert.box, alert.id, alert);
  }

  let lastTone = 0;

  function tone() {
    if (Date.now() - lastTone < 2000) return; // alerts that come together: one tone
    lastTone = Date.now();
    try {
      const context = new AudioContext();
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, context.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, context.currentTime + 0.4);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start();
      oscillator.stop(context.currentTime + 0.4);
      oscillator.onended = () => context.close();
    } catch (error) {
      // no sound before the visitor has touched the page: the highlight is there
    }
  }

  function add(alert) {
    const card = template.content.firstElementChild.cloneNode(true);
    for (const element of [card, ...card.querySelectorAll(".mark-badge, form.review")]) {
      element.dataset.box = alert.box;
      element.dataset.id = alert.id;
    }
    list.prepend(card);
    fill(card, alert);
    card.classList.add("fresh");
    card.dataset.shownMs = String(Date.now());
    document.getElementById("no-alerts").hidden = true;
    tone();
  }

  function received(message) {
    const alert = JSON.parse(message.data);
    if ((onlyBox && alert.box !== onlyBox) || (onlyId && alert.id !== onlyId)) return;
    const card = cardOf(alert);
    if (card) fill(card, alert);
    else add(alert);
  }

  // EventSource comes back by itself after a lost connection, from its last event's id. A refused stream (503:
  // the station serves as many live pages as it keeps) or any answer that is no stream closes it for good: the
  // page then tries again itself, later and later (with some randomness, so that many pages do not come back
  // at once), from the last cursor it was given.
  const live = state.textContent;
  let cursor = state.dataset.cursor;
  let pauseMs = 5000;

  function connect() {
    const source = new EventSource(`/api/alerts/stream?after=${encodeURIComponent(cursor)}`);
    source.onmessage = (message) => {
      if (message.lastEventId) cursor = message.lastEventId;
      received(message);
    };
    source.addEventListener("reload", () => window.location.reload());
    source.onopen = () => {
      state.textContent = live;
      state.classList.remove("offline");
      pauseMs = 5000;
    };
    source.onerror = () => {
      state.classList.add("offline");
      if (source.readyState !== EventSource.CLOSED) {
        state.textContent = "Connection to the station lost: reconnecting…";
        return;
      }
      const wait = pauseMs * (0.5 + Math.random());
      pauseMs = Math.min(pauseMs * 2, 300000);
      state.textContent = `Live updates paused: trying again in ${Math.round(wait / 1000)} s…`;
      setTimeout(connect, wait);
    };
  }

  connect();
})();
