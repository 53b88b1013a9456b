// Measures the report as a browser lays it out. tests/test_report_pages.py appends it to a copy of report.html, shows
// that copy in an iframe of the width under test (srcdoc: same origin as the page around it) and reads what it
// writes into the outer page's <pre id="layout-check"> from Chromium's --dump-dom.
(() => {
  const vw = document.documentElement.clientWidth;
  const vh = window.innerHeight;
  const out = { width: vw, scrollWidth: document.documentElement.scrollWidth, overflow: [], zoom: null, toc: null };
  const scrollBox = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (/(auto|scroll)/.test(getComputedStyle(a).overflowX)) return a;
    }
    return null;
  };
  const name = (el) => `${el.tagName.toLowerCase()}.${el.getAttribute("class") || ""}`;
  for (const el of document.querySelectorAll("table, figure, svg, img, p, li, h1, h2, h3, h4, pre, .tbl, .cm-row")) {
    const r = el.getBoundingClientRect();
    if (!r.width || getComputedStyle(el).position === "fixed") continue;
    const box = scrollBox(el);
    const edge = box ? box.getBoundingClientRect() : null;
    const [left, right] = edge ? [edge.left, edge.right] : [0, vw];
    // inside a scroll box an element may be as wide as it likes: the box itself must stay in the window
    if (edge && (edge.right > vw + 1 || edge.left < -1)) out.overflow.push(`${name(box)} box ${Math.round(edge.right)}`);
    if (!edge && (r.right > right + 1 || r.left < left - 1)) out.overflow.push(`${name(el)} ${Math.round(r.left)}-${Math.round(r.right)}`);
  }
  // whatever else widens the page: the text (a word too long for its line) past the window's edge, outside the
  // tables' scroll boxes, by its element and the start of its words
  if (out.scrollWidth > vw) {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = walker.nextNode(); node && out.overflow.length < 5; node = walker.nextNode()) {
      if (!node.textContent.trim() || scrollBox(node.parentElement)) continue;
      range.selectNodeContents(node);
      const right = range.getBoundingClientRect().right;
      if (right > vw + 1) out.overflow.push(`${name(node.parentElement)} text ${Math.round(right)}: ${node.textContent.trim().slice(0, 40)}`);
    }
  }
  const fig = document.querySelector("figure[tabindex]");
  if (fig) {
    const svg = fig.querySelector("svg");
    const before = svg.getBoundingClientRect();
    const flowBefore = fig.getBoundingClientRect().height;
    fig.focus();
    const zoomed = svg.getBoundingClientRect();
    const flowZoomed = fig.getBoundingClientRect().height;
    const focused = document.activeElement === fig;
    fig.blur();
    const after = svg.getBoundingClientRect();
    out.zoom = {
      before: [before.width, before.height], zoomed: [zoomed.width, zoomed.height], after: [after.width, after.height],
      window: [vw, vh], flow: [flowBefore, flowZoomed], focused,
    };
  }
  const links = [...document.querySelectorAll("nav.toc a")];
  const headings = [...document.querySelectorAll("h2:not(.unnumbered), h3")].filter((h) => !h.closest("nav"));
  out.toc = {
    links: links.length, headings: headings.length,
    missing: links.filter((a) => !document.getElementById(a.getAttribute("href").slice(1))).map((a) => a.textContent),
    visible: links.length ? links[0].getBoundingClientRect().width > 0 : false,
  };
  const pre = parent.document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = JSON.stringify(out);
  parent.document.body.appendChild(pre);
})();
