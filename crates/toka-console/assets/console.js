// The Toka console: a page over the HTTP API for the people who oversee agents.
//
// Everything shown comes from the API with the signed-in token as the bearer, so the
// server filters it by the token's scope; nothing here decides what may be seen. The
// token is kept in this tab's session storage only and never put in a URL: the live
// stream is read with fetch() (EventSource cannot send an Authorization header).
// Text from the log (names, inputs, observations) is always set as text, never as
// markup.
"use strict";

const TOKEN = "toka.token";
const THEME = "toka.theme";
const MAX_EVENTS = 1000; // kept in memory for the events view
const MAX_ROWS = 300; // rendered at once

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children, skipping absent ones. */
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
}

const session = {
  token: null,
  claims: null,
  agents: new Map(), // id -> AgentView
  callAgents: new Map(), // call id -> agent id (from tool.called events)
  events: [], // newest last
  lastSeq: 0,
  paused: false,
  pausedNew: 0,
  stream: null, // AbortController
  timers: [],
  decided: new Map(), // call id -> {view, note}
};

// ---------------------------------------------------------------- formatting

const shortId = (id) => (id ? String(id).slice(0, 8) : "");
function agentName(id) {
  const a = session.agents.get(id);
  return a ? a.name : shortId(id);
}
function timeOfMicros(us) {
  const d = new Date(Number(us) / 1000);
  return d.toLocaleTimeString([], { hour12: false });
}
function relative(secs) {
  const delta = Math.round(secs - Date.now() / 1000);
  const abs = Math.abs(delta);
  const text = abs < 90 ? `${abs}s` : abs < 5400 ? `${Math.round(abs / 60)}m` : `${Math.round(abs / 3600)}h`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}
function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n)}… (${text.length} characters)` : text;
}
function pretty(value) {
  return JSON.stringify(value, null, 2);
}
/** An observation's bytes (base64) as text when they are UTF-8, else a note. */
function observationText(b64) {
  try {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return `(${Math.floor((b64.length * 3) / 4)} bytes, not text)`;
  }
}
function pill(text) {
  return h("span", { class: `pill ${text}` }, text.replace("_", " "));
}
function agentLink(id) {
  return id ? h("a", { href: `#/agents/${id}` }, agentName(id)) : "";
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      ...options,
      cache: "no-store",
      headers: {
        Authorization: `Bearer ${session.token}`,
        ...(options.body ? { "Content-Type": "application/json" } : {}),
      },
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", `the server did not answer (${e.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const err = body && body.error;
    const error = new ApiError(response.status, err ? err.code : "http", err ? err.message : `HTTP ${response.status}`);
    if (response.status === 401 && session.claims) signOut(`The server refused the token: ${error.message}. Sign in with a fresh one.`);
    throw error;
  }
  return body;
}

/** The claims of a JWT, for display only (the server checks the token). */
function decodeClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "="));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message) {
  $("app").hidden = true;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  const error = $("sign-in-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("token-input").focus();
}

async function signIn(raw) {
  const token = raw.trim().replace(/^Bearer\s+/i, "");
  const claims = decodeClaims(token);
  if (!claims) {
    showSignIn("That is not a token: a Toka token is a JWT, three base64url parts separated by dots (toka token issue prints one).");
    return;
  }
  session.token = token;
  try {
    await api("/v1/overview");
  } catch (e) {
    session.token = null;
    showSignIn(
      e.status === 401
        ? `The server refused this token: ${e.message}. Check that it was copied whole and has not expired or been revoked; \`toka token issue\` makes a new one.`
        : `Could not sign in: ${e.message}.`,
    );
    return;
  }
  session.claims = claims;
  sessionStorage.setItem(TOKEN, token);
  $("sign-in").hidden = true;
  $("token-input").value = "";
  $("app").hidden = false;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  start();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN);
  stop();
  session.token = null;
  session.claims = null;
  session.agents.clear();
  session.events = [];
  session.lastSeq = 0;
  session.decided.clear();
  showSignIn(message);
}

