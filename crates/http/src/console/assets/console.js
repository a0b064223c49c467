// The orderly console's script: asks before a button marked data-confirm posts, and refreshes
// an element marked data-refresh from its URL every data-every milliseconds. The pages work
// without it (no confirmation, no live refresh).
"use strict";

document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

for (const live of document.querySelectorAll("[data-refresh]")) {
  const url = live.getAttribute("data-refresh");
  const every = Number(live.getAttribute("data-every")) || 5000;
  const refresh = async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", redirect: "manual" });
      if (response.type === "opaqueredirect" || response.status === 401) {
        window.location.assign("/console/sign-in");
        return;
      }
      if (response.ok) {
        live.innerHTML = await response.text();
        live.setAttribute("data-refreshed", new Date().toISOString());
      }
    } catch (_) {
      // The server is away for a moment: the figures shown stay until the next try.
    }
  };
  window.setInterval(refresh, every);
}
