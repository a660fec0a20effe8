// Konstruct portal: small, dependency-free enhancements. Every page works
// without this file; it adds confirmations, the model chain editor, the live
// system prompt preview, counters and copy buttons.
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  // Mobile navigation.
  $$("[data-toggle=sidebar]").forEach(function (b) {
    b.addEventListener("click", function () { document.body.classList.toggle("nav-open"); });
  });
  document.addEventListener("click", function (e) {
    if (document.body.classList.contains("nav-open") && !e.target.closest(".sidebar") && !e.target.closest("[data-toggle=sidebar]")) {
      document.body.classList.remove("nav-open");
    }
  });

  // Close the account menu when clicking elsewhere.
  document.addEventListener("click", function (e) {
    $$("details.menu[open]").forEach(function (d) { if (!d.contains(e.target)) d.removeAttribute("open"); });
  });

  // Confirmation dialogs: <form data-confirm="..." data-confirm-title="..." data-confirm-button="...">.
  var dialog = null;
  function confirmDialog(form) {
    if (!window.HTMLDialogElement) { return window.confirm(form.dataset.confirm); }
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "modal";
      dialog.innerHTML = '<form method="dialog"><div class="modal-body"><div class="modal-icon">' +
        '<svg class="i i-lg" viewBox="0 0 24 24"><path d="M12 9v4m0 4h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z"/></svg>' +
        '</div><div><h2></h2><p></p></div></div><div class="modal-foot">' +
        '<button class="btn" value="cancel">Cancel</button><button class="btn btn-danger" value="ok"></button></div></form>';
      document.body.appendChild(dialog);
    }
    $("h2", dialog).textContent = form.dataset.confirmTitle || "Are you sure?";
    $("p", dialog).textContent = form.dataset.confirm;
    $("button[value=ok]", dialog).textContent = form.dataset.confirmButton || "Confirm";
    dialog.onclose = function () {
      if (dialog.returnValue === "ok") { form.dataset.confirmed = "1"; form.requestSubmit ? form.requestSubmit() : form.submit(); }
    };
    dialog.showModal();
    $("button[value=cancel]", dialog).focus();
    return false;
  }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset || !form.dataset.confirm || form.dataset.confirmed) { return; }
    e.preventDefault();
    confirmDialog(form);
  }, true);

  // Type-to-confirm: the submit button enables when the typed text matches.
  $$("[data-match]").forEach(function (input) {
    var btn = $(input.dataset.target);
    function check() { if (btn) btn.disabled = input.value.trim() !== input.dataset.match; }
    input.addEventListener("input", check);
    check();
  });

  // Character counters: <textarea data-max="4000"> and a sibling .counter.
  $$("[data-max]").forEach(function (el) {
    var counter = $('[data-counter-for="' + el.id + '"]');
    if (!counter) return;
    function update() {
      var n = Array.from(el.value).length, max = +el.dataset.max;
      counter.textContent = n.toLocaleString() + " / " + max.toLocaleString();
      counter.classList.toggle("over", n > max);
    }
    el.addEventListener("input", update);
    update();
  });

  // Copy buttons: <button data-copy="text">.
  $$("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var text = b.dataset.copy;
      var done = function () { var t = b.title; b.title = "Copied"; setTimeout(function () { b.title = t; }, 1200); };
      if (navigator.clipboard) { navigator.clipboard.writeText(text).then(done, function () {}); }
    });
  });

  // Tool checkboxes highlight their card.
  $$(".check input[type=checkbox]").forEach(function (cb) {
    var card = cb.closest(".check");
    function sync() { card.classList.toggle("on", cb.checked); }
    cb.addEventListener("change", sync);
    sync();
  });

  // Model chain editor: reorder, remove, add rows of <input name="models">.
  $$("[data-models]").forEach(function (box) {
    var list = $(".models", box), max = +(box.dataset.max || 8), tmpl = $("template", box);
    function renumber() {
      var rows = $$(".model-row", list);
      rows.forEach(function (r, i) {
        $(".pos", r).textContent = i + 1;
        $("[data-up]", r).disabled = i === 0;
        $("[data-down]", r).disabled = i === rows.length - 1;
      });
      var add = $("[data-add-model]", box);
      if (add) add.disabled = rows.length >= max;
    }
    function addRow(value) {
      var node = tmpl.content.firstElementChild.cloneNode(true);
      $("input", node).value = value || "";
      list.appendChild(node);
      renumber();
      return node;
    }
    box.addEventListener("click", function (e) {
      var b = e.target.closest("button");
      if (!b || !box.contains(b)) return;
      var row = b.closest(".model-row");
      if (b.hasAttribute("data-add-model")) { e.preventDefault(); $("input", addRow("")).focus(); return; }
      if (!row) return;
      e.preventDefault();
      if (b.hasAttribute("data-up") && row.previousElementSibling) list.insertBefore(row, row.previousElementSibling);
      if (b.hasAttribute("data-down") && row.nextElementSibling) list.insertBefore(row.nextElementSibling, row);
      if (b.hasAttribute("data-remove")) { row.remove(); if (!$(".model-row", list)) addRow(""); }
      renumber();
    });
    // Without JavaScript the server renders spare empty rows; with it, keep one.
    var empties = $$(".model-row", list).filter(function (r) { return !$("input", r).value; });
    empties.slice(1).forEach(function (r) { r.remove(); });
    if (!$(".model-row", list)) addRow("");
    renumber();
  });

  // Live system prompt preview: <form data-preview-url> posts its identity
  // fields to the server, which answers with agents.SystemPrompt's output,
  // the same function the conversation engine calls.
  $$("form[data-preview-url]").forEach(function (form) {
    var out = $("#prompt-preview"), count = $("#prompt-count"), status = $("#preview-status"), timer = null, seq = 0;
    if (!out) return;
    function refresh() {
      var body = new URLSearchParams();
      ["name", "role", "persona", "system_prompt", "business_function"].forEach(function (k) {
        var el = form.elements[k]; if (el) body.append(k, el.value);
      });
      var ch = $("#preview-channel"); body.append("preview_channel", ch ? ch.value : "slack");
      var mine = ++seq;
      if (status) status.textContent = "Updating…";
      fetch(form.dataset.previewUrl, {
        method: "POST", credentials: "same-origin", body: body,
        headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }
      }).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); }).then(function (j) {
        if (mine !== seq) return;
        out.textContent = j.prompt;
        if (count) count.textContent = j.characters.toLocaleString() + " characters";
        if (status) status.textContent = "Up to date";
      }).catch(function () { if (status) status.textContent = "Preview unavailable"; });
    }
    function later() { clearTimeout(timer); timer = setTimeout(refresh, 250); }
    ["name", "role", "persona", "system_prompt", "business_function"].forEach(function (k) {
      var el = form.elements[k]; if (el) el.addEventListener("input", later);
    });
    var ch = $("#preview-channel"); if (ch) ch.addEventListener("change", refresh);
  });

  // Password strength hint (the server decides; this only guides).
  $$("input[data-strength]").forEach(function (input) {
    var meter = $(input.dataset.strength);
    if (!meter) return;
    input.addEventListener("input", function () {
      var v = input.value, s = 0;
      if (v.length >= 12) s++;
      if (v.length >= 16) s++;
      if (/[a-z]/.test(v) && /[A-Z]/.test(v)) s++;
      if (/[0-9]/.test(v) && /[^A-Za-z0-9]/.test(v)) s++;
      if (v.length < 12) s = Math.min(s, 1);
      meter.dataset.score = v ? Math.max(1, s) : 0;
    });
  });
})();
