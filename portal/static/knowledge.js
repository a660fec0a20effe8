// Knowledge page enhancements. The page works without this file (a plain
// file input and an Upload button; reload to see progress); with it:
//  - a file dropped on the drop zone is put in the form's file input and the
//    form is submitted, the same request as choosing it and clicking Upload;
//  - while a document is queued or indexing, the table asks a small JSON
//    endpoint every second and moves the progress bars, with no page reload.
(function () {
  "use strict";

  document.querySelectorAll("form[data-dropzone]").forEach(function (form) {
    var zone = form.querySelector("[data-dropzone-target]");
    var input = form.querySelector("input[type=file]");
    if (!zone || !input) return;
    ["dragenter", "dragover"].forEach(function (ev) {
      zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (e) {
      var files = e.dataTransfer && e.dataTransfer.files;
      if (!files || !files.length) return;
      input.files = files;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  });

  var table = document.querySelector("table[data-poll]");
  if (!table) return;
  var url = table.getAttribute("data-poll");
  var timer = null;
  function badge(status) {
    var s = document.createElement("span");
    s.className = "badge badge-" + status;
    s.textContent = status;
    return s;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (j) {
        var busy = false;
        (j.documents || []).forEach(function (d) {
          var row = table.querySelector('tr[data-doc="' + d.id + '"]');
          if (!row) return;
          var bar = row.querySelector("[data-field=bar]");
          if (bar) { bar.max = d.chunks || 1; bar.value = d.chunks_done; bar.textContent = d.pct + "%"; bar.title = d.pct + "% indexed"; }
          var count = row.querySelector("[data-field=count]");
          if (count) count.textContent = d.chunks_done + " / " + d.chunks + " chunks";
          var st = row.querySelector("[data-field=status]");
          if (st && st.textContent.trim() !== d.status) { st.replaceChildren(badge(d.status)); }
          var err = row.querySelector("[data-field=error]");
          if (err) err.textContent = d.error || "";
          if (d.status === "queued" || d.status === "indexing") busy = true;
        });
        if (busy) timer = setTimeout(poll, 1000);
      })
      .catch(function () { timer = setTimeout(poll, 5000); });
  }
  timer = setTimeout(poll, 1000);
})();
