// Tearline audit console: the dissemination timeline, an SVG drawn from a /recipients answer.
// Loaded before console.js, which calls TearlineTimeline.draw. Text goes in with textContent
// only, as everywhere in the console: nations and versions come from the API.
"use strict";

window.TearlineTimeline = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f5fa8", "#c05a00", "#2e7d32", "#7b3fa0", "#b3261e", "#00796b"];

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** Milliseconds since the epoch of a record time such as 2026-11-25T17:19:59.482113Z. */
  function parseTime(text) {
    return Date.parse(String(text).replace(/(\.\d{3})\d+/, "$1"));
  }

  function shortTime(ms, precise) {
    const text = new Date(ms).toISOString().replace("T", " ");
    return precise ? text : text.replace(/\.\d+Z$/, "Z");
  }

  /** One lane per (nation, version): a bar from first to last receipt, dots at both ends. */
  function draw(recipients) {
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

  return { draw };
})();
