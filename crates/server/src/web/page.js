// What every page runs (the layout loads it, deferred). Pages work without it.

// Announcements of live pages: a page that live.js reloaded because its
// build or deploy moved on (or ended) says what it shows now in the layout's
// polite status region (#announce), read once by a screen reader; the text
// is the page's `data-announce`. A page loaded by hand announces nothing.
(function () {
  var region = document.getElementById("announce");
  var wanted = null;
  try { wanted = sessionStorage.getItem("prism-announce"); sessionStorage.removeItem("prism-announce"); } catch (e) { return; }
  var what = document.querySelector("[data-announce]");
  if (!region || !what || wanted !== location.pathname) return;
  // After the page has settled, so the change is announced, not read as page content.
  setTimeout(function () { region.textContent = what.dataset.announce; }, 500);
})();

// A wide table or diff scrolls inside its own box (.scroll-x): when it does,
// the box takes keyboard focus so the arrow keys scroll it (WCAG 2.1.1).
(function () {
  function mark() {
    document.querySelectorAll(".scroll-x").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) box.setAttribute("tabindex", "0");
      else box.removeAttribute("tabindex");
    });
  }
  mark();
  window.addEventListener("resize", mark);
})();
