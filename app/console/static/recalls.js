// Tearline audit console, recalls: every recall, and nation by nation how far its notice got
// (GET /api/v1/audit/recalls and GET /api/v1/audit/recalls/{recall_id}).
//
// Newest first, 50 at a time with keyset paging, filtered by object id and "outstanding only".
// Selecting a recall shows each recipient nation's state (notified, received, acknowledged) and
// the recalls derived from it. The calls go through console.js (the token travels only in the
// Authorization header); everything the API returns goes into the page as text.
"use strict";

(() => {
  const C = window.TearlineConsole;
  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 50;

  let nextCursor = null;
  let lastFilters = {};
  let listGeneration = 0;
  let detailGeneration = 0;
  let selected = null; // the recall id whose detail is shown, or null

  function objectLink(objectId) {
    return C.link(objectId, "Show who received this object", () => {
      $("d-object").value = objectId;
      C.showDissemination(objectId);
      $("dissemination").scrollIntoView();
    });
  }

  /** A cell with a time and, under it, who (or a dash when the step has not happened). */
  function stepCell(at, by) {
    const cell = C.el("td");
    if (!at) {
      cell.textContent = "—";
      return cell;
    }
    cell.append(C.el("div", at));
    if (by) cell.append(C.el("div", `by ${by}`, "by"));
    return cell;
  }

  function stateBadge(state) {
    const known = ["notified", "received", "acknowledged"].includes(state) ? state : "notified";
    return C.el("span", state, `badge state-${known}`);
  }

  // ---- the list --------------------------------------------------------------------------

  function readFilters() {
    return {
      object_id: $("r-object").value.trim(),
      outstanding: $("r-outstanding").checked ? "true" : "",
    };
  }

  function recallRow(recall) {
    const row = C.el("tr");
    row.dataset.recallId = recall.recall_id;
    row.classList.toggle("selected", recall.recall_id === selected);
    const idCell = C.el("td", null, "recall-id");
    idCell.append(C.link(recall.recall_id, "Show this recall nation by nation", () => showRecall(recall.recall_id)));
    const objectCell = C.el("td", null, "object");
    objectCell.append(objectLink(recall.object_id));
    const outstanding = recall.outstanding || [];
    row.append(idCell, C.el("td", recall.issued), objectCell, C.el("td", recall.cause),
               C.el("td", recall.reason, "reason"), C.el("td", recall.action), C.el("td", recall.nations),
               C.el("td", recall.received), C.el("td", recall.acknowledged),
               C.el("td", outstanding.length ? outstanding.join(", ") : "—", "outstanding"));
    return row;
  }

  async function list(filters, after) {
    const body = $("recall-list").tBodies[0];
    const generation = ++listGeneration;
    C.say("recalls-status", "Loading…");
    let page;
    try {
      page = await C.api("/recalls", { ...filters, limit: PAGE_SIZE, after: after ?? "" });
      if (generation !== listGeneration) return; // a newer listing was started meanwhile
    } catch (error) {
      if (generation !== listGeneration) return;
      C.say("recalls-status", C.explain(error), true);
      $("recalls-more").hidden = true;
      return;
    }
    if (after === undefined) body.replaceChildren();
    for (const recall of page.recalls) body.append(recallRow(recall));
    lastFilters = filters;
    nextCursor = page.more ? page.next : null;
    $("recalls-more").hidden = nextCursor === null;
    const shown = body.rows.length;
    C.say("recalls-status", shown ? `${shown} recall${shown === 1 ? "" : "s"} shown` +
          (nextCursor === null ? "." : "; more match.") : "No recall matches.");
  }

  // ---- one recall ------------------------------------------------------------------------

  function recipientRow(recipient) {
    const row = C.el("tr");
    row.dataset.nation = recipient.nation;
    row.dataset.state = recipient.state;
    const nation = C.el("td", recipient.nation);
    nation.title = `notice ${recipient.notice_id} in collection ${recipient.collection_id}`;
    const state = C.el("td");
    state.append(stateBadge(recipient.state));
    row.append(nation, state, C.el("td", recipient.notified),
               stepCell(recipient.received, recipient.received_by),
               stepCell(recipient.acknowledged, recipient.acknowledged_by));
    return row;
  }

  async function showRecall(recallId) {
    const box = $("recall-detail");
    const generation = ++detailGeneration;
    selected = recallId;
    for (const row of $("recall-list").tBodies[0].rows) {
      row.classList.toggle("selected", row.dataset.recallId === recallId);
    }
    let recall;
    try {
      recall = await C.api(`/recalls/${encodeURIComponent(recallId)}`);
      if (generation !== detailGeneration) return;
    } catch (error) {
      if (generation !== detailGeneration) return;
      box.replaceChildren(C.el("p", C.explain(error), "message error"));
      box.hidden = false;
      return;
    }
    const fields = C.el("dl");
    for (const name of ["recall_id", "object_id", "cause", "reason", "action", "issued", "issued_by",
                        "trigger_version", "parent_id", "source_note_id"]) {
      const value = C.el("dd");
      if (name === "object_id" && recall.object_id) value.append(objectLink(recall.object_id));
      else if (name === "parent_id" && recall.parent_id) {
        value.append(C.link(recall.parent_id, "Show the recall this one follows from", () => showRecall(recall.parent_id)));
      } else value.textContent = recall[name] ?? "—";
      fields.append(C.el("dt", name), value);
    }

    const recipients = recall.recipients || [];
    const table = C.el("table");
    table.id = "recall-recipients";
    const head = C.el("tr");
    for (const title of ["nation", "state", "notified (UTC)", "received (UTC)", "acknowledged (UTC)"]) {
      head.append(C.el("th", title));
    }
    table.append(C.el("thead"), C.el("tbody"));
    table.tHead.append(head);
    table.tBodies[0].append(...recipients.map(recipientRow));

    const derived = recall.derived || [];
    const derivedList = C.el("ul");
    derivedList.id = "recall-derived";
    for (const id of derived) {
      const entry = C.el("li");
      entry.append(C.link(id, "Show this derived recall", () => showRecall(id)));
      derivedList.append(entry);
    }

    box.replaceChildren(
      C.el("h3", `Recall ${recall.recall_id}`), fields,
      C.el("h4", `Recipients: ${recipients.length} nation(s)`),
      recipients.length ? table : C.el("p", "No nation was notified.", "hint"),
      C.el("h4", `Derived recalls: ${derived.length}`),
      derived.length ? derivedList : C.el("p", "None.", "hint"),
    );
    box.hidden = false;
  }

  // ---- controls --------------------------------------------------------------------------

  // Show (again): the list from the top and, when a recall is open, its detail afresh.
  $("recalls-form").addEventListener("submit", (event) => {
    event.preventDefault();
    list(readFilters());
    if (selected !== null) showRecall(selected);
  });
  // "Outstanding only" applies at once once a list is shown.
  $("r-outstanding").addEventListener("change", () => {
    if ($("recall-list").tBodies[0].rows.length || $("recalls-status").textContent) list(readFilters());
  });
  $("recalls-more").addEventListener("click", () => list(lastFilters, nextCursor));
  $("logout").addEventListener("click", () => {
    ++listGeneration;
    ++detailGeneration;
    selected = null;
    nextCursor = null;
    $("recall-list").tBodies[0].replaceChildren();
    $("recall-detail").replaceChildren();
    $("recall-detail").hidden = true;
    $("recalls-more").hidden = true;
    C.say("recalls-status", "");
  });
})();
