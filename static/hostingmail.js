// The words this script shows come from the page (data-text-* on <html>, in the page's language): none are here.
function panelText(name) {
  return document.documentElement.getAttribute("data-text-" + name) || "";
}

// Copy buttons: <button type="button" data-copy="#element-id">Copy</button> copies that element's text (its
// source text when it is not rendered, e.g. inside a closed <details>: innerText is empty there).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) return;
  var source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText((source.innerText || source.textContent).trim()).then(function () {
    var label = button.textContent;
    var copied = panelText("copied");
    if (!copied) return;
    button.textContent = copied;
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});

// After a failed submit, put the keyboard (and a screen reader) on the first field in error; a form whose only
// errors are not a field's gets the error summary focused instead.
document.addEventListener("DOMContentLoaded", function () {
  var main = document.getElementById("content");
  if (!main) return;
  var target = main.querySelector("[aria-invalid=true]") ||
    main.querySelector(".error-summary, .errorlist.nonfield, .errorlist");
  if (!target) return;
  if (!target.matches("input, select, textarea, button, a[href]")) target.setAttribute("tabindex", "-1");
  target.focus();
});

// A table wider than the screen scrolls inside its .table-wrap: make that region reachable and scrollable by
// keyboard, and name it after the table's caption or the heading above it (WCAG 2.1.1, 1.4.10).
function labelScrollingTables() {
  document.querySelectorAll(".table-wrap").forEach(function (wrap) {
    var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
    if (!scrolls) {
      if (wrap.dataset.scrollRegion) {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        delete wrap.dataset.scrollRegion;
      }
      return;
    }
    if (wrap.dataset.scrollRegion) return;
    wrap.dataset.scrollRegion = "1";
    wrap.setAttribute("tabindex", "0");
    wrap.setAttribute("role", "region");
    if (!wrap.hasAttribute("aria-label") && !wrap.hasAttribute("aria-labelledby")) {
      var caption = wrap.querySelector("caption");
      var heading = null;
      for (var node = wrap.previousElementSibling; node && !caption; node = node.previousElementSibling) {
        if (/^H[1-6]$/.test(node.tagName)) { heading = node; break; }
      }
      if (!caption && !heading) {
        var section = wrap.closest("section, .card, main");
        heading = section && section.querySelector("h1, h2, h3");
      }
      var name = ((caption || heading || document.querySelector("h1") || {}).textContent || "").trim();
      var scrolls = panelText("scrolls");
      name = name || panelText("table");
      wrap.setAttribute("aria-label", scrolls ? name + " (" + scrolls + ")" : name);
    }
  });
}
document.addEventListener("DOMContentLoaded", labelScrollingTables);
window.addEventListener("resize", labelScrollingTables);
document.addEventListener("htmx:afterSettle", labelScrollingTables);
