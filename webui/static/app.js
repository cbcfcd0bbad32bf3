// The swarm page. Every string from the node may be a peer's (bodies,
// names, status lines, swarm names): it reaches the page only as
// textContent or text nodes, never as HTML. The token comes from the
// URL's fragment, is kept in sessionStorage and goes in an Authorization
// header; it is never put in a URL the server sees.
"use strict";

const token = (() => {
  const m = /(?:^#|&)token=([0-9a-f]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("swarm-token", m[1]);
    history.replaceState(null, "", location.pathname); // off the address bar
    return m[1];
  }
  return sessionStorage.getItem("swarm-token") || "";
})();

let refused = false;
let lastID = "";
const shown = new Set();
let opNames = new Set();
const sentHere = []; // IDs sent from this page, for the outbox without `sent`

// el makes an element; string children become text nodes.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class" || k === "type" || k.startsWith("data-")) e.setAttribute(k, String(v));
  }
  for (const k of kids) {
    if (k === null || k === undefined) continue;
    e.append(typeof k === "string" || typeof k === "number" ? document.createTextNode(String(k)) : k);
  }
  return e;
}

function setState(text, bad) {
  const s = document.getElementById("state");
  s.textContent = text;
  s.className = bad ? "state bad" : "state";
}

function refuse(msg) {
  refused = true;
  document.getElementById("main").hidden = true;
  setState("Refused: " + msg, true);
}

// op runs one operation of the node's table by name.
async function op(name, args) {
  const r = await fetch("/v1/ops/" + encodeURIComponent(name), {
    method: "POST",
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify(args || {}),
  });
  const out = await r.json().catch(() => ({ error: "HTTP " + r.status }));
  if (r.status === 401) {
    refuse(out.error || "missing or wrong token");
    throw new Error("refused");
  }
  if (!r.ok) throw new Error(out.error || "HTTP " + r.status);
  return out;
}

function fp(s) { return el("span", { class: "fp" }, s || ""); }

async function loadSwarms() {
  const list = await op("list", {});
  const box = document.getElementById("swarms");
  const sel = document.getElementById("send-swarm");
  const keep = sel.value;
  sel.replaceChildren();
  const parts = [];
  for (const s of list) {
    if (s.left) continue;
    sel.append(el("option", {}, s.name));
    const mute = el("button", { type: "button" }, s.muted ? "unmute swarm" : "mute swarm");
    mute.addEventListener("click", () => act(s.muted ? "unmute" : "mute", { swarm: s.id }));
    const rows = el("tbody");
    let members = [];
    try { members = await op("members", { swarm: s.id }); } catch (e) { if (refused) return; }
    for (const m of members) {
      const state = m.state || "unknown";
      const acts = el("td");
      if (!m.self) {
        const b = el("button", { type: "button", "data-agent": m.domain }, m.muted ? "unmute" : "mute");
        b.addEventListener("click", () => act(m.muted ? "unmute" : "mute", { agent: m.fingerprint || m.domain }));
        acts.append(b);
      }
      rows.append(el("tr", { "data-member": m.domain },
        el("td", {}, m.domain, m.master ? " (master)" : "", m.self ? " (this node)" : ""),
        el("td", { class: m.identity }, m.identity || ""),
        el("td", {}, fp(m.fingerprint)),
        el("td", { class: state === "offline" || state === "unknown" ? state : "online" }, state, m.status ? " — " + m.status : ""),
        el("td", {}, m.last_seen || ""),
        acts));
    }
    parts.push(el("div", { class: "swarm", "data-swarm": s.name },
      el("h3", {}, s.name, " ", fp("master " + (s.master_fingerprint || "")), " ", mute),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "member"), el("th", {}, "name is"), el("th", {}, "key"),
        el("th", {}, "presence"), el("th", {}, "last seen"), el("th", {}, ""))), rows)));
  }
  box.replaceChildren(...parts);
  if (keep) sel.value = keep;
}

function messageItem(m) {
  const li = el("li", { "data-id": m.id, class: m.read ? "read" : "unread" });
  const who = m.local ? "this node" : (m.sender && m.sender.name) || m.from;
  const meta = el("div", { class: "meta" },
    (m.received || "").replace("T", " ").replace("Z", ""), " · ", m.swarm || "", " · ",
    el("span", { class: "from" }, who),
    m.sender && !m.local ? el("span", { class: m.sender.identity }, " (" + m.sender.identity + ") ") : " ",
    m.sender && !m.local ? fp(m.sender.fingerprint) : "",
    m.direct ? " · direct" : "", m.priority && m.priority !== "normal" ? " · " + m.priority : "",
    m.thread ? " · thread " + m.thread : "");
  if (!m.read) {
    const b = el("button", { type: "button", class: "mark-read" }, "mark read");
    b.addEventListener("click", async () => { await act("read", { ids: [m.id] }); li.className = "read"; b.remove(); });
    meta.append(" ", b);
  }
  li.append(meta, el("pre", { class: "body" }, m.body || ""));
  return li;
}

function addMessages(msgs) {
  const ol = document.getElementById("messages");
  for (const m of msgs) {
    lastID = m.id;
    if (shown.has(m.id)) continue;
    shown.add(m.id);
    ol.prepend(messageItem(m)); // newest first
  }
}