function stop() {
  if (session.stream) session.stream.abort();
  session.stream = null;
  session.timers.forEach(clearInterval);
  session.timers = [];
}

async function start() {
  renderWho();
  await Promise.all([refreshAgents(), refreshTrust(), refreshApprovals()]);
  session.timers.push(setInterval(refreshTrust, 3000));
  session.timers.push(setInterval(refreshApprovals, 10000));
  startStream();
  route();
}

function renderWho() {
  const c = session.claims;
  const who = $("t-who");
  who.textContent = `${agentName(c.sub)} · expires ${relative(c.exp)}`;
  who.title = `subject ${c.sub}\npermissions: ${(c.permissions || []).join(", ")}\nscope: ${c.scope ? JSON.stringify(c.scope) : "its subtree"}`;
}

// ---------------------------------------------------------------- throttling

/** Runs `fn` at most once per `ms`, the last call winning. */
function throttle(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}

// ---------------------------------------------------------------- trust bar

async function refreshTrust() {
  let o;
  try {
    o = await api("/v1/overview");
  } catch {
    return;
  }
  $("t-head").textContent = o.head;
  const chain = $("t-chain");
  chain.textContent = o.chain_digest.slice(0, 16) + "…";
  chain.title = o.chain_digest;
  const cp = $("t-checkpoint");
  cp.className = "value";
  if (!o.checkpoint) {
    cp.textContent = "none yet";
  } else if (o.checkpoint.matches_log && o.checkpoint.signature_valid) {
    cp.textContent = `✓ seq ${o.checkpoint.seq} matches`;
    cp.classList.add("good");
    cp.title = `signed ${new Date(o.checkpoint.time / 1000).toISOString()} by key ${o.checkpoint.key_id}; ${o.checkpoint.behind} events since`;
  } else {
    cp.textContent = o.checkpoint.signature_valid ? `✗ seq ${o.checkpoint.seq}: log differs` : `✗ seq ${o.checkpoint.seq}: bad signature`;
    cp.classList.add("bad");
    cp.title = `The running log does not match the newest signed checkpoint (${o.checkpoint.problem || "signature"}): investigate before trusting this node.`;
  }
  $("t-queue").textContent = o.queue_depth;
  const rates = o.commit_rate.map((r) => r.events_per_sec);
  const last = rates.length ? rates[rates.length - 1] : 0;
  $("t-rate").textContent = `(${last.toFixed(1)} events/s now)`;
  drawChart(rates.slice(-150));
  $("banner").hidden = !o.unavailable;
  if (o.unavailable) $("banner").textContent = `The node refuses writes: ${o.unavailable}`;
  renderWho();
}

function drawChart(values) {
  const svg = $("t-chart");
  fill(svg);
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  const points = values.map((v, i) => `${((i / (values.length - 1)) * 300).toFixed(1)},${(38 - (v / max) * 36).toFixed(1)}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  svg.setAttribute("aria-label", `Commits per second over the last ${values.length * 2} seconds, peak ${max.toFixed(0)}`);
}

// ---------------------------------------------------------------- agents

async function refreshAgents() {
  const all = [];
  let after = null;
  for (let page = 0; page < 20; page++) {
    const q = new URLSearchParams({ limit: "1000" });
    if (after) q.set("after", after);
    let body;
    try {
      body = await api(`/v1/agents?${q}`);
    } catch {
      return;
    }
    all.push(...body.items);
    if (!body.next) break;
    after = body.next;
  }
  session.agents = new Map(all.map((a) => [a.id, a]));
  renderTree();
  renderAgentFilter();
}
const refreshAgentsSoon = throttle(refreshAgents, 1000);

function budgetText(a) {
  if (!a.budgets || !a.budgets.length) return "";
  const left = a.budgets[0].left;
  const parts = [];
  if (left.model_tokens !== undefined) parts.push(`${left.model_tokens} model tokens`);
  if (left.tool_calls !== undefined) parts.push(`${left.tool_calls} tool calls`);
  if (left.spawns !== undefined) parts.push(`${left.spawns} spawns`);
  return parts.length ? ` · left: ${parts.join(", ")}` : "";
}

function renderTree() {
  const tree = $("agent-tree");
  const selected = currentAgent();
  const byParent = new Map();
  for (const a of session.agents.values()) {
    const key = a.parent && session.agents.has(a.parent) ? a.parent : "";
    if (!byParent.has(key)) byParent.set(key, []);
    byParent.get(key).push(a);
  }
  const branch = (parent) =>
    (byParent.get(parent) || []).map((a) => {
      const t = a.tasks;
      const children = byParent.has(a.id) ? h("ul", { role: "group" }, branch(a.id)) : null;
      return h(
        "li",
        { role: "treeitem", "aria-expanded": children ? "true" : null, "data-agent": a.id },
        h(
          "a",
          { href: `#/agents/${a.id}`, "aria-current": a.id === selected ? "true" : null },
          h("span", { class: "name" }, a.name),
          " ",
          pill(a.status),
          h("span", { class: "meta" }, `${shortId(a.id)} · tasks ${t.queued} queued, ${t.claimed} claimed, ${t.done} done, ${t.failed} failed${budgetText(a)}`),
        ),
        children,
      );
    });
  fill(tree, ...branch(""));
  if (!session.agents.size) tree.append(h("li", { class: "muted" }, "No agent in this token's scope."));
}

