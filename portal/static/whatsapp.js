// The WhatsApp setup wizard (portal/whatsapp_setup.go). Both pages work
// without this file; with it:
//  - the business-function field shows only for an agent that has none;
//  - the webhook page's check asks a small JSON endpoint when "Check now" is
//    pressed (instead of posting the form and reloading) and every few
//    seconds while this page is open, until Meta has verified the webhook and
//    a message for the number has arrived. The server writes the sentences.
(function () {
  "use strict";

  var select = document.querySelector("select[data-business-function-toggle]");
  var field = document.querySelector("[data-business-function]");
  if (select && field) {
    var sync = function () {
      var opt = select.options[select.selectedIndex];
      var has = !!(opt && opt.dataset.hasFunction);
      field.hidden = has;
      var input = field.querySelector("textarea");
      if (input) input.disabled = has; // an agent's own business function is changed in the designer
    };
    select.addEventListener("change", sync);
    sync();
  }

  // Copy buttons next to what to paste into Meta's console. The clipboard
  // API needs a secure context; elsewhere the text is selected instead, for
  // Ctrl+C. Either way the button says what happened.
  Array.prototype.forEach.call(document.querySelectorAll("[data-copy-text]"), function (b) {
    var label = b.lastChild;
    function say(what) {
      var was = label.textContent;
      label.textContent = what;
      setTimeout(function () { label.textContent = was; }, 1500);
    }
    function select() {
      var code = b.parentNode.querySelector("code");
      if (!code) return;
      var range = document.createRange();
      range.selectNodeContents(code);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      say("Press Ctrl+C");
    }
    b.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(b.getAttribute("data-copy-text")).then(function () { say("Copied"); }, select);
      } else {
        select();
      }
    });
  });

  var box = document.querySelector("[data-webhook-status]");
  if (!box) return;
  var url = box.getAttribute("data-webhook-status");
  var form = document.querySelector("form[data-webhook-check]");
  var button = form && form.querySelector("button");
  var every = 5000, patience = 15 * 60 * 1000;
  var timer = null, since = Date.now(), busy = false;

  function text(name, value) {
    var el = box.querySelector('[data-field="' + name + '"]');
    if (el && value !== undefined && el.textContent !== value) el.textContent = value;
  }
  function row(name, ok) {
    var r = box.querySelector('[data-check="' + name + '"]');
    if (!r) return;
    r.classList.toggle("ok", ok);
    var use = r.querySelector(".check-dot use");
    if (use) use.setAttribute("href", ok ? "#i-check" : "#i-clock");
  }
  function show(s) {
    text("verified_text", s.verified_text);
    text("delivered_text", s.delivered_text);
    text("checked_text", s.checked_text);
    row("webhook", s.webhook_ok);
    row("delivery", s.delivered);
    box.setAttribute("data-done", s.done ? "1" : "");
  }
  function later() {
    clearTimeout(timer);
    if (box.getAttribute("data-done") || Date.now() - since > patience) return;
    timer = setTimeout(function () { if (document.hidden) later(); else check(); }, every);
  }
  function check() {
    if (busy) return;
    busy = true;
    if (button) button.disabled = true;
    text("checked_text", "Checking…");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(show, function () { text("checked_text", "Could not check just now; trying again shortly."); })
      .then(function () { busy = false; if (button) button.disabled = false; later(); });
  }
  if (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      since = Date.now(); // a press keeps the page checking a while longer
      check();
    });
  }
  later();
})();