async function loadInbox() {
  const msgs = await op("inbox", { limit: 100 });
  document.getElementById("messages").replaceChildren();
  shown.clear();
  addMessages(msgs);
}

// stream reads the server-sent events of /v1/events with fetch, which
// can carry the Authorization header (EventSource cannot).
async function stream() {
  for (;;) {
    try {
      const r = await fetch("/v1/events?after=" + encodeURIComponent(lastID), { headers: { "Authorization": "Bearer " + token } });
      if (r.status === 401) { refuse("missing or wrong token"); return; }
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      setState("connected: new messages show as they arrive");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = ev.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
          if (/^event: message$/m.test(ev) && data) {
            addMessages([JSON.parse(data)]);
            loadOutbox().catch(() => {});
          }
        }
      }
    } catch (e) {
      if (refused) return;
    }
    setState("reconnecting…", true);
    await new Promise(res => setTimeout(res, 1000));
  }
}

async function loadOutbox() {
  const st = await op("status", {});
  document.getElementById("outbox-count").textContent = "(" + st.outbox + " queued)";
  // Recent sends with each recipient's state (queued, delivered, failed):
  // from `sent` when the binary has it, else this page's own sends.
  let sends = [];
  if (opNames.has("sent")) {
    try {
      const out = await op("sent", { limit: 20 });
      sends = (Array.isArray(out) ? out : (out.messages || [])).map(r => ({ id: r.id, ds: r.deliveries || [] }));
    } catch (e) { /* fall back to this page's sends */ }
  }
  if (sends.length === 0) {
    for (const id of sentHere.slice(-20)) {
      try { sends.push({ id, ds: await op("delivery", { id }) }); } catch (e) { /* gone */ }
    }
  }
  const rows = [];
  for (const s of sends) {
    for (const d of s.ds) {
      rows.push(el("tr", { "data-id": s.id }, el("td", {}, fp(s.id.slice(0, 8))), el("td", {}, d.peer || ""), el("td", {}, fp(d.fingerprint)),
        el("td", { class: d.status }, d.status), el("td", {}, d.reason || "")));
    }
  }
  document.querySelector("#outbox tbody").replaceChildren(...rows);
}

async function loadWakes() {
  if (!opNames.has("wake_history")) return;
  document.getElementById("wakes-panel").hidden = false;
  const out = await op("wake_history", { limit: 20 });
  const recs = Array.isArray(out) ? out : (out.wakes || out.history || []);
  document.querySelector("#wakes tbody").replaceChildren(...recs.map(w =>
    el("tr", {}, el("td", {}, w.started || ""), el("td", {}, w.group || ""), el("td", {}, w.trigger || ""),
      el("td", {}, w.status || ""), el("td", {}, w.duration_ms ?? ""), el("td", {}, w.error || ""))));
}

async function loadGitHub() {
  if (!opNames.has("github_status")) return;
  document.getElementById("github-panel").hidden = false;
  const s = await op("github_status", {});
  const q = s.queue || {};
  const dl = document.getElementById("github");
  const rows = [["token", s.token], ["pending writes", q.pending ?? 0], ["given up", q.given_up ?? 0],
    ["held until", q.limited_until || ""], ["last error", q.last_error || ""]];
  for (const l of s.links || []) rows.push(["link " + l.swarm, l.repo + " — " + l.bot]);
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v ?? ""))]));
}

async function act(name, args) {
  try {
    await op(name, args);
    await refresh();
  } catch (e) {
    if (!refused) document.getElementById("send-result").textContent = name + ": " + e.message;
  }
}

async function refresh() {
  await loadSwarms();
  await Promise.all([loadOutbox(), loadWakes(), loadGitHub()].map(p => p.catch(() => {})));
}

async function start() {
  if (!token) { refuse("no token: open the address `swarm ui` prints (it carries the token after #)"); return; }
  let names;
  try {
    const r = await fetch("/v1/ops", { headers: { "Authorization": "Bearer " + token } });
    if (r.status === 401) { refuse("missing or wrong token: open the address `swarm ui` prints"); return; }
    names = await r.json();
  } catch (e) { setState("cannot reach the node: " + e.message, true); return; }
  opNames = new Set(names);
  const st = await op("status", {});
  document.getElementById("self").textContent = st.domain + " " + st.fingerprint;
  document.getElementById("main").hidden = false;
  await loadInbox();
  await refresh();
  stream();
  setInterval(() => { if (!refused && !document.hidden) refresh().catch(() => {}); }, 5000);
  document.getElementById("read-all").addEventListener("click", async () => { await act("read", { all: true }); await loadInbox(); });
  document.getElementById("send-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const args = { swarm: document.getElementById("send-swarm").value, body: document.getElementById("send-body").value };
    const to = document.getElementById("send-to").value.trim();
    if (to) args.to = to;
    const out = document.getElementById("send-result");
    try {
      const res = await op("send", args);
      sentHere.push(res.id);
      out.textContent = "queued " + res.id.slice(0, 8) + " for " + (res.recipients || []).join(", ");
      document.getElementById("send-body").value = "";
      loadOutbox().catch(() => {});
    } catch (e) {
      if (!refused) out.textContent = "not sent: " + e.message;
    }
  });
}

start();