function renderAgentFilter() {
  const select = $("f-agent");
  const chosen = select.value;
  fill(select, h("option", { value: "" }, "any"), ...[...session.agents.values()].map((a) => h("option", { value: a.id }, `${a.name} (${shortId(a.id)})`)));
  select.value = chosen;
}

function currentAgent() {
  const m = location.hash.match(/^#\/agents\/([0-9a-f-]+)/);
  return m ? m[1] : null;
}

async function showAgent(id) {
  const detail = $("agent-detail");
  const a = session.agents.get(id);
  if (!a) {
    fill(detail, h("p", { class: "error" }, "That agent is not in this token's scope."));
    return;
  }
  fill(detail, 
    h("h2", {}, a.name, " ", pill(a.status)),
    h("p", { class: "muted mono" }, a.id),
    h("p", {}, "Parent: ", a.parent ? agentLink(a.parent) : "none (the root)", ` · ${a.children.length} children · ${a.observations} observations`),
    a.budgets && a.budgets.length
      ? h("p", {}, "Budgets left: ", a.budgets.map((b) => `${b.jti.slice(0, 10)}…: ${budgetText({ budgets: [b] }).replace(" · left: ", "")} (expires ${relative(b.exp)})`).join("; "))
      : null,
    h("h3", {}, "Tasks"),
    h("div", { id: "agent-tasks" }, h("p", { class: "muted" }, "Loading…")),
    h("h3", {}, "Observations"),
    h("div", { id: "agent-observations" }, h("p", { class: "muted" }, "Loading…")),
    h("h3", {}, "Tool calls"),
    h("div", { id: "agent-calls" }, h("p", { class: "muted" }, "Loading…")),
    h("div", { id: "agent-transcript" }),
  );
  const [tasks, activity, transcript] = await Promise.allSettled([
    api(`/v1/tasks?agent=${id}&limit=200`),
    api(`/v1/agents/${id}/activity?limit=200`),
    api(`/v1/agents/${id}/transcript`),
  ]);
  if (currentAgent() !== id) return;
  renderTasks(tasks);
  renderActivity(activity);
  renderTranscript(transcript);
}

function failed(result) {
  return h("p", { class: "error" }, `Could not load: ${result.reason.message}`);
}

function renderTasks(result) {
  const box = $("agent-tasks");
  if (result.status === "rejected") return fill(box, failed(result));
  const items = result.value.items;
  if (!items.length) return fill(box, h("p", { class: "muted" }, "No tasks."));
  fill(box, 
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", {}, "task"), h("th", {}, "state"), h("th", {}, "description"), h("th", {}, "outcome"))),
      h(
        "tbody",
        {},
        items.map((t) =>
          h(
            "tr",
            {},
            h("td", { class: "mono", title: t.id }, shortId(t.id)),
            h("td", {}, pill(t.state), t.waiting_on && t.waiting_on.length ? ` waits for ${t.waiting_on.length}` : ""),
            h("td", { class: "what" }, truncate(t.description, 300)),
            h("td", { class: "what" }, t.outcome ? truncate(typeof t.outcome === "string" ? t.outcome : JSON.stringify(t.outcome), 300) : ""),
          ),
        ),
      ),
    ),
  );
}

