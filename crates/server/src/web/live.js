// Reloads a live page because its build or deploy moved on or ended; the
// reloaded page announces what it shows now (page.js).
function prismReload() {
  try { sessionStorage.setItem("prism-announce", location.pathname); } catch (e) { /* private mode */ }
  location.reload();
}
// Follows a live stream from just after `after()`, the last event id the
// page shows. A dropped connection (its server instance went away) is
// EventSource's own to handle: it reconnects, sending Last-Event-ID, and the
// server resumes after that event. EventSource gives up only when a
// reconnection is answered with an error status (a load balancer's 502 while
// an instance is replaced): then the stream is opened again a little later,
// a few times. The caller closes it on `end`.
function prismFollow(path, after, listeners) {
  var src, tries = 0, stopped = false;
  function open() {
    if (stopped) return;
    var last = after();
    src = new EventSource(path + (isFinite(last) && last >= 0 ? "?last_event_id=" + last : ""));
    src.addEventListener("open", function () { tries = 0; });
    Object.keys(listeners).forEach(function (name) { src.addEventListener(name, listeners[name]); });
    src.addEventListener("error", function () {
      if (src.readyState === EventSource.CLOSED && tries < 5) { tries += 1; setTimeout(open, 2000 * tries); }
    });
  }
  open();
  return { close: function () { stopped = true; src.close(); } };
}

// Live deploy progress: appends each step from the API's server-sent events
// and reloads the page when the deploy ends (so the result, review and
// rollback controls come from the server). Without script the page still
// shows every step stored when it was loaded.
(function () {
  var list = document.getElementById("events");
  if (!list || list.dataset.final === "true" || !window.EventSource) return;
  var seen = {};
  list.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });
  var last = parseInt(list.dataset.last, 10);
  var src;
  var pending = false;
  function refreshRollout() {
    var panel = document.getElementById("rollout");
    if (!panel || pending) return;
    // Never under a person's pointer mid-click: a focused button stays put.
    if (panel.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
    pending = true;
    fetch(location.pathname, {credentials: "same-origin"}).then(function (r) { return r.text(); }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("rollout");
      if (fresh) panel.replaceWith(fresh);
    }).catch(function () { /* the next step tries again */ }).then(function () { pending = false; });
  }
  function onStep(msg) {
    var e = JSON.parse(msg.data);
    if (seen[e.id]) return;
    seen[e.id] = true;
    last = Math.max(isFinite(last) ? last : 0, e.id);
    var li = document.createElement("li");
    li.dataset.id = e.id;
    var when = document.createElement("span");
    when.className = "muted";
    when.textContent = new Date(e.at).toISOString().replace("T", " ").slice(0, 19) + " UTC ";
    var step = document.createElement("strong");
    step.textContent = e.step;
    li.append(when, step, " " + e.message);
    list.appendChild(li);
    // A rollout moved on: the rollout panel is drawn again from the server.
    if (e.step === "rollout") refreshRollout();
    // A new plan or review decision changes what the page shows: reload it.
    if (e.step === "review" || (e.step === "plan" && e.data && e.data.diff)) { src.close(); prismReload(); }
  }
  src = prismFollow("/api/v1/deploys/" + list.dataset.deploy + "/stream", function () { return last; }, {
    step: onStep,
    end: function () { src.close(); prismReload(); }
  });
})();

// Live build log: appends each new line from the API's server-sent events
// (the stream starts after the last line on the page; a line seen already
// is skipped by its sequence number), shows each new stage, and reloads the
// page when the build ends (so the result and the buttons come from the
// server). Without script the page shows the log as it was when loaded.
(function () {
  var log = document.getElementById("build-log-lines");
  if (!log || log.dataset.final === "true" || !window.EventSource) return;
  var last = parseInt(log.dataset.last, 10);
  var shown = (document.getElementById("build-state") || {dataset: {}}).dataset.state;
  var src;
  function onLine(msg) {
    var l = JSON.parse(msg.data);
    if (l.seq <= last) return;
    last = l.seq;
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    var span = document.createElement("span");
    span.className = "log-line log-" + l.stream;
    span.dataset.seq = l.seq;
    span.textContent = l.line + "\n";
    log.appendChild(span);
    log.dataset.last = l.seq;
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
  function onState(msg) {
    var s = JSON.parse(msg.data);
    var el = document.getElementById("build-state");
    if (!el) return;
    el.dataset.state = s.state;
    var badge = el.querySelector(".badge");
    if (badge) { badge.textContent = s.state; badge.className = "badge state-" + s.state; }
    var commit = document.getElementById("build-commit");
    if (commit && s.commit_sha) commit.textContent = s.commit_sha;
    // A new stage is announced once; the log lines themselves are not.
    var region = document.getElementById("announce");
    if (region && s.state !== shown) { shown = s.state; region.textContent = (log.dataset.label || "") + " " + s.state; }
  }
  src = prismFollow("/api/v1/builds/" + log.dataset.build + "/stream", function () { return last; }, {
    line: onLine,
    state: onState,
    end: function () { src.close(); prismReload(); }
  });
})();

// The release form: choosing an application ticks "Build it now" when it
// has build settings (the server ticks it for the one chosen at first).
(function () {
  var app = document.getElementById("create-application");
  var now = document.getElementById("build-now");
  if (!app || !now) return;
  app.addEventListener("change", function () {
    // A list to choose from, or (past a hundred applications) a typed name
    // with suggestions.
    var o = app.options ? app.options[app.selectedIndex]
      : app.list && Array.prototype.find.call(app.list.options, function (x) { return x.value === app.value; });
    if (o) now.checked = o.dataset.builds === "true";
  });
})();

// The application's webhook URL: the path the server knows, prefixed with
// the address this page was reached at (the page shows the path without script).
(function () {
  var url = document.getElementById("webhook-url");
  if (url && url.dataset.webhookPath) url.textContent = location.origin + url.dataset.webhookPath;
})();
