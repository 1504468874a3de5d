// Tearline console, disclosure review: formatting and the per-partner preview's rendering, shared
// by disclosure.js. Every value goes into the page as text (textContent, createElement), never as
// HTML: held items are written by analysts and may come from anywhere.
"use strict";

(() => {
  const C = window.TearlineConsole;
  const ACTION_NAMES = {
    release: "release as marked",
    narrow: "narrow",
    tearline: "tearline",
    decline: "decline",
  };

  /** Explain a failure: the problem's detail (RFC 9457) as the server gave it. */
  function explain(error) {
    if (error instanceof C.ApiFailure) {
      if (error.status === 401) return `Token refused (401): ${error.message} Log out and paste a valid token.`;
      return `Refused (${error.status}): ${error.message}`;
    }
    return `Request failed: ${error.message}`;
  }

  // ---- formatting ------------------------------------------------------------------------

  /** Milliseconds since the epoch of an API timestamp (microsecond precision is cut to milli). */
  function millis(stamp) {
    return Date.parse(String(stamp || "").replace(/(\.\d{3})\d+Z$/, "$1Z"));
  }

  /** A duration in seconds, for a person: "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
  function duration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
    const s = Math.max(0, Number(seconds));
    if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
    const minutes = Math.floor(s / 60);
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return `${hours} h ${minutes % 60} min`;
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  function age(posted) {
    const at = millis(posted);
    return Number.isNaN(at) ? "—" : duration((Date.now() - at) / 1000);
  }

  function proposalText(review) {
    if (!review.proposal) return "";
    const { action, banner } = review.proposal;
    return `${ACTION_NAMES[action] || action}${banner ? " at " + banner : ""}, proposed by ${review.proposed_by}`;
  }

  // ---- the preview -----------------------------------------------------------------------

  /** Why a partner would not receive an item, or "" when it would. */
  function withheldBecause(item) {
    if (item.would_receive) return "";
    if (!item.can_read_collection) return "may not read the collection";
    if (!item.releasable) return "not releasable to it";
    if (item.limiting_references.some((ref) => ref.required)) return "withheld: a required reference it does not see";
    return "withheld: marked beyond it";
  }

  function itemDetail(item, label) {
    const box = C.el("div", null, `preview-item ${item.would_receive ? "receives" : "withheld"}`);
    box.dataset.objectId = item.object_id;
    const head = C.el("div");
    if (label) head.append(C.el("span", `${label}: `, "object-id"));
    head.append(C.el("span", item.would_receive ? "receives" : "does not receive",
                     `badge ${item.would_receive ? "allow" : "deny"}`));
    const why = withheldBecause(item);
    if (why) head.append(C.el("span", ` ${why}`, "why"));
    box.append(head);
    if (item.redacted.length) {
      const redacted = C.el("div", null, "redacted");
      redacted.append(C.el("span", "redacted: ", "hint"));
      redacted.append(C.el("code", item.redacted.join(", ")));
      box.append(redacted);
    }
    if (item.limiting_references.length) {
      const refs = C.el("ul", null, "limiting");
      for (const ref of item.limiting_references) {
        refs.append(C.el("li", `${ref.property} → ${ref.id}${ref.required ? " (required: withholds the item)"
                                                                          : " (removed from its copy)"}`));
      }
      box.append(C.el("span", "limiting references:", "hint"), refs);
    }
    return box;
  }

  /** One row per partner: who it is and, per item, whether it would receive it and what it loses. */
  function previewTable(partners, id) {
    const table = C.el("table", null, "preview");
    table.id = id;
    const head = C.el("tr");
    for (const title of ["nation", "clearance", "would receive", "items"]) head.append(C.el("th", title));
    table.append(C.el("thead"), C.el("tbody"));
    table.tHead.append(head);
    for (const partner of partners) {
      const row = C.el("tr");
      row.dataset.nation = partner.nation;
      row.dataset.receives = String(partner.would_receive);
      const nation = C.el("td", partner.nation);
      if (!partner.active) nation.append(C.el("div", "inactive", "hint"));
      const items = C.el("td", null, "items");
      const several = partner.items.length > 1;
      for (const item of partner.items) items.append(itemDetail(item, several ? item.object_id : ""));
      row.append(nation, C.el("td", partner.clearance),
                 C.el("td", `${partner.would_receive} of ${partner.items.length}`, "count"), items);
      table.tBodies[0].append(row);
    }
    return table;
  }

  function receivers(partners) {
    const nations = partners.filter((p) => p.would_receive > 0).map((p) => p.nation);
    return nations.length ? nations.join(", ") : "no partner";
  }

  window.TearlineDisclosureView = { ACTION_NAMES, explain, millis, duration, age, proposalText, previewTable, receivers };
})();