function renderActivity(result) {
  const obs = $("agent-observations");
  const calls = $("agent-calls");
  if (result.status === "rejected") {
    fill(obs, failed(result));
    fill(calls, failed(result));
    return;
  }
  const events = result.value.events;
  const observations = events.filter((e) => e.kind === "observation.emitted");
  fill(obs, 
    ...(observations.length
      ? observations.map((e) => h("div", {}, h("span", { class: "muted" }, `#${e.seq} ${timeOfMicros(e.timestamp)} `), h("pre", {}, truncate(observationText(e.event.data), 4000))))
      : [h("p", { class: "muted" }, "No observations among its recent events.")]),
  );
  const called = events.filter((e) => e.kind === "tool.called");
  fill(calls, 
    ...(called.length
      ? [
          h(
            "table",
            {},
            h("thead", {}, h("tr", {}, h("th", {}, "seq"), h("th", {}, "tool"), h("th", {}, "call"), h("th", {}, "input"))),
            h(
              "tbody",
              {},
              called.map((e) =>
                h(
                  "tr",
                  {},
                  h("td", {}, e.seq),
                  h("td", {}, e.event.tool),
                  h("td", {}, h("a", { href: `#/calls/${e.event.call}` }, shortId(e.event.call))),
                  h("td", { class: "what mono" }, truncate(JSON.stringify(e.event.input), 200)),
                ),
              ),
            ),
          ),
        ]
      : [h("p", { class: "muted" }, "No tool calls among its recent events.")]),
  );
}

function messageView(m) {
  const parts = [h("div", { class: "role" }, m.role || "message")];
  if (m.content) parts.push(h("pre", {}, truncate(typeof m.content === "string" ? m.content : JSON.stringify(m.content), 6000)));
  for (const call of m.tool_calls || []) {
    parts.push(h("pre", {}, `→ ${call.function ? call.function.name : "tool"}(${call.function ? call.function.arguments : ""})`));
  }
  return h("div", { class: "step" }, parts);
}

function renderTranscript(result) {
  const box = $("agent-transcript");
  if (result.status === "rejected" || !result.value.steps.length) return fill(box);
  fill(box, 
    h("h3", {}, "Model transcript"),
    ...result.value.steps.map((s) =>
      h(
        "details",
        { open: true },
        h("summary", {}, `step ${s.step} of task ${shortId(s.task)} · ${s.model} · ${s.tokens} tokens · ${s.finish_reason || ""}`),
        ...s.appended.map(messageView),
        messageView({ role: "answer", ...s.answer }),
      ),
    ),
  );
}

// ---------------------------------------------------------------- live events

function concernedAgent(view) {
  const e = view.event || {};
  return e.agent || e.sub || (e.step && e.step.agent) || session.callAgents.get(e.call) || null;
}

function summary(view) {
  const e = view.event || {};
  switch (view.kind) {
    case "observation.emitted":
      return truncate(observationText(e.data), 160);
    case "task.scheduled":
      return truncate((e.spec && e.spec.description) || "", 160);
    case "tool.called":
      return `${e.tool} ${truncate(JSON.stringify(e.input), 120)}${e.awaiting_approval ? " (awaits approval)" : ""}`;
    case "tool.returned":
      return e.result ? `${e.result.status}${e.result.output !== undefined ? ": " + truncate(JSON.stringify(e.result.output), 120) : ""}` : "";
    case "tool.denied":
    case "tool.approved":
      return e.reason || "";
    case "agent.spawned":
      return (e.spec && e.spec.name) || "";
    case "model.answered":
      return e.step ? `step ${e.step.step} of task ${shortId(e.step.task)} · ${e.tokens} tokens · ${e.step.model}` : "";
    case "budget.spent":
      return ["model_tokens", "tool_calls", "spawns"].filter((k) => e[k]).map((k) => `${e[k]} ${k.replace("_", " ")}`).join(", ");
    case "task.completed":
      return e.outcome ? truncate(JSON.stringify(e.outcome), 160) : "";
    case "token.issued":
      return `for ${agentName(e.sub)}: ${(e.permissions || []).join(", ")}`;
    default:
      return "";
  }
}

