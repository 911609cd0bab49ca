// The dashboard's live parts: a job page follows its job's event stream and swaps in the
// rows that changed (a playing video is left alone); the backends page refreshes itself.
"use strict";

async function fetchFragment(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (response.redirected && new URL(response.url).pathname === "/login") {
    window.location.assign(response.url);
    return null;
  }
  if (!response.ok) return null;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  return doc.body;
}

function updateRows(current, fresh) {
  for (const row of fresh.querySelectorAll("tr[data-scene]")) {
    const old = current.querySelector(`tr[data-scene="${CSS.escape(row.dataset.scene)}"]`);
    if (old && old.dataset.version !== row.dataset.version) old.replaceWith(document.importNode(row, true));
  }
}

function followJob(root) {
  let busy = false;
  let again = false;
  let finished = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const fresh = await fetchFragment(root.dataset.live);
      if (fresh) {
        root.querySelector("#summary").replaceWith(document.importNode(fresh.querySelector("#summary"), true));
        updateRows(root, fresh);
        finished = root.querySelector("#summary").dataset.finished === "true";
      }
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  };
  const events = new EventSource(root.dataset.events);
  for (const name of ["scene.succeeded", "scene.failed", "scene.cancelled"]) {
    events.addEventListener(name, refresh);
  }
  events.addEventListener("job.finished", () => { events.close(); refresh(); });
  // Moves that are not events (routed, running, the backlog's order) show within seconds.
  const timer = setInterval(() => {
    if (finished && events.readyState === EventSource.CLOSED) { clearInterval(timer); return; }
    refresh();
  }, 2000);
}

function refreshEvery(root, seconds) {
  setInterval(async () => {
    const fresh = await fetchFragment(root.dataset.live);
    if (fresh) root.innerHTML = fresh.innerHTML;
  }, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const job = document.getElementById("job-live");
  if (job) followJob(job);
  const backends = document.getElementById("backends-live");
  if (backends) refreshEvery(backends, 3);
});
