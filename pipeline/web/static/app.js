// The reid-stream browser view: polls the JSON API, shows MJPEG streams, sends actions (plain JS, no build).
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const q = (path) => path + (TOKEN ? (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN) : "");
const $ = (id) => document.getElementById(id);
let info = {mode: "live", actions: false}, lastSeq = 0, events = [], thumbTick = 0;
// kept across the once-a-second re-render: open visit lists, ticked visits, open evidence tables
const openVisits = new Set(), ticked = new Map(), openEvidence = new Set();

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
async function get(path) {
  const r = await fetch(q(path), {cache: "no-store"});
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}
async function act(identity, what, body) {
  const r = await fetch(q("/api/identity/" + encodeURIComponent(identity) + "/" + what),
    {method: "POST", headers: {"Content-Type": "application/json", "X-Reid-Token": TOKEN}, body: JSON.stringify(body)});
  const data = await r.json();
  $("status").textContent = r.ok ? `${data.kind} ${data.identity}` : `error: ${data.error}`;
  if (r.ok && what === "split") ticked.delete(identity);
  refresh();
}
const llr = (x) => x === null || x === undefined ? "-" : (x >= 0 ? "+" : "") + x.toFixed(2);
async function showEvidence(box) {
  const id = box.dataset.identity, out = box.querySelector(".evidence");
  if (!openEvidence.has(id)) { out.innerHTML = ""; return; }
  let e;
  try { e = await get("/api/evidence/" + encodeURIComponent(id)); }
  catch (err) { out.innerHTML = ""; out.append(el("div", {class: "meta"}, "no decision of " + id + " known yet")); return; }
  const table = el("table", {class: "evidence-table"});
  table.append(el("caption", {}, `track ${e.track} ${e.outcome} ${e.identity} at ${secs(e.time)}` +
    ` (${e.lit ? "lit" : "dark"} threshold ${e.threshold.toFixed(2)})`));
  const head = el("tr");
  for (const h of ["cue", e.outcome === "new" || e.outcome === "split" ? "new: " + e.identity : e.identity,
    "runner-up: " + (e.runner_up || "none")]) head.append(el("th", {}, h));
  table.append(head);
  const row = (cls, cells) => { const tr = el("tr", {class: cls}); for (const c of cells) tr.append(el("td", {}, c)); table.append(tr); };
  for (const c of e.cues) row("cue", [c.cue, llr(c.chosen), llr(c.runner_up)]);
  row("total", ["total", llr(e.chosen_total), llr(e.runner_up_total)]);
  row("threshold", ["threshold", e.threshold.toFixed(2), ""]);
  out.innerHTML = "";
  out.append(table);
}
const secs = (t) => t === null || t === undefined ? "-" : t.toFixed(1) + " s";