function eventRow(view, fresh) {
  const agent = concernedAgent(view) || view.origin;
  const e = view.event || {};
  // The agent column links to the agent; a call gets its own link.
  const target = e.call ? h("a", { href: `#/calls/${e.call}` }, "call ", shortId(e.call)) : "";
  return h(
    "tr",
    { class: fresh ? "fresh" : null, "data-seq": view.seq, "data-kind": view.kind },
    h("td", {}, view.seq),
    h("td", {}, timeOfMicros(view.timestamp)),
    h("td", {}, view.kind),
    h("td", {}, agentLink(agent)),
    h("td", { class: "what" }, target, " ", summary(view)),
  );
}

function matches(view) {
  const kind = $("f-kind").value.trim();
  const agent = $("f-agent").value;
  if (kind && !view.kind.startsWith(kind)) return false;
  if (agent && view.origin !== agent && concernedAgent(view) !== agent) return false;
  return true;
}

function renderEvents() {
  const rows = [];
  for (let i = session.events.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) {
    if (matches(session.events[i])) rows.push(eventRow(session.events[i], false));
  }
  fill($("event-rows"), ...rows);
  if (!rows.length) $("event-rows").append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No event matches.")));
}

const kinds = new Set();
function onEvent(view) {
  session.lastSeq = Math.max(session.lastSeq, view.seq);
  if (view.kind === "tool.called") session.callAgents.set(view.event.call, view.event.agent);
  session.events.push(view);
  if (session.events.length > MAX_EVENTS) session.events.splice(0, session.events.length - MAX_EVENTS);
  if (!kinds.has(view.kind)) {
    kinds.add(view.kind);
    $("kinds").append(h("option", { value: view.kind }));
  }
  if (session.paused) {
    session.pausedNew++;
    $("paused-count").textContent = `${session.pausedNew} new while paused`;
  } else if (matches(view)) {
    const body = $("event-rows");
    if (body.firstChild && !body.firstChild.dataset.seq) fill(body);
    body.prepend(eventRow(view, true));
    while (body.children.length > MAX_ROWS) body.lastChild.remove();
  }
  if (view.kind.startsWith("agent.") || view.kind.startsWith("task.") || view.kind === "observation.emitted" || view.kind === "budget.spent") refreshAgentsSoon();
  if (view.kind.startsWith("tool.")) {
    refreshApprovalsSoon();
    if (session.decided.has(view.event.call)) refreshDecided(view.event.call, 0);
  }
  const agent = currentAgent();
  if (agent && (view.origin === agent || concernedAgent(view) === agent)) showAgentSoon();
}
const showAgentSoon = throttle(() => {
  const id = currentAgent();
  if (id && !$("view-agents").hidden) showAgent(id);
}, 1000);

function setStreamState(text) {
  const el = $("stream-state");
  el.className = `pill ${text.split(":")[0]}`;
  el.textContent = text;
}

/** Reads one SSE block ("field: value" lines) into {event, id, data}. */
function parseBlock(block) {
  const out = { event: "message", id: null, data: [] };
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") out.event = value;
    else if (field === "id") out.id = value;
    else if (field === "data") out.data.push(value);
  }
  return { ...out, data: out.data.join("\n") };
}

