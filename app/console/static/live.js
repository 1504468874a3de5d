// Tearline audit console, live view: audit records as they are written (GET /api/v1/audit/live).
//
// The browser's EventSource cannot send an Authorization header, and the token must travel in
// nothing else (console.js), so the stream is read with fetch and a ReadableStream reader and
// its Server-Sent Events are parsed here: "field: value" lines, a blank line ends an event, a
// line starting with ":" is a comment (the server's keep-alives). After a dropped connection the
// view reconnects with Last-Event-ID (the seq of the last record shown), waiting longer after
// each failure in a row, so nothing is missed or shown twice. Data goes into the page as text.
"use strict";

(() => {
  const C = window.TearlineConsole;
  const $ = (id) => document.getElementById(id);
  const MAX_ROWS = 200; // older rows are dropped from the table: the search panel has them all
  const SERVED_SHOWN = 5;
  const LONGEST_WAIT_S = 30;

  let controller = null; // the open stream's AbortController, or null when stopped
  let retryTimer = null;
  let lastId = null;
  let failures = 0;

  // ---- Server-Sent Events ----------------------------------------------------------------

  /** Splits a growing text into complete lines, keeping a partial last line (or a lone \r) for later. */
  class LineBuffer {
    constructor() {
      this.text = "";
    }

    push(chunk) {
      this.text += chunk;
      const lines = [];
      const pattern = /\r\n|\r|\n/g;
      let start = 0;
      let match;
      while ((match = pattern.exec(this.text)) !== null) {
        if (match[0] === "\r" && match.index === this.text.length - 1) break; // maybe half of \r\n
        lines.push(this.text.slice(start, match.index));
        start = pattern.lastIndex;
      }
      this.text = this.text.slice(start);
      return lines;
    }
  }

  /** Turns lines into events ({type, data, id}), as the SSE specification reads them. */
  class EventParser {
    constructor(onEvent) {
      this.onEvent = onEvent;
      this.reset();
    }

    reset() {
      this.type = "";
      this.data = [];
      this.id = null;
    }

    line(text) {
      if (text === "") {
        if (this.data.length) this.onEvent({ type: this.type || "message", data: this.data.join("\n"), id: this.id });
        this.reset();
        return;
      }
      if (text.startsWith(":")) return; // a comment: the keep-alive
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id" && !value.includes("\0")) this.id = value;
    }
  }

  // ---- the table -------------------------------------------------------------------------

  function servedCell(served) {
    const cell = C.el("td", null, "served");
    if (!served.length) {
      cell.textContent = "—";
      return cell;
    }
    cell.append(C.el("div", `${served.length} object version(s)`, "count"));
    const list = C.el("ul");
    for (const item of served.slice(0, SERVED_SHOWN)) {
      const entry = C.el("li", item.id);
      entry.title = `version ${item.version}`;
      list.append(entry);
    }
    if (served.length > SERVED_SHOWN) list.append(C.el("li", `… and ${served.length - SERVED_SHOWN} more`, "more"));
    cell.append(list);
    return cell;
  }

  function showRecord(record) {
    const row = C.el("tr");
    row.dataset.seq = record.seq;
    row.dataset.nation = record.nation;
    const who = C.el("td", `${record.nation || "—"} / ${record.subject || "—"}`, "who");
    const decision = C.el("td");
    decision.append(C.el("span", record.decision, `badge ${record.decision === "allow" ? "allow" : "deny"}`));
    if (record.reason) decision.append(C.el("div", record.reason, "reason"));
    row.append(C.el("td", record.seq), C.el("td", record.at), who, C.el("td", record.method),
               C.routeCell(record.route), C.el("td", record.status), decision, servedCell(record.served || []));
    const body = $("live-records").tBodies[0];
    body.prepend(row); // newest on top
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }

  // ---- the stream ------------------------------------------------------------------------

  function setRunning(running) {
    $("live-start").hidden = running;
    $("live-stop").hidden = !running;
  }

  function stop(message, isError) {
    if (controller) controller.abort();
    controller = null;
    clearTimeout(retryTimer);
    retryTimer = null;
    setRunning(false);
    C.say("live-status", message, isError);
  }

  function retry(reason, mine) {
    if (controller !== mine) return; // stopped, or replaced by a newer connection
    failures += 1;
    const wait = Math.min(LONGEST_WAIT_S, 2 ** (failures - 1));
    C.say("live-status", `Connection lost (${reason}); reconnecting in ${wait} s…`, true);
    retryTimer = setTimeout(() => connect(), wait * 1000);
  }

  async function connect() {
    const mine = new AbortController();
    controller = mine;
    const url = new URL(`${C.API}/live`, window.location.origin);
    if ($("live-served").checked) url.searchParams.set("served", "true");
    const headers = { Authorization: `Bearer ${C.token()}`, Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    let response;
    try {
      response = await fetch(url, { headers, credentials: "omit", cache: "no-store", signal: mine.signal });
    } catch (error) {
      retry(error.message, mine);
      return;
    }
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      const failure = new C.ApiFailure(response.status, body);
      if (response.status === 429 || response.status >= 500) retry(`HTTP ${response.status}`, mine);
      else stop(C.explain(failure), true); // the token or the request is refused: retrying would not help
      return;
    }
    failures = 0;
    C.say("live-status", "Live: new records appear at the top as they are written.");
    let closed = null;
    const parser = new EventParser((event) => {
      if (event.type === "record") {
        showRecord(JSON.parse(event.data));
        if (event.id !== null) lastId = event.id;
      } else if (event.type === "close") {
        closed = JSON.parse(event.data).reason || "no reason given";
      }
    });
    const lines = new LineBuffer();
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    try {
      while (closed === null) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const line of lines.push(decoder.decode(value, { stream: true }))) parser.line(line);
      }
    } catch (error) {
      retry(error.message, mine);
      return;
    }
    if (closed !== null) {
      if (controller === mine) stop(`The server ended the live view: ${closed}.`, true);
      return;
    }
    retry("the server ended the stream", mine);
  }

  $("live-start").addEventListener("click", () => {
    stop("");
    lastId = null; // from now: the search panel shows what came before
    failures = 0;
    setRunning(true);
    C.say("live-status", "Connecting…");
    connect();
  });
  $("live-stop").addEventListener("click", () => stop("Stopped."));
  // A changed filter applies at once: reconnect after the last record shown.
  $("live-served").addEventListener("change", () => {
    if (!controller) return;
    controller.abort();
    clearTimeout(retryTimer);
    failures = 0;
    connect();
  });
  $("logout").addEventListener("click", () => {
    stop("");
    $("live-records").tBodies[0].replaceChildren();
  });
})();