function cameraBox(id) {
  let box = document.querySelector(`.camera[data-camera="${CSS.escape(id)}"]`);
  if (box) return box;
  box = el("div", {class: "camera", "data-camera": id});
  box.append(el("h3", {}, "camera " + id));
  if (info.mode === "live") box.append(el("img", {class: "stream", alt: "camera " + id,
    src: q("/api/camera/" + encodeURIComponent(id) + "/stream.mjpg")}));
  box.append(el("div", {class: "stats"}));
  $("cameras").append(box);
  return box;
}
function renderCameras(cams) {
  for (const [id, c] of Object.entries(cams)) {
    const lat = Object.entries(c.latency_ms || {}).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(" | ");
    const dropped = Object.entries(c.dropped || {}).reduce((s, [, v]) => s + v, 0);
    const stats = cameraBox(id).querySelector(".stats");
    stats.innerHTML = "";
    stats.append(el("span", {class: "frame"}, String(c.frame)), ` frame | ${c.fps.toFixed(1)} frames/s | ` +
      `people ${c.people} | read ${c.read ?? "?"} | dropped ${dropped} | ${lat} ms`);
  }
}
function identityBox(id) {
  let box = document.querySelector(`.identity[data-identity="${CSS.escape(id)}"]`);
  if (box) return box;
  box = el("div", {class: "identity", "data-identity": id});
  box.append(el("div", {class: "thumbs"}), el("div", {class: "info"}), el("div", {class: "evidence"}));
  if (info.actions) {
    const a = el("div", {class: "actions"});
    const name = el("input", {class: "name-input", placeholder: "name"});
    const nameBtn = el("button", {class: "name-btn"}, "name");
    nameBtn.onclick = () => act(box.dataset.identity, "name", {name: name.value});
    const other = el("select", {class: "merge-select"});
    const mergeBtn = el("button", {class: "merge-btn"}, "merge into this");
    mergeBtn.onclick = () => other.value && act(box.dataset.identity, "merge", {other: other.value});
    const forget = el("button", {class: "forget-btn"}, "forget");
    forget.onclick = () => act(box.dataset.identity, "forget", {});
    a.append(name, nameBtn, " ", other, mergeBtn, " ", forget);
    box.append(a);
  }
  $("identities").append(box);
  return box;
}
function renderIdentities(list) {
  const names = list.map((r) => r.identity);
  $("identity-count").textContent = `(${list.length})`;
  for (const box of document.querySelectorAll(".identity"))
    if (!names.includes(box.dataset.identity)) box.remove();
  for (const set of [openVisits, openEvidence]) for (const n of [...set]) if (!names.includes(n)) set.delete(n);
  for (const n of [...ticked.keys()]) if (!names.includes(n)) ticked.delete(n);
  for (const r of list) {
    const box = identityBox(r.identity);
    const thumbs = box.querySelector(".thumbs");
    const have = [...thumbs.querySelectorAll("img")].map((i) => i.dataset.modality).join();
    if (have !== (r.thumbs || []).join() || thumbTick % 5 === 0) {
      thumbs.innerHTML = "";
      for (const m of r.thumbs || []) thumbs.append(el("img", {class: "thumb", "data-modality": m, alt: m,
        title: m, src: q(`/api/thumb/${encodeURIComponent(r.identity)}/${m}?t=${thumbTick}`)}));
    }
    const inf = box.querySelector(".info");
    inf.innerHTML = "";
    const nameEl = el("div", {class: "name", title: "the evidence behind its latest decision"},
      r.identity + (r.pinned ? " (named)" : ""));
    nameEl.onclick = () => {
      if (openEvidence.has(r.identity)) openEvidence.delete(r.identity); else openEvidence.add(r.identity);
      showEvidence(box);
    };
    inf.append(nameEl,
      el("div", {class: "meta"}, `first seen ${secs(r.first_seen)}, last seen ${secs(r.last_seen)}`),
      el("div", {class: "meta"}, `cameras ${(r.cameras || []).join(", ") || "-"}, visits ${r.visits}`));
    if (r.visit_list) {
      const v = el("details", {class: "visits"});
      if (openVisits.has(r.identity)) v.open = true;
      v.ontoggle = () => { if (v.open) openVisits.add(r.identity); else openVisits.delete(r.identity); };
      v.append(el("summary", {}, "visits"));
      const mine = ticked.get(r.identity) || new Set();
      for (const x of r.visit_list) {
        const line = el("div", {class: "meta visit", "data-row": x.row ?? ""});
        if (info.actions && x.row !== undefined) {
          const cb = el("input", {type: "checkbox", class: "visit-check", "data-row": x.row});
          cb.checked = mine.has(x.row);
          cb.onchange = () => {
            const set = ticked.get(r.identity) || new Set();
            if (cb.checked) set.add(x.row); else set.delete(x.row);
            ticked.set(r.identity, set);
          };
          line.append(cb, " ");
        }
        line.append(`${secs(x.start)} - ${secs(x.end)} ${x.lit ? "lit" : "dark"}` + (x.camera ? ` ${x.camera}` : ""));
        v.append(line);
      }
      if (info.actions && r.visit_list.length > 1) {
        const split = el("button", {class: "split-btn"}, "split off");
        split.onclick = () => act(r.identity, "split", {rows: [...(ticked.get(r.identity) || [])]});
        v.append(split);
      }
      inf.append(v);
    }
    if (openEvidence.has(r.identity)) showEvidence(box);
    const sel = box.querySelector(".merge-select");
    if (sel && sel !== document.activeElement) {
      const keep = sel.value;
      sel.innerHTML = "";
      sel.append(el("option", {value: ""}, "merge..."));
      for (const n of names) if (n !== r.identity) sel.append(el("option", {value: n}, n));
      sel.value = names.includes(keep) ? keep : "";
    }
  }
  fillFilter($("filter-identity"), names);
}
function fillFilter(sel, values) {
  const keep = sel.value, want = ["", ...values].join();
  if ([...sel.options].map((o) => o.value).join() === want) return;
  sel.innerHTML = "";
  sel.append(el("option", {value: ""}, "all"));
  for (const v of values) sel.append(el("option", {value: v}, v));
  sel.value = values.includes(keep) ? keep : "";
}
function renderEvents() {
  const ident = $("filter-identity").value, cam = $("filter-camera").value;
  const list = $("events");
  list.innerHTML = "";
  const shown = events.filter((e) => (!ident || e.identity === ident || e.previous === ident) && (!cam || e.camera === cam));
  for (const e of shown.slice(-300).reverse()) {
    const text = e.frame >= 0 ? `#${e.frame} ${e.camera} ${e.kind} ${e.identity || "?"} track ${e.track}` +
      (e.evidence ? ` evidence ${e.evidence}` : "") : `${e.kind} ${e.identity}` +
      (e.kind === "split" ? ` (visits of ${e.previous})` : e.previous ? ` (was ${e.previous})` : "");
    list.append(el("li", {class: e.kind, "data-identity": e.identity || ""}, text));
  }
  fillFilter($("filter-camera"), [...new Set(events.map((e) => e.camera).filter(Boolean))].sort());
}
async function refresh() {
  try {
    renderCameras(await get("/api/cameras"));
    renderIdentities(await get("/api/identities"));
    // two refreshes in flight (the timer and an action) may both fetch the same events: keep each once
    const fresh = (await get(`/api/events?since=${lastSeq}&limit=2000`)).filter((e) => e.seq > lastSeq);
    if (fresh.length) { events = events.concat(fresh).slice(-5000); lastSeq = fresh[fresh.length - 1].seq; }
    renderEvents();
    thumbTick += 1;
  } catch (err) { $("status").textContent = String(err); }
}
async function scrub() {
  const n = $("scrub").value;
  $("scrub-index").textContent = n;
  try { $("frame-record").textContent = JSON.stringify(await get("/api/frames?frame=" + n), null, 1); }
  catch (err) { $("frame-record").textContent = "no record of frame " + n; }
}
async function main() {
  info = await get("/api/info");
  $("mode").textContent = info.mode === "live" ? "live" : "review: " + (info.run || "");
  if (info.privacy) $("mode").textContent += " (privacy: no colour)";
  $("filter-identity").onchange = renderEvents;
  $("filter-camera").onchange = renderEvents;
  if (info.mode === "review" && info.frames) {
    $("scrubber").hidden = false;
    $("scrub").min = info.frames[0]; $("scrub").max = info.frames[1]; $("scrub").value = info.frames[0];
    $("scrub").oninput = scrub;
    scrub();
  }
  await refresh();
  if (info.mode === "live") setInterval(refresh, 1000);
}
main();