async function startStream() {
  let backoff = 1000;
  const controller = new AbortController();
  session.stream = controller;
  // History first: the newest hundred events, then live with no gap.
  let from = 1;
  try {
    const o = await api("/v1/overview");
    from = Math.max(1, o.head - 99);
  } catch {
    /* the stream's own error says more */
  }
  while (!controller.signal.aborted && session.token) {
    const headers = { Authorization: `Bearer ${session.token}` };
    if (session.lastSeq) headers["Last-Event-ID"] = String(session.lastSeq);
    let closedReason = null;
    try {
      const response = await fetch(`/v1/events/stream?from=${from}`, { headers, signal: controller.signal, cache: "no-store" });
      if (response.status === 401) {
        const body = await response.json().catch(() => null);
        signOut(`The server refused the token: ${body && body.error ? body.error.message : "unauthorized"}. Sign in with a fresh one.`);
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      setStreamState("live");
      backoff = 1000;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = /\r?\n\r?\n/.exec(buffer))) {
          const block = parseBlock(buffer.slice(0, end.index));
          buffer = buffer.slice(end.index + end[0].length);
          if (block.event === "closed") {
            closedReason = JSON.parse(block.data || "{}").reason || "closed";
          } else if (block.data) {
            onEvent(JSON.parse(block.data));
          }
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      closedReason = closedReason || e.message;
    }
    setStreamState(`closed: ${closedReason || "connection ended"} (reconnecting)`);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 30000);
  }
}

// ---------------------------------------------------------------- approvals

let approvalsShown = "";
async function refreshApprovals() {
  let list;
  try {
    list = (await api("/v1/approvals")).approvals;
  } catch {
    return;
  }
  const count = $("approval-count");
  count.hidden = !list.length;
  count.textContent = list.length;
  // Keep what a person is typing: redraw only when the list changed.
  const key = list.map((c) => c.call).join(",");
  if (key === approvalsShown) return;
  approvalsShown = key;
  const box = $("approval-list");
  fill(box, ...(list.length ? list.map(approvalCard) : [h("p", { class: "muted" }, "No call waits for approval in this token's scope.")]));
}
const refreshApprovalsSoon = throttle(refreshApprovals, 500);

function approvalCard(c) {
  const reason = h("textarea", { id: `reason-${c.call}`, rows: 2, placeholder: "Why (recorded in the log; required to deny)", "aria-label": `Reason for call ${c.call}` });
  const message = h("p", { class: "error", role: "alert", hidden: true });
  const decide = async (approve) => {
    if (!approve && !reason.value.trim()) {
      message.hidden = false;
      message.textContent = "Say why you deny it: the reason is recorded in the log.";
      reason.focus();
      return;
    }
    card.querySelectorAll("button").forEach((b) => (b.disabled = true));
    try {
      const view = await api(`/v1/calls/${c.call}/approval`, {
        method: "POST",
        body: JSON.stringify({ approve, reason: reason.value, input_hash: c.input_hash, wait_secs: 0 }),
      });
      session.decided.set(c.call, view);
      card.remove();
      renderDecided();
      refreshDecided(c.call, 60);
      refreshApprovalsSoon();
    } catch (e) {
      message.hidden = false;
      message.textContent = `Refused: ${e.message}`;
      card.querySelectorAll("button").forEach((b) => (b.disabled = false));
    }
  };
  const card = h(
    "article",
    { class: "approval", "data-call": c.call, "aria-label": `Call ${c.call} to ${c.tool}` },
    h("div", { class: "row" }, h("strong", {}, c.tool), pill(c.status), "by", agentLink(c.agent), h("span", { class: "muted" }, `call ${shortId(c.call)} · seq ${c.called_seq}${c.approval_expires_at ? " · expires " + relative(c.approval_expires_at) : ""}`)),
    h("label", { for: `input-${c.call}` }, "Input, exactly as the call holds it"),
    h("pre", { id: `input-${c.call}`, class: "input" }, pretty(c.input)),
    h("p", { class: "muted mono" }, `input hash ${c.input_hash}`),
    reason,
    h("div", { class: "row" }, h("button", { type: "button", class: "primary", onclick: () => decide(true) }, "Approve"), h("button", { type: "button", class: "danger", onclick: () => decide(false) }, "Deny")),
    message,
  );
  return card;
}

