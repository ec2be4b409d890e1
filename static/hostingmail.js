// Copy buttons: <button type="button" data-copy="#element-id">Copy</button> copies that element's text (its
// source text when it is not rendered, e.g. inside a closed <details>: innerText is empty there).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button || !navigator.clipboard) return;
  var source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText((source.innerText || source.textContent).trim()).then(function () {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = label; }, 1500);
  });
});
