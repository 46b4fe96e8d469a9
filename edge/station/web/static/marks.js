// Rangers' marks on any page (templates/marks.html): the buttons of a form.review send a mark or "on the way",
// and every badge of that event on the page shows the answer. Text from the network goes in as text only.
"use strict";

// "5 min ago" for an ISO time, in the words of the station's pages (edge.station.table.age).
function edgeAgo(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return "";
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
    if (seconds >= size) return `${Math.round(seconds / size)} ${unit} ago`;
  }
  return `${Math.round(seconds)} s ago`;
}

function edgeElement(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = String(text);
  return element;
}

function edgeTime(iso) {
  const time = edgeElement("time", null, edgeAgo(iso));
  time.dateTime = iso;
  time.title = iso;
  time.dataset.ago = iso;
  return time;
}

function edgeSameEvent(element, box, id) {
  return element.dataset.box === box && element.dataset.id === id;
}

// The mark and acknowledgement of one event (fields as in edge.station.reviews.MARK_COLUMNS), on every badge.
function edgeShowMark(box, id, state) {
  for (const badge of document.querySelectorAll(".mark-badge")) {
    if (!edgeSameEvent(badge, box, id)) continue;
    const part = badge.querySelector(".mark-part");
    if (state.mark) {
      const by = edgeElement("span", "mark-by", `by ${state.mark_user}, `);
      by.append(edgeTime(state.mark_utc));
      part.replaceChildren(edgeElement("span", `badge mark-${state.mark}`, state.mark), " ", by);
      if (state.mark_note) part.append(" ", edgeElement("q", "mark-note", state.mark_note));
    } else {
      part.replaceChildren(edgeElement("span", "badge unreviewed", "not reviewed"));
    }
  }
}

function edgeShowAcknowledgement(box, id, state) {
  if (!state.ack_user) return;
  for (const badge of document.querySelectorAll(".mark-badge")) {
    if (!edgeSameEvent(badge, box, id)) continue;
    const since = edgeElement("span", "ack-by", "since ");
    since.append(edgeTime(state.ack_utc));
    const part = badge.querySelector(".ack-part");
    part.replaceChildren(edgeElement("span", "badge ack", `${state.ack_user} is on the way`), " ", since);
    if (state.ack_note) part.append(" ", edgeElement("q", "ack-note", state.ack_note));
  }
}

async function edgeReview(button) {
  const form = button.closest("form.review");
  const status = form.querySelector(".review-status");
  const note = form.elements.note;
  const fields = { box: form.dataset.box, id: form.dataset.id, note: note.value };
  status.textContent = "…";
  try {
    if (button.dataset.acknowledge !== undefined) {
      const taken = await postForm("/api/acknowledgements", fields);
      edgeShowAcknowledgement(fields.box, fields.id, taken);
      status.textContent = taken.new ? "taken on" : `${taken.ack_user} had taken it on already`;
    } else {
      const marked = await postForm("/api/marks", { ...fields, verdict: button.dataset.verdict });
      edgeShowMark(fields.box, fields.id, marked);
      status.textContent = "saved";
    }
    note.value = "";
  } catch (error) {
    status.textContent = error.message;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("form.review button");
  if (button) edgeReview(button);
});

document.addEventListener("submit", (event) => {
  if (event.target.matches("form.review")) event.preventDefault(); // Enter in the note field
});

// Relative times stay true while the page is open.
setInterval(() => {
  for (const time of document.querySelectorAll("[data-ago]")) time.textContent = edgeAgo(time.dataset.ago);
}, 30000);