/** Reads a decided call again, waiting up to `wait` seconds for it to end. */
async function refreshDecided(call, wait) {
  try {
    const view = await api(`/v1/calls/${call}?wait_secs=${wait}`);
    session.decided.set(call, view);
    renderDecided();
  } catch {
    /* shown as it was */
  }
}

function resultView(c) {
  if (!c.result) return h("p", { class: "muted" }, c.status === "denied" ? `denied: ${c.reason || ""}` : "waiting for the result…");
  return h("pre", { class: "result" }, pretty(c.result));
}

function renderDecided() {
  const box = $("decided-list");
  const items = [...session.decided.values()].reverse();
  fill(box, 
    ...items.map((c) =>
      h("article", { class: "approval decided", "data-call": c.call, "data-status": c.status }, h("div", { class: "row" }, h("strong", {}, c.tool), pill(c.status), "by", agentLink(c.agent), h("a", { href: `#/calls/${c.call}` }, `call ${shortId(c.call)}`)), resultView(c)),
    ),
  );
}

// ---------------------------------------------------------------- one call

async function showCall(id) {
  const box = $("call-detail");
  fill(box, h("p", { class: "muted" }, "Loading…"));
  let c;
  try {
    c = await api(`/v1/calls/${id}`);
  } catch (e) {
    fill(box, h("p", { class: "error" }, `Could not load the call: ${e.message}`));
    return;
  }
  fill(box, 
    h("p", {}, h("strong", {}, c.tool), " ", pill(c.status), " for ", agentLink(c.agent), ` · ${c.attempts} attempts · called at seq ${c.called_seq}${c.ended_seq ? `, ended at seq ${c.ended_seq}` : ""}`),
    c.decided_by ? h("p", {}, "Decided by ", agentLink(c.decided_by), c.reason ? `: ${c.reason}` : "") : null,
    h("h3", {}, "Input"),
    h("pre", {}, pretty(c.input)),
    h("h3", {}, "Result"),
    resultView(c),
  );
}

// ---------------------------------------------------------------- routing

function route() {
  if (!session.claims) return;
  const hash = location.hash || "#/agents";
  const tab = hash.startsWith("#/events") ? "events" : hash.startsWith("#/approvals") ? "approvals" : hash.startsWith("#/calls/") ? "call" : "agents";
  for (const name of ["agents", "events", "approvals", "call"]) $(`view-${name}`).hidden = name !== tab;
  document.querySelectorAll("nav a").forEach((a) => a.setAttribute("aria-current", a.dataset.tab === tab ? "page" : "false"));
  if (tab === "agents") {
    renderTree();
    const id = currentAgent();
    if (id) showAgent(id);
  } else if (tab === "events") {
    renderEvents();
  } else if (tab === "approvals") {
    refreshApprovals();
  } else {
    showCall(hash.slice("#/calls/".length));
  }
}

// ---------------------------------------------------------------- theme

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

document.addEventListener("DOMContentLoaded", () => {
  // The theme is a preference, not a secret: it may outlive the tab.
  applyTheme(localStorage.getItem(THEME));
  $("theme").addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    localStorage.setItem(THEME, next);
    applyTheme(next);
  });
  $("sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token-input").value);
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("pause").addEventListener("click", () => {
    session.paused = !session.paused;
    $("pause").setAttribute("aria-pressed", String(session.paused));
    $("pause").textContent = session.paused ? "Resume" : "Pause";
    if (!session.paused) {
      session.pausedNew = 0;
      setStreamState("live");
      $("paused-count").textContent = "";
      renderEvents();
    } else {
      setStreamState("paused");
    }
  });
  $("f-kind").addEventListener("input", renderEvents);
  $("f-agent").addEventListener("change", renderEvents);
  window.addEventListener("hashchange", route);
  const saved = sessionStorage.getItem(TOKEN);
  if (saved) signIn(saved);
  else showSignIn("");
});
