// The detections page: a clip's play link plays it in the page, in one player that moves to that row.
"use strict";

document.addEventListener("click", (event) => {
  const link = event.target.closest("a.play");
  if (!link) {
    return;
  }
  event.preventDefault();
  let player = document.getElementById("clip-player");
  if (!player) {
    player = document.createElement("audio");
    player.id = "clip-player";
    player.controls = true;
  }
  if (player.dataset.src !== link.href) {
    player.src = link.href;
    player.dataset.src = link.href;
  }
  link.closest("td").append(player);
  player.play().catch(() => {}); // a clip the station no longer has: the player shows it cannot play
});
