// Tearline console, disclosure review: the officers' queue, one item's content and per-partner
// preview, decisions (one item or a batch) and the release speed (GET /api/v1/disclosure/queue,
// GET /api/v1/disclosure/reviews/{id}, POST /api/v1/disclosure/preview, POST
// /api/v1/disclosure/decisions, GET /api/v1/disclosure/speed).
//
// Shown to a token the disclosure queue answers (console.js decides at login). The calls go through
// console.js (the token travels only in the Authorization header). Held items are written by
// analysts and may come from anywhere: every value, the item's content included, goes into the
// page as text (textContent, createElement), never as HTML.
"use strict";

(() => {
  const C = window.TearlineConsole;
  // Formatting and the preview's rendering (disclosure-view.js).
  const { ACTION_NAMES, explain, duration, age, proposalText, previewTable, receivers } =
    window.TearlineDisclosureView;
  const $ = (id) => document.getElementById(id);
  const BASE = "/api/v1/disclosure";
  const PAGE_SIZE = 100;

  let active = false; // the panel is open (an officer is logged in)
  let nextCursor = null;
  let lastCollection = "";
  let listGeneration = 0;
  let detailGeneration = 0;
  let selected = null; // the review whose detail is shown, or null
  const shown = new Map(); // review id -> the queue's description, for the reviews listed
  const checked = new Set(); // review ids ticked for a batch

  // ---- the queue -------------------------------------------------------------------------

  function itemCell(review) {
    const cell = C.el("td", null, "item");
    cell.append(C.link(`${review.type}${review.name ? ": " + review.name : ""}`, "Show this item and its preview",
                     () => showReview(review.id)));
    cell.append(C.el("div", review.object_id, "object-id"));
    return cell;
  }

  function queueRow(review) {
    const row = C.el("tr");
    row.dataset.reviewId = review.id;
    row.dataset.objectId = review.object_id;
    row.classList.toggle("selected", review.id === selected);
    const pick = C.el("td");
    const box = C.el("input");
    box.type = "checkbox";
    box.className = "pick";
    box.checked = checked.has(review.id);
    box.setAttribute("aria-label", `Select ${review.object_id} for a batch`);
    box.addEventListener("change", () => {
      if (box.checked) checked.add(review.id);
      else checked.delete(review.id);
      updateSelection();
    });
    pick.append(box);
    const banner = C.el("td", null, "banner");
    const marking = C.el("span", review.banner, "marking");
    marking.dataset.classification = review.classification;
    banner.append(marking);
    const posted = C.el("td", age(review.posted), "age");
    posted.title = `posted ${review.posted}`;
    const two = C.el("td", null, "two-person");
    if (review.two_person) two.append(C.el("span", "two officers", "badge two"));
    else two.textContent = "—";
    const proposal = C.el("td", null, "proposal");
    if (review.proposal) proposal.append(C.el("span", "awaiting second officer", "badge awaiting"),
                                         C.el("div", proposalText(review)));
    else proposal.textContent = "—";
    row.append(pick, banner, itemCell(review), C.el("td", review.collection, "collection"),
               C.el("td", review.submitted_by), posted, two, proposal);
    return row;
  }

  async function loadQueue(collection, after) {
    const body = $("dq-list").tBodies[0];
    const generation = ++listGeneration;
    C.say("dq-status", "Loading…");
    let page;
    try {
      page = await C.call(`${BASE}/queue`, { params: { collection, limit: PAGE_SIZE, after: after ?? "" } });
      if (generation !== listGeneration) return;
    } catch (error) {
      if (generation !== listGeneration) return;
      C.say("dq-status", explain(error), true);
      $("dq-more").hidden = true;
      return;
    }
    if (after === undefined) {
      body.replaceChildren();
      shown.clear();
    }
    for (const review of page.reviews) {
      shown.set(review.id, review);
      body.append(queueRow(review));
    }
    for (const id of [...checked]) if (!shown.has(id)) checked.delete(id); // decided meanwhile
    updateSelection();
    lastCollection = collection;
    nextCursor = page.next;
    $("dq-more").hidden = nextCursor === null;
    const count = body.rows.length;
    C.say("dq-status", count ? `${count} item${count === 1 ? "" : "s"} waiting, oldest first` +
          (nextCursor === null ? "." : "; more wait.") : "Nothing waits for a decision.");
  }

  function updateSelection() {
    const count = checked.size;
    $("dq-selected").textContent = count ? `${count} item${count === 1 ? "" : "s"} selected.` : "No item selected.";
    $("dq-preview-selection").disabled = count === 0;
    $("dq-release-selection").disabled = count === 0;
    const boxes = [...$("dq-list").tBodies[0].querySelectorAll("input.pick")];
    $("dq-all").checked = boxes.length > 0 && boxes.every((box) => box.checked);
  }

  // ---- one review ------------------------------------------------------------------------

  function markSelected() {
    for (const row of $("dq-list").tBodies[0].rows) row.classList.toggle("selected", row.dataset.reviewId === selected);
  }

  async function showReview(reviewId) {
    const box = $("dq-detail");
    const generation = ++detailGeneration;
    selected = reviewId;
    markSelected();
    C.say("dd-status", "Loading…");
    let answer;
    try {
      answer = await C.call(`${BASE}/reviews/${encodeURIComponent(reviewId)}`);
      if (generation !== detailGeneration) return;
    } catch (error) {
      if (generation !== detailGeneration) return;
      $("dd-title").textContent = `Review ${reviewId}`;
      $("dd-fields").replaceChildren();
      $("dd-content").textContent = "";
      $("dd-markings").textContent = "";
      $("dd-preview").replaceChildren();
      C.say("dd-status", explain(error), true);
      box.hidden = false;
      return;
    }
    const review = answer.review;
    box.dataset.reviewId = review.id;
    $("dd-title").textContent = `${review.type}${review.name ? ": " + review.name : ""}`;
    const fields = $("dd-fields");
    fields.replaceChildren();
    const values = {
      review: review.id,
      object: review.object_id,
      version: review.version,
      banner: review.banner,
      collection: review.collection,
      "submitted by": review.submitted_by,
      posted: `${review.posted} (${age(review.posted)} ago)`,
      state: review.state,
      "two-person rule": review.two_person ? "yes: a second, different officer must confirm a release" : "no",
      "pending proposal": review.proposal ? proposalText(review) + (review.proposed ? ` at ${review.proposed}` : "")
                                          : "—",
    };
    for (const [name, value] of Object.entries(values)) fields.append(C.el("dt", name), C.el("dd", value ?? "—"));
    $("dd-content").textContent = JSON.stringify(answer.content, null, 2);
    // Released beside the item: a statement's name or custom properties are text the officer must read too.
    $("dd-markings").textContent = answer.markings.length ? JSON.stringify(answer.markings, null, 2) : "none (TLP only)";
    $("dd-preview").replaceChildren(
      C.el("p", `Released as marked, it would reach: ${receivers(answer.partners)}.`, "receivers"),
      previewTable(answer.partners, "dd-partners"),
    );
    if (review.proposal) {
      // Confirming needs the same decision: offer it.
      $("dd-banner").value = review.proposal.banner || "";
    }
    C.say("dd-status", review.proposal
      ? `Awaiting a second officer: confirm "${proposalText(review)}" with the same action, or decline.` : "");
    box.hidden = false;
  }

  function outcomeText(outcomes) {
    return outcomes.map((o) => {
      const who = o.released_to.length ? o.released_to.join(", ") : "no partner";
      if (o.awaiting_second_officer) return "proposed, awaiting a second officer";
      if (o.state === "declined") return "declined";
      if (o.state === "replaced") return `released ${o.result_id ? o.result_id + " " : ""}to ${who}`;
      return `${o.state} to ${who}`;
    }).join("; ");
  }

  async function decide(reviewIds, action, reason, banner) {
    const body = { reviews: reviewIds, action, reason };
    if (banner) body.banner = banner;
    const answer = await C.call(`${BASE}/decisions`, { method: "POST", body });
    return answer.outcomes;
  }

  async function decideOne(action) {
    if (selected === null) return;
    const reason = $("dd-reason").value.trim();
    const banner = $("dd-banner").value.trim();
    if (!reason) {
      C.say("dd-status", "A reason is required: it goes on record and to the analyst.", true);
      $("dd-reason").focus();
      return;
    }
    if ((action === "narrow" || action === "tearline") && !banner) {
      C.say("dd-status", `A ${action} needs the banner to release at.`, true);
      $("dd-banner").focus();
      return;
    }
    const reviewId = selected;
    C.say("dd-status", "Deciding…");
    let outcomes;
    try {
      outcomes = await decide([reviewId], action, reason, action === "narrow" || action === "tearline" ? banner : "");
    } catch (error) {
      C.say("dd-status", explain(error), true);
      return;
    }
    const text = `${ACTION_NAMES[action]}: ${outcomeText(outcomes)}.`;
    $("dd-reason").value = "";
    $("dq-batch-preview").hidden = true; // no longer what a release of the selection would do
    const pending = outcomes.some((o) => o.awaiting_second_officer);
    await Promise.all([loadQueue(lastCollection), loadSpeed()]);
    if (pending) await showReview(reviewId);
    else closeDetail();
    C.say("dq-outcome", text);
  }

  function closeDetail() {
    ++detailGeneration;
    selected = null;
    markSelected();
    $("dq-detail").hidden = true;
    delete $("dq-detail").dataset.reviewId;
    C.say("dd-status", "");
  }

  // ---- a batch ---------------------------------------------------------------------------

  async function previewSelection() {
    const ids = [...checked];
    const box = $("dq-batch-preview");
    if (!ids.length) return;
    C.say("dq-batch-status", "Previewing…");
    let answer;
    try {
      answer = await C.call(`${BASE}/preview`, { method: "POST", body: { reviews: ids } });
    } catch (error) {
      C.say("dq-batch-status", explain(error), true);
      box.hidden = true;
      return;
    }
    C.say("dq-batch-status", "");
    box.replaceChildren(
      C.el("h3", `Preview of ${ids.length} item${ids.length === 1 ? "" : "s"} released together`),
      C.el("p", `Released as marked, they would reach: ${receivers(answer.partners)}.`, "receivers"),
      previewTable(answer.partners, "dq-union"),
    );
    box.hidden = false;
  }

  async function releaseSelection() {
    const ids = [...checked];
    if (!ids.length) return;
    const reason = $("dq-batch-reason").value.trim();
    if (!reason) {
      C.say("dq-batch-status", "A reason is required: it goes on record and to the analysts.", true);
      $("dq-batch-reason").focus();
      return;
    }
    C.say("dq-batch-status", "Releasing…");
    let outcomes;
    try {
      outcomes = await decide(ids, "release", reason);
    } catch (error) {
      C.say("dq-batch-status", explain(error), true); // all or nothing: nothing was decided
      return;
    }
    $("dq-batch-reason").value = "";
    $("dq-batch-preview").hidden = true;
    checked.clear();
    if (selected !== null && ids.includes(selected)) closeDetail();
    await Promise.all([loadQueue(lastCollection), loadSpeed()]);
    C.say("dq-batch-status", "");
    C.say("dq-outcome", `release as marked of ${ids.length} item${ids.length === 1 ? "" : "s"}: ` +
          `${outcomeText(outcomes)}.`);
  }

  // ---- release speed ---------------------------------------------------------------------

  async function loadSpeed() {
    let answer;
    try {
      answer = await C.call(`${BASE}/speed`);
    } catch (error) {
      C.say("ds-status", explain(error), true);
      return;
    }
    const rows = answer.speed.map((line) => {
      const row = C.el("tr");
      row.dataset.collection = line.collection;
      row.dataset.classification = line.classification;
      const p50 = C.el("td", duration(line.p50_seconds), "p50");
      const p95 = C.el("td", duration(line.p95_seconds), "p95");
      if (line.p50_seconds !== null) p50.title = `${line.p50_seconds} s`;
      if (line.p95_seconds !== null) p95.title = `${line.p95_seconds} s`;
      row.append(C.el("td", line.collection, "collection"), C.el("td", line.classification),
                 C.el("td", line.released), C.el("td", line.declined), C.el("td", line.waiting, "waiting"), p50, p95);
      return row;
    });
    $("ds-speed").tBodies[0].replaceChildren(...rows);
    C.say("ds-status", rows.length ? "" : "No item has been held yet.");
  }

  // ---- controls --------------------------------------------------------------------------

  function reset() {
    active = false;
    ++listGeneration;
    closeDetail();
    shown.clear();
    checked.clear();
    nextCursor = null;
    $("dq-list").tBodies[0].replaceChildren();
    $("ds-speed").tBodies[0].replaceChildren();
    $("dq-batch-preview").replaceChildren();
    $("dq-batch-preview").hidden = true;
    $("dq-more").hidden = true;
    $("dd-reason").value = "";
    $("dd-banner").value = "";
    $("dq-batch-reason").value = "";
    for (const id of ["dq-status", "dq-outcome", "dq-batch-status", "ds-status"]) C.say(id, "");
    updateSelection();
  }

  document.addEventListener("tearline:login", (event) => {
    reset();
    if (!event.detail.areas.includes("disclosure")) return;
    active = true;
    loadQueue($("dq-collection").value.trim());
    loadSpeed();
  });
  $("logout").addEventListener("click", reset);

  $("dq-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!active) return;
    loadQueue($("dq-collection").value.trim());
    loadSpeed();
  });
  $("dq-more").addEventListener("click", () => loadQueue(lastCollection, nextCursor));
  $("dq-all").addEventListener("change", () => {
    const on = $("dq-all").checked;
    for (const box of $("dq-list").tBodies[0].querySelectorAll("input.pick")) {
      box.checked = on;
      const id = box.closest("tr").dataset.reviewId;
      if (on) checked.add(id);
      else checked.delete(id);
    }
    updateSelection();
  });
  $("dq-preview-selection").addEventListener("click", previewSelection);
  $("dq-batch").addEventListener("submit", (event) => {
    event.preventDefault();
    releaseSelection();
  });
  $("dd-form").addEventListener("submit", (event) => event.preventDefault());
  for (const button of $("dd-form").querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => decideOne(button.dataset.action));
  }
  $("ds-refresh").addEventListener("click", loadSpeed);
})();
