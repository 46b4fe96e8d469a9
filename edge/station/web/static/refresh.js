// Pages a ranger leaves open (the boxes, a box's own page) refresh their figures by themselves: every
// element with data-refresh="SECONDS" and an id is replaced, in place, by the same element of a fresh copy of
// the page. The copy is rendered (and escaped) by the station like the page itself and parsed by DOMParser,
// which runs none of its scripts; no text of it goes through innerHTML. A hidden tab does not refresh.
"use strict";

(function () {
  const live = document.querySelectorAll("[data-refresh][id]");
  const note = document.getElementById("refreshed");
  if (!live.length) {
    return;
  }
  const seconds = Math.max(5, Number(live[0].dataset.refresh) || 15);
  let updated = new Date();
  let busy = false;

  function say(text, problem) {
    if (note) {
      note.textContent = text;
      note.classList.toggle("problem", problem);
    }
  }

  async function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok || new URL(response.url).pathname !== location.pathname) {
        throw new Error(response.ok ? "sign in again" : `${response.status} ${response.statusText}`);
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const old of document.querySelectorAll("[data-refresh][id]")) {
        const replacement = fresh.getElementById(old.id);
        if (replacement) {
          old.replaceWith(document.importNode(replacement, true));
        }
      }
      updated = new Date();
      say(`Updated ${updated.toLocaleTimeString()}.`, false);
    } catch (error) {
      say(`Not updated since ${updated.toLocaleTimeString()}: ${error.message || "the station does not answer"}.`, true);
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", refresh);
})();
