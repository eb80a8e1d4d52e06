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
      // A redirect here means the session ended (to the sign-in page): say so
      // instead of showing that page inside the preview.
      fetch("/admin/items/preview", { method: "POST", body: data, credentials: "same-origin",
        redirect: "manual", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.type === "opaqueredirect" || r.status === 0) { return Promise.reject("signed out"); }
          return r.ok ? r.text() : Promise.reject(r.status);
        })
        .then(function (html) { out.innerHTML = html; out.hidden = false; })
        .catch(function (why) {
          if (why === "signed out") {
            out.textContent = "The preview stopped: your session has ended. Copy your text, sign in again in another tab, then save.";
          }
        });
    };
    body.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
    if (body.value.trim() !== "") { refresh(); }
  }
})();
