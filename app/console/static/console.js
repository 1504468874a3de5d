// Tearline audit console: vanilla JS over the auditor JSON API (/api/v1/audit).
//
// The token lives only in sessionStorage (gone when the tab closes) and travels only in an
// Authorization header; never in a cookie, a URL or the DOM after login. Everything the API
// returns is put into the page with textContent, never as HTML: records carry strings chosen
// by whoever made the request (subjects, routes), which must not become markup.
"use strict";

(() => {
  const TOKEN_KEY = "tearline.console.token";
  const API = "/api/v1/audit";
  const PAGE_SIZE = 50;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f5fa8", "#c05a00", "#2e7d32", "#7b3fa0", "#b3261e", "#00796b"];

  const $ = (id) => document.getElementById(id);
  let nextCursor = null;
  let lastFilters = {};
  let searchGeneration = 0;

  // ---- helpers ---------------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function say(id, text, isError) {
    const node = $(id);
    node.textContent = text || "";
    node.classList.toggle("error", Boolean(isError));
    node.hidden = !text;
  }

  /** Milliseconds since the epoch of a record time such as 2026-11-25T17:19:59.482113Z. */
  function parseTime(text) {
    return Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
  }

  function shortTime(ms, precise) {
    const text = new Date(ms).toISOString().replace("T", " ");
    return precise ? text : text.replace(/\.\d+Z$/, "Z");
  }

  /** A datetime-local value (no zone) read as UTC, in the ISO form the API accepts. */
  function utcParam(value) {
    if (!value) return "";
    return (value.length === 16 ? value + ":00" : value) + "Z";
  }

  class ApiFailure extends Error {
    constructor(status, body) {
      const detail = body && (body.detail || body.description || body.title);
      super(detail ? String(detail) : `HTTP ${status}`);
      this.status = status;
    }
  }

  /** Explain a failure to a person; 401 and 403 say what to do about the token. */
  function explain(error) {
    if (error instanceof ApiFailure) {
      if (error.status === 401) return `Token refused (401): ${error.message} Paste a valid auditor token.`;
      if (error.status === 403) {
        return "Access refused (403): this token does not carry the auditor role, so it may not read " +
               "the audit log. Ask an administrator for a token with the role \"auditor\".";
      }
      return `Request failed (${error.status}): ${error.message}`;
    }
    return `Request failed: ${error.message}`;
  }

  async function api(path, params) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const url = new URL(API + path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, value);
    }
    const response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      credentials: "omit",
      cache: "no-store",
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) throw new ApiFailure(response.status, body);
    return body;
  }

  /** The token's claims, for display only (the server is the one that verifies it). */
  function claims(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    } catch (_) {
      return {};
    }
  }

  // ---- login -----------------------------------------------------------------------------

  function showWorkspace(token) {
    const who = claims(token);
    $("whoami").textContent = `${who.sub || "auditor"}${who.nation ? " (" + who.nation + ")" : ""}`;
    $("session").hidden = false;
    $("login").hidden = true;
    $("workspace").hidden = false;
  }

  function showLogin(message) {
    $("session").hidden = true;
    $("workspace").hidden = true;
    $("login").hidden = false;
    say("login-message", message, Boolean(message));
  }

  async function tryToken(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await api("/records", { limit: 1 }); // proves the token and the right in one audited call
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(explain(error));
      return;
    }
    showWorkspace(token);
    await search({});
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const field = $("token");
    const token = field.value.trim().replace(/^Bearer\s+/i, "");
    field.value = "";
    if (!token) {
      showLogin("Paste a token first.");
      return;
    }
    await tryToken(token);
  });

  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("records").tBodies[0].replaceChildren();
    $("record-detail").hidden = true;
    $("dissemination-result").hidden = true;
    $("verify-result").hidden = true;
    showLogin("");
  });

  // ---- search ----------------------------------------------------------------------------

  function readFilters() {
    return {
      since: utcParam($("f-since").value),
      until: utcParam($("f-until").value),
      subject: $("f-subject").value.trim(),
      nation: $("f-nation").value.trim().toUpperCase(),
      decision: $("f-decision").value,
      route: $("f-route").value.trim(),
      collection_id: $("f-collection").value.trim(),
      object_id: $("f-object").value.trim(),
    };
  }

  function recordRow(record) {
    const row = el("tr");
    row.dataset.seq = record.seq;
    const seqCell = el("td");
    const open = el("button", record.seq, "link");
    open.type = "button";
    open.title = "Show this record and the versions it served";
    open.addEventListener("click", () => showRecord(record.seq));
    seqCell.append(open);
    row.append(seqCell, el("td", record.at), el("td", record.subject), el("td", record.nation),
               el("td", record.method), el("td", record.route, "route"), el("td", record.status));
    const decision = el("td");
    decision.append(el("span", record.decision, `badge ${record.decision === "allow" ? "allow" : "deny"}`));
    row.append(decision, el("td", record.reason || "", "reason"), el("td", record.served_count));
    return row;
  }

  async function search(filters, after) {
    const body = $("records").tBodies[0];
    const generation = ++searchGeneration;
    say("search-status", "Searching…");
    let page;
    try {
      page = await api("/records", { ...filters, limit: PAGE_SIZE, after: after ?? "" });
      if (generation !== searchGeneration) return; // a newer search was started meanwhile
    } catch (error) {
      if (generation !== searchGeneration) return;
      say("search-status", explain(error), true);
      $("more").hidden = true;
      return;
    }
    if (after === undefined) body.replaceChildren();
    for (const record of page.records) body.append(recordRow(record));
    lastFilters = filters;
    nextCursor = page.next;
    $("more").hidden = nextCursor === null;
    const shown = body.rows.length;
    say("search-status", shown ? `${shown} record${shown === 1 ? "" : "s"} shown` +
        (nextCursor === null ? "." : "; more match.") : "No record matches.");
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("record-detail").hidden = true;
    search(readFilters());
  });
  $("search-form").addEventListener("reset", () => {
    // After the fields are cleared: list everything again.
    setTimeout(() => search({}), 0);
  });
  $("more").addEventListener("click", () => search(lastFilters, nextCursor));

  async function showRecord(seq) {
    const box = $("record-detail");
    let record;
    try {
      record = await api(`/records/${encodeURIComponent(seq)}`);
    } catch (error) {
      box.replaceChildren(el("p", explain(error), "message error"));
      box.hidden = false;
      return;
    }
    const list = el("dl");
    for (const name of ["seq", "at", "request_id", "subject", "nation", "roles", "client", "method", "route",
                        "collection_id", "decision", "reason", "status", "recipient_nation", "hash"]) {
      const value = Array.isArray(record[name]) ? record[name].join(", ") : record[name];
      list.append(el("dt", name), el("dd", value ?? "—"));
    }
    const served = el("ul");
    for (const item of record.served) {
      const entry = el("li");
      const link = el("button", item.id, "link");
      link.type = "button";
      link.title = "Show who received this object";
      link.addEventListener("click", () => {
        $("d-object").value = item.id;
        showDissemination(item.id);
        $("dissemination").scrollIntoView();
      });
      entry.append(link, document.createTextNode(` version ${item.version}`));
      served.append(entry);
    }
    box.replaceChildren(el("h3", `Record ${record.seq}`), list,
                        el("h4", `Served ${record.served.length} object version(s)`), served);
    box.hidden = false;
  }

  // ---- dissemination ---------------------------------------------------------------------

  /** One lane per (nation, version): a bar from first to last receipt, dots at both ends. */
  function drawTimeline(recipients) {
    const times = recipients.flatMap((r) => [parseTime(r.first_received), parseTime(r.last_received)]);
    let start = Math.min(...times);
    let end = Math.max(...times);
    // A margin of 5% each side so no dot sits on the frame; a single instant gets one second.
    const margin = Math.max((end - start) * 0.05, start === end ? 500 : 0);
    start -= margin;
    end += margin;
    const precise = end - start < 120000; // under two minutes: the ticks show milliseconds
    const versions = [...new Set(recipients.map((r) => r.version))];
    const label = 230, plot = 560, lane = 24, top = 10;
    const width = label + plot + 30, height = top + recipients.length * lane + 40;
    const x = (ms) => label + ((ms - start) / (end - start)) * plot;
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                               "aria-label": "Dissemination timeline" });
    recipients.forEach((r, index) => {
      const y = top + index * lane + lane / 2;
      const color = PALETTE[versions.indexOf(r.version) % PALETTE.length];
      const x1 = x(parseTime(r.first_received)), x2 = x(parseTime(r.last_received));
      const group = svg("g", { class: "lane", "data-nation": r.nation, "data-version": r.version });
      group.append(svg("title", {}, `${r.nation} received version ${r.version}: first ${r.first_received}, ` +
                                    `last ${r.last_received}, ${r.times} time(s)`));
      group.append(svg("text", { x: 4, y: y + 4 }, `${r.nation}  v ${r.version.replace(/\.\d+Z$/, "Z")}`));
      group.append(svg("line", { x1: label, x2: label + plot, y1: y, y2: y, stroke: "#eef0f4" }));
      group.append(svg("line", { x1, x2, y1: y, y2: y, stroke: color, "stroke-width": 6,
                                 "stroke-linecap": "round" }));
      group.append(svg("circle", { cx: x1, cy: y, r: 5, fill: color }));
      group.append(svg("circle", { cx: x2, cy: y, r: 5, fill: color }));
      group.append(svg("text", { x: Math.min(x2 + 9, width - 28), y: y + 4 }, `×${r.times}`));
      chart.append(group);
    });
    const axisY = top + recipients.length * lane + 8;
    chart.append(svg("line", { x1: label, x2: label + plot, y1: axisY, y2: axisY, class: "axis" }));
    for (const [ms, anchor] of [[start, "start"], [(start + end) / 2, "middle"], [end, "end"]]) {
      chart.append(svg("line", { x1: x(ms), x2: x(ms), y1: axisY, y2: axisY + 4, class: "axis" }));
      chart.append(svg("text", { x: x(ms), y: axisY + 18, "text-anchor": anchor, class: "tick" },
                           shortTime(ms, precise)));
    }
    return chart;
  }

  async function showDissemination(objectId) {
    const result = $("dissemination-result");
    result.hidden = true;
    if (!objectId) {
      say("dissemination-status", "Enter an object id.", true);
      return;
    }
    say("dissemination-status", "Loading…");
    let answer;
    try {
      answer = await api(`/recipients/${encodeURIComponent(objectId)}`);
    } catch (error) {
      say("dissemination-status", explain(error), true);
      return;
    }
    const recipients = answer.recipients;
    if (!recipients.length) {
      say("dissemination-status", `No nation has received any version of ${objectId}.`);
      return;
    }
    const nations = [...new Set(recipients.map((r) => r.nation))].sort();
    const versions = new Set(recipients.map((r) => r.version));
    say("dissemination-status", `${objectId}: ${versions.size} version(s) served.`);
    $("nations").textContent = `Received by ${nations.length} nation(s): ${nations.join(", ")}`;
    $("timeline").replaceChildren(drawTimeline(recipients));
    const body = $("recipients").tBodies[0];
    body.replaceChildren(...recipients.map((r) => {
      const row = el("tr");
      row.dataset.nation = r.nation;
      row.append(el("td", r.version), el("td", r.nation), el("td", r.first_received),
                 el("td", r.last_received), el("td", r.times));
      return row;
    }));
    result.hidden = false;
  }

  $("dissemination-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showDissemination($("d-object").value.trim());
  });

  // ---- verification ----------------------------------------------------------------------

  $("verify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("verify-result");
    box.hidden = true;
    say("verify-status", "Verifying…");
    let report;
    try {
      report = await api("/verify", { start: $("v-start").value, end: $("v-end").value });
    } catch (error) {
      say("verify-status", explain(error), true);
      return;
    }
    say("verify-status", "");
    box.className = report.ok ? "valid" : "broken";
    box.dataset.ok = String(report.ok);
    box.textContent = report.ok
      ? `Chain valid: ${report.checked} record(s) checked (seq ${report.first_seq ?? "-"} to ` +
        `${report.last_seq ?? "-"}), head at seq ${report.head_seq}, ` +
        `${report.checkpoints_checked} checkpoint(s) checked.`
      : `Chain BROKEN at seq ${report.broken_seq ?? "?"}: ${report.problem}`;
    box.hidden = false;
  });

  // ---- start -----------------------------------------------------------------------------

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) tryToken(saved);
  else showLogin("");
})();
