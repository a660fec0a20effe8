// Konstruct portal: small, dependency-free enhancements. Every page works
// without this file, but for the test chat; it adds confirmations, the model
// chain editor, the live system prompt preview, counters, copy buttons and
// the test chat.
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

  // The "try it" chat (<div data-chat>): a typed message is posted to the
  // send URL with an ID made here, so a resent request is recorded once; the
  // conversation's messages arrive as server-sent events from the events URL
  // (EventSource reconnects on its own, resuming after the last event). Each
  // reply shows how long it took from Send to the screen.
  $$("[data-chat]").forEach(function (box) {
    var log = $("[data-chat-log]", box), form = $("[data-chat-form]", box), input = $("textarea", form);
    var button = $("button[type=submit]", form), status = $("[data-chat-status]", box);
    var chatID = box.dataset.chatId, agent = box.dataset.agent || "The agent";
    var source = null, seen = {}, pending = {}, typing = null, lastSent = 0;

    function randomID() {
      var b = new Uint8Array(12);
      window.crypto.getRandomValues(b);
      return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
    }
    function scroll() { log.scrollTop = log.scrollHeight; }
    function bubble(kind, text, meta) {
      var intro = $("[data-chat-intro]", log);
      if (intro) intro.remove();
      var row = document.createElement("div");
      row.className = "chat-msg " + kind;
      var b = document.createElement("div");
      b.className = "chat-bubble";
      b.textContent = text;
      row.appendChild(b);
      var m = document.createElement("div");
      m.className = "chat-meta";
      m.textContent = meta || "";
      row.appendChild(m);
      if (typing && typing.parentNode) log.insertBefore(row, typing); else log.appendChild(row);
      scroll();
      return row;
    }
    function showTyping(on) {
      if (on && !typing) {
        typing = document.createElement("div");
        typing.className = "chat-msg agent typing";
        typing.setAttribute("data-testid", "chat-typing");
        typing.innerHTML = '<div class="chat-bubble"><span></span><span></span><span></span></div>';
        log.appendChild(typing);
        scroll();
      } else if (!on && typing) {
        typing.remove();
        typing = null;
      }
    }
    function seconds(ms) { return (ms / 1000).toFixed(ms < 10000 ? 1 : 0) + " s"; }
    function onMessage(e) {
      var m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (seen[m.id]) return;
      seen[m.id] = true;
      if (m.role === "user") {
        var mine = pending[m.message_id];
        if (mine) { $(".chat-meta", mine.row).textContent = "Sent"; mine.row.classList.remove("sending"); }
        else bubble("me", m.text, "Sent");
        return;
      }
      var took = lastSent ? performance.now() - lastSent : 0;
      var meta = m.role === "assistant" ? agent : "Notice";
      if (took) meta += " · replied in " + seconds(took);
      if (m.provider) meta += " · " + m.provider + "/" + m.model;
      var row = bubble(m.role === "assistant" ? "agent" : "notice", m.text, meta);
      if (m.role === "assistant") row.setAttribute("data-testid", "chat-reply");
      if (took) row.dataset.tookMs = Math.round(took);
      showTyping(false);
      lastSent = 0;
      status.textContent = "";
      quietLater();
      if (m.role === "assistant") {
        var done = document.querySelector("[data-chat-done]");
        if (done && box.hasAttribute("data-setup")) {
          done.classList.remove("waiting");
          var fin = $("button", done); if (fin) fin.disabled = false;
          var w = $("[data-waiting-text]", done); if (w) w.textContent = agent + " answered in " + seconds(took || 0) + ". You're all set.";
          var step = document.querySelector("[data-testid=stepper] li:last-child");
          if (step && !step.classList.contains("done")) {
            step.classList.add("done");
            $(".dot", step).innerHTML = '<svg class="i" aria-hidden="true"><use href="#i-check"></use></svg>';
            $("small", step).textContent = "Done";
          }
        }
      }
    }
    // The stream is open while a reply may come: from a send until a minute
    // after the last answer (a reopened stream replays; seen drops repeats).
    var idle = null;
    function listen() {
      clearTimeout(idle);
      if (source) return;
      source = new EventSource(box.dataset.eventsUrl + "?chat=" + encodeURIComponent(chatID));
      source.addEventListener("message", onMessage);
    }
    function quietLater() {
      clearTimeout(idle);
      idle = setTimeout(function () { if (source && !lastSent) { source.close(); source = null; } }, 60000);
    }
    function send(text) {
      text = text.trim();
      if (!text) return;
      var id = randomID();
      var row = bubble("me sending", text, "Sending…");
      pending[id] = { row: row };
      lastSent = performance.now();
      listen();
      showTyping(true);
      status.textContent = "";
      button.disabled = true;
      var sendOnce = function (attempt) {
        return fetch(box.dataset.sendUrl, {
          method: "POST", credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf(), "Content-Type": "application/json", "Accept": "application/json" },
          body: JSON.stringify({ chat_id: chatID, message_id: id, text: text })
        }).then(function (r) {
          if (r.ok) return;
          return r.json().then(function (j) { throw new Error(j.error && j.error.message || ("error " + r.status)); },
            function () { throw new Error("error " + r.status); });
        }, function (err) {
          // The network failed: the same ID again is recorded once.
          if (attempt < 2) return new Promise(function (ok) { setTimeout(ok, 800); }).then(function () { return sendOnce(attempt + 1); });
          throw err;
        });
      };
      sendOnce(0).catch(function (err) {
        showTyping(false);
        lastSent = 0;
        $(".chat-meta", row).textContent = "Not sent";
        row.classList.add("failed");
        status.textContent = "The message was not sent: " + err.message;
      }).then(function () { button.disabled = false; });
    }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = input.value;
      input.value = "";
      input.style.height = "";
      send(text);
      input.focus();
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
    });
    input.addEventListener("input", function () { input.style.height = ""; input.style.height = Math.min(input.scrollHeight, 160) + "px"; });
    $$("[data-suggest]", box).forEach(function (b) {
      b.addEventListener("click", function () { send(b.textContent); });
    });
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
