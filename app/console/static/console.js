// Tearline console: vanilla JS over the auditor JSON API (/api/v1/audit); disclosure.js adds the
// disclosure officers' panel (/api/v1/disclosure). A token opens the panels its rights allow.
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
  // Routes longer than this are shortened in the table (paging cursors make them hundreds of
  // characters long); the full text is one click away, and in the record's detail.
  const ROUTE_MAX = 72;
  const VALUE_MAX = 16;

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

  /** A button that looks like a link: ``onClick`` when pressed. */
  function link(text, title, onClick) {
    const button = el("button", text, "link");
    button.type = "button";
    button.title = title;
    button.addEventListener("click", onClick);
    return button;
  }

  function say(id, text, isError) {
    const node = $(id);
    node.textContent = text || "";
    node.classList.toggle("error", Boolean(isError));
    node.hidden = !text;
  }

  /** A datetime-local value (no zone) read as UTC, in the ISO form the API accepts. */
  function utcParam(value) {
    if (!value) return "";
    return (value.length === 16 ? value + ":00" : value) + "Z";
  }

  /** A route short enough for the table: long query values (cursors) cut, then the middle of what is left. */
  function shortRoute(route) {
    const text = String(route ?? "");
    if (text.length <= ROUTE_MAX) return text;
    const mark = text.indexOf("?");
    let short = text;
    if (mark >= 0) {
      const params = text.slice(mark + 1).split("&").map((pair) => {
        const equals = pair.indexOf("=");
        const value = equals >= 0 ? pair.slice(equals + 1) : "";
        return value.length > VALUE_MAX ? pair.slice(0, equals + 1) + value.slice(0, VALUE_MAX - 4) + "…" : pair;
      });
      short = text.slice(0, mark + 1) + params.join("&");
    }
    if (short.length > ROUTE_MAX) short = short.slice(0, ROUTE_MAX - 25) + "…" + short.slice(-24);
    return short;
  }

  /** The route cell: the whole route, or a shortened one that shows the whole on click (and on hover). */
  function routeCell(route) {
    const cell = el("td", null, "route");
    const full = String(route ?? "");
    const short = shortRoute(full);
    if (short === full) {
      cell.textContent = full;
      return cell;
    }
    const toggle = el("button", short, "link route-toggle");
    toggle.type = "button";
    toggle.title = full;
    toggle.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", () => {
      const expand = toggle.getAttribute("aria-expanded") !== "true";
      toggle.textContent = expand ? full : short;
      toggle.setAttribute("aria-expanded", String(expand));
    });
    cell.append(toggle);
    return cell;
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

  /** Any JSON API call of this server: GET with query parameters, or a method with a JSON body. */
  async function call(path, { method = "GET", params, body: payload } = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, value);
    }
    const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
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

  /** A GET of the auditor API. */
  function api(path, params) {
    return call(API + path, { params });
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

  // The areas of the page: each is the panels marked data-area="..." in index.html, opened when
  // the token's probe call is allowed. The role named is only a hint of which to probe first (a
  // probe is an audited request; the server alone decides).
  const AREAS = [
    { name: "audit", role: "auditor", probe: () => api("/records", { limit: 1 }) },
    { name: "disclosure", role: "officer", probe: () => call("/api/v1/disclosure/queue", { params: { limit: 1 } }) },
  ];

  function showWorkspace(token, areas) {
    const who = claims(token);
    $("whoami").textContent = `${who.sub || areas[0]}${who.nation ? " (" + who.nation + ")" : ""}`;
    for (const panel of document.querySelectorAll("#workspace [data-area]")) {
      panel.hidden = !areas.includes(panel.dataset.area);
    }
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

  /** The areas the token opens: those its roles name, or else (other roles) whichever answers. */
  async function grantedAreas(token) {
    const roles = Array.isArray(claims(token).roles) ? claims(token).roles : [];
    const hinted = AREAS.filter((area) => roles.includes(area.role));
    const granted = [];
    let failure = null;
    for (const group of [hinted, AREAS.filter((area) => !hinted.includes(area))]) {
      for (const area of group) {
        try {
          await area.probe(); // proves the token and the right in one audited call
          granted.push(area.name);
        } catch (error) {
          if (!(error instanceof ApiFailure) || error.status !== 403) throw error; // 401: no use going on
          failure ??= error;
        }
      }
      if (granted.length) return granted;
    }
    throw failure;
  }

  async function tryToken(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    let areas;
    try {
      areas = await grantedAreas(token);
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(error instanceof ApiFailure && error.status === 403
        ? "Access refused (403): this token does not carry the auditor role nor the officer role, so it may " +
          "not use this console. Ask an administrator for a token with the role \"auditor\" (audit log) or " +
          "\"officer\" (disclosure review)."
        : explain(error));
      return;
    }
    showWorkspace(token, areas);
    document.dispatchEvent(new CustomEvent("tearline:login", { detail: { areas } }));
    if (areas.includes("audit")) await search(readFilters());
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
      order: $("f-order").value,
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
               el("td", record.method), routeCell(record.route), el("td", record.status));
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
    // After the fields are cleared (the order back to newest first): list everything again.
    setTimeout(() => search(readFilters()), 0);
  });
  // Switching the order lists the same filters again from the other end.
  $("f-order").addEventListener("change", () => {
    $("record-detail").hidden = true;
    search(readFilters());
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
    $("timeline").replaceChildren(window.TearlineTimeline.draw(recipients));
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

  // ---- shared with live.js (the live view) and recalls.js (the recalls panel) -------------

  window.TearlineConsole = Object.freeze({
    API, api, call, el, link, say, explain, routeCell, ApiFailure, showDissemination,
    token: () => sessionStorage.getItem(TOKEN_KEY),
  });

  // ---- start -----------------------------------------------------------------------------

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) tryToken(saved);
  else showLogin("");
})();
