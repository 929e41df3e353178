// Live updates for the kiosk dashboard: follows the server-sent event stream and rewrites table rows.
// Only textContent and element creation are used (never innerHTML), so kiosk-supplied strings stay text.
"use strict";
(function () {
  const table = document.getElementById("kiosks");
  if (!table || typeof EventSource === "undefined") { return; }
  const body = table.tBodies[0];
  const live = document.getElementById("live");

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function badge(status, label) { return el("span", "badge status-" + status, label); }

  function renderRow(row) {
    const tr = el("tr");
    tr.id = "kiosk-" + row.id;
    tr.dataset.kiosk = row.id;
    tr.dataset.status = row.status;
    const th = el("th");
    th.scope = "row";
    th.append(row.name, el("br"), el("span", "kid", row.id));
    const st = el("td", "status");
    st.append(badge(row.status, row.status_label));
    if (row.detail) { st.append(" ", el("span", "detail", row.detail)); }
    const rd = el("td", "readers");
    for (const r of row.readers) {
      const d = el("div", "reader");
      d.dataset.state = r.state;
      let t = r.name + ": " + r.state_label;
      if (r.card_pace) { t += " (" + r.card_pace + ")"; }
      if (r.reader_pace !== null) { t += " [PACE im Leser]"; }
      d.append(t);
      if (r.detail) { d.append(" ", el("span", "detail", r.detail)); }
      rd.append(d);
    }
    tr.append(th, st, rd, el("td", "seen", row.last_seen || "–"), el("td", "changed", row.changed_at || "–"));
    return tr;
  }

  function upsert(row) {
    const tr = renderRow(row);
    const old = document.getElementById("kiosk-" + row.id);
    if (old) { old.replaceWith(tr); } else { body.append(tr); }
  }

  let labels = {};

  function setCounts(counts) {
    const ul = document.getElementById("counts");
    if (!ul) { return; }
    ul.replaceChildren();
    for (const [word, n] of counts) {
      const li = el("li");
      li.dataset.status = word;
      li.append(badge(word, labels[word] || word), " " + n);
      ul.append(li);
    }
  }

  const source = new EventSource(table.dataset.eventsUrl);
  source.addEventListener("open", function () { if (live) { live.hidden = false; } });
  source.addEventListener("error", function () { if (live) { live.hidden = true; } });
  source.addEventListener("snapshot", function (ev) {
    const data = JSON.parse(ev.data);
    body.replaceChildren();
    for (const row of data.rows) { body.append(renderRow(row)); }
    labels = data.labels;
    setCounts(data.counts);
    const gen = document.getElementById("generated");
    if (gen) { gen.textContent = data.generated; gen.dateTime = data.generated; }
  });
  source.addEventListener("kiosk", function (ev) {
    const data = JSON.parse(ev.data);
    upsert(data.row);
    setCounts(data.counts);
  });
  source.addEventListener("seen", function (ev) {
    const data = JSON.parse(ev.data);
    const tr = document.getElementById("kiosk-" + data.id);
    const cell = tr ? tr.querySelector("td.seen") : null;
    if (cell) { cell.textContent = data.last_seen || "–"; }
  });
}());
