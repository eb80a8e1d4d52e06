// newsdesk admin: small helps on top of forms that work without script.
(function () {
  "use strict";
  // Buttons with data-confirm ask before their form is sent.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  });
  // The Markdown preview of the item form, refreshed as one types.
  var body = document.getElementById("body");
  var out = document.getElementById("live-preview");
  if (body && out) {
    var form = body.form;
    var csrf = form.querySelector("input[name=csrf]").value;
    var timer = null;
    var refresh = function () {
      var data = new URLSearchParams();
      data.set("csrf", csrf);
      data.set("body", body.value);
      fetch("/admin/items/preview", { method: "POST", body: data, credentials: "same-origin",
        headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { out.innerHTML = html; out.hidden = false; })
        .catch(function () { /* the Preview button still works */ });
    };
    body.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
    if (body.value.trim() !== "") { refresh(); }
  }
})();
