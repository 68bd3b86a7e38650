// The example's script: marks the page as scripted and fills in the status line.
import { describe } from "./greeting.js";

function start() {
  document.documentElement.classList.add("js-ready");
  const status = document.getElementById("js-status");
  if (status) status.textContent = describe();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
