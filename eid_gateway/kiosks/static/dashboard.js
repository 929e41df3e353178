// Live kiosk dashboard: follows the server-sent event stream, shows every time in the staff browser's
// time zone with "vor N s", and keeps "Stand" live while the stream is open. Rows and the summary come
// from the server as HTML rendered by the same template as the page (kiosk-supplied strings escaped
// there); they are parsed with DOMParser, which runs no scripts: never innerHTML.
"use strict";
(function () {
  // the dashboard, or a kiosk's history (kiosk_history.html: local times only, no event stream)
  const table = document.getElementById("kiosks") || document.getElementById("history");
  if (!table) { return; }
  const body = table.tBodies[0];
  const live = document.getElementById("live");
  const generated = document.getElementById("generated");
  const lang = document.documentElement.lang === "en" ? "en-GB" : "de-DE";
  const texts = JSON.parse(table.dataset.texts || "{}");
  const format = new Intl.DateTimeFormat(lang, {dateStyle: "medium", timeStyle: "medium"});

  function ago(seconds) {
    const s = Math.max(0, Math.round(seconds));
    let key = "ago_s";
    let n = s;
    if (s >= 86400) { key = "ago_d"; n = Math.floor(s / 86400); }
    else if (s >= 3600) { key = "ago_h"; n = Math.floor(s / 3600); }
    else if (s >= 60) { key = "ago_min"; n = Math.floor(s / 60); }
    return (texts[key] || "{n}").replace("{n}", String(n));
  }

  function localize(root) {
    for (const t of root.querySelectorAll("time.ts")) {
      const d = new Date(t.dateTime);
      if (Number.isNaN(d.getTime())) { continue; }
      t.textContent = format.format(d);
      let rel = t.nextElementSibling;
      if (!rel || !rel.classList.contains("ago")) {
        rel = document.createElement("span");
        rel.className = "ago";
        t.after(rel);
      }
    }
    tick();
  }

  function tick() {
    const now = Date.now();
    if (generated && source && source.readyState === 1) {
      generated.dateTime = new Date(now).toISOString();
      generated.textContent = format.format(new Date(now));
    }
    for (const t of document.querySelectorAll("time.ts")) {
      const rel = t.nextElementSibling;
      const d = new Date(t.dateTime);
      if (rel && rel.classList.contains("ago") && !Number.isNaN(d.getTime())) {
        rel.textContent = " (" + ago((now - d.getTime()) / 1000) + ")";
      }
    }
  }

  function parse(html, wrap) {
    const doc = new DOMParser().parseFromString(wrap[0] + html + wrap[1], "text/html");
    return doc;
  }
  function parseRow(html) { return parse(html, ["<table><tbody>", "</tbody></table>"]).querySelector("tr"); }
  function parseCounts(html) { return parse(html, ["", ""]).getElementById("counts"); }

  function upsert(html) {
    const tr = parseRow(html);
    if (!tr) { return; }
    const old = document.getElementById(tr.id);
    if (old) { old.replaceWith(tr); } else { body.append(tr); }
    localize(tr);
  }

  function setCounts(html) {
    const ul = parseCounts(html);
    const old = document.getElementById("counts");
    if (ul && old) { old.replaceWith(ul); }
  }

  let source = null;
  localize(document);
  setInterval(tick, 1000);
  if (typeof EventSource === "undefined" || !table.dataset.eventsUrl) { return; }
  source = new EventSource(table.dataset.eventsUrl);
  source.addEventListener("open", function () { if (live) { live.hidden = false; } tick(); });
  source.addEventListener("error", function () { if (live) { live.hidden = true; } });
  source.addEventListener("snapshot", function (ev) {
    const data = JSON.parse(ev.data);
    body.replaceChildren();
    for (const html of data.rows) { const tr = parseRow(html); if (tr) { body.append(tr); } }
    setCounts(data.counts);
    localize(document);
  });
  source.addEventListener("kiosk", function (ev) {
    const data = JSON.parse(ev.data);
    upsert(data.row);
    setCounts(data.counts);
    tick();
  });
  source.addEventListener("seen", function (ev) {
    const data = JSON.parse(ev.data);
    const tr = document.getElementById("kiosk-" + data.id);
    const cell = tr ? tr.querySelector("td.seen") : null;
    if (!cell || !data.last_seen) { return; }
    const t = document.createElement("time");
    t.className = "ts";
    t.dateTime = data.last_seen;
    t.textContent = data.text;
    cell.replaceChildren(t);
    localize(cell);
  });
}());
