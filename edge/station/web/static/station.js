// What every page shares: state-changing requests carry the session's CSRF token.
"use strict";

function csrfToken() {
  return document.body.dataset.csrf || "";
}

// fetch() with the CSRF header; throws an Error with the server's message when the answer is not OK.
async function postForm(url, fields) {
  const body = new URLSearchParams(fields);
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRF-Token": csrfToken() },
    body,
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error || `${response.status} ${response.statusText}`);
  }
  return data;
}
