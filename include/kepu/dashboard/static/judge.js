// kepu judging portal: autosave of the score form. The page works without this script (plain form posts);
// it only saves while the judge types, so that nothing is lost when a phone locks or the tab closes.
(function () {
  "use strict";
  var form = document.getElementById("score-form");
  if (!form || form.getAttribute("data-autosave") !== "on" || !window.fetch) { return; }
  var state = document.getElementById("save-state");
  var scored = document.getElementById("scored");
  var DELAY = 800;
  var timer = null;
  var dirty = false;
  var inflight = false;

  function show(kind, zh, en) {
    state.className = "save-state " + kind;
    state.textContent = zh + " ";
    var span = document.createElement("span");
    span.className = "en";
    span.textContent = en;
    state.appendChild(span);
  }

  function firstInvalid() {
    var inputs = form.querySelectorAll("input[type=number]");
    for (var i = 0; i < inputs.length; i++) {
      if (!inputs[i].validity.valid) { return inputs[i]; }
    }
    return null;
  }

  function body() {
    var data = new URLSearchParams();
    var fd = new FormData(form);
    fd.forEach(function (value, key) { if (typeof value === "string") { data.append(key, value); } });
    return data;
  }

  function save() {
    timer = null;
    if (inflight) { timer = setTimeout(save, DELAY); return; }
    var bad = firstInvalid();
    if (bad) {
      show("error", "未保存：“" + bad.labels[0].firstChild.textContent.trim() + "”的分数不在范围内",
           "not saved: a value is outside its range");
      return;
    }
    inflight = true;
    dirty = false;
    show("saving", "保存中…", "saving");
    fetch(form.action, {
      method: "POST",
      body: body(),
      credentials: "same-origin",
      // The page's policy is no-referrer; this request may name its own origin to its own origin.
      referrerPolicy: "same-origin",
      headers: {"Accept": "application/json", "X-CSRF-Token": form.elements.csrf.value}
    }).then(function (resp) {
      return resp.json().catch(function () { return {ok: false, zh: "服务器无响应", en: "no answer from the server"}; })
        .then(function (answer) { return {status: resp.status, answer: answer}; });
    }).then(function (r) {
      inflight = false;
      if (r.answer.ok) {
        var t = new Date();
        var hhmm = ("0" + t.getHours()).slice(-2) + ":" + ("0" + t.getMinutes()).slice(-2);
        show("saved", "已保存 " + hhmm, "saved");
        if (scored && typeof r.answer.scored === "number") { scored.textContent = String(r.answer.scored); }
      } else {
        dirty = true;
        show("error", "未保存：" + (r.answer.zh || ""), "not saved: " + (r.answer.en || r.status));
      }
    }, function () {
      inflight = false;
      dirty = true;
      show("error", "未保存：网络不可用，恢复后将自动重试", "not saved: offline; will retry when back online");
    });
  }

  function changed() {
    dirty = true;
    show("pending", "有改动，即将保存…", "changed, saving soon");
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(save, DELAY);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  window.addEventListener("online", function () { if (dirty) { save(); } });
  // Leaving the page with unsaved changes: send them once more without waiting for an answer.
  window.addEventListener("pagehide", function () {
    if (dirty && !firstInvalid() && navigator.sendBeacon) { navigator.sendBeacon(form.action, body()); }
  });
  // A plain submit (the buttons) saves through the normal form post; no autosave races it.
  form.addEventListener("submit", function () { if (timer) { clearTimeout(timer); timer = null; } dirty = false; });
})();
