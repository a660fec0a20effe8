// Escalation page: the transcript updates while the page is open. Every few
// seconds it asks a small JSON endpoint for the conversation's messages and
// the escalation's state, and appends the messages it does not show yet
// (text only: nothing from the server is parsed as HTML; the images a user
// sent are the portal's own /t/…/media/… URLs, set as attributes). Once the
// escalation has ended, the reply box goes and polling slows down.
(function () {
  "use strict";
  var box = document.querySelector("[data-live]");
  if (!box) return;
  var url = box.getAttribute("data-live");
  var seen = {};
  box.querySelectorAll("[data-message]").forEach(function (el) { seen[el.getAttribute("data-message")] = true; });

  function message(m) {
    var row = document.createElement("div");
    row.className = "msg msg-" + m.role;
    row.setAttribute("data-message", m.id);
    var inner = document.createElement("div");
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = m.content;
    var meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = m.who + " · " + m.at;
    inner.appendChild(bubble);
    if (m.images && m.images.length) {
      var imgs = document.createElement("div");
      imgs.className = "msg-images";
      imgs.setAttribute("data-testid", "msg-images");
      m.images.forEach(function (im) {
        if (im.url.indexOf("/t/") !== 0) return; // only the portal's own media URLs
        var a = document.createElement("a");
        a.href = im.url;
        a.target = "_blank";
        a.rel = "noopener";
        var img = document.createElement("img");
        img.src = im.url;
        img.alt = im.alt;
        img.loading = "lazy";
        a.appendChild(img);
        imgs.appendChild(a);
      });
      inner.appendChild(imgs);
    }
    inner.appendChild(meta);
    row.appendChild(inner);
    return row;
  }
  function setText(sel, text, cls) {
    var el = document.querySelector(sel);
    if (!el) return;
    el.textContent = text;
    if (cls) el.className = cls;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (j) {
        var added = false;
        (j.messages || []).forEach(function (m) {
          if (seen[m.id]) return;
          seen[m.id] = true;
          box.appendChild(message(m));
          added = true;
        });
        if (added) box.scrollTop = box.scrollHeight;
        setText("[data-field=state]", j.state_label, "badge badge-esc-" + j.state);
        setText("[data-field=sla]", "SLA " + j.sla, "badge badge-sla-" + j.sla);
        setText("[data-field=waiting]", j.waiting);
        if (!j.open) {
          document.querySelectorAll("[data-open-only]").forEach(function (el) { el.remove(); });
        }
        setTimeout(poll, j.open ? 2000 : 15000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
