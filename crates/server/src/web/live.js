// Live deploy progress: appends each step from the API's server-sent events
// and reloads the page when the deploy ends (so the result, review and
// rollback controls come from the server). Without script the page still
// shows every step stored when it was loaded.
(function () {
  var list = document.getElementById("events");
  if (!list || list.dataset.final === "true" || !window.EventSource) return;
  var seen = {};
  list.querySelectorAll("li[data-id]").forEach(function (li) { seen[li.dataset.id] = true; });
  var src = new EventSource("/api/v1/deploys/" + list.dataset.deploy + "/stream");
  src.addEventListener("step", function (msg) {
    var e = JSON.parse(msg.data);
    if (seen[e.id]) return;
    seen[e.id] = true;
    var li = document.createElement("li");
    li.dataset.id = e.id;
    var when = document.createElement("span");
    when.className = "muted";
    when.textContent = new Date(e.at).toISOString().replace("T", " ").slice(0, 19) + " UTC ";
    var step = document.createElement("strong");
    step.textContent = e.step;
    li.append(when, step, " " + e.message);
    list.appendChild(li);
    // A new plan or review decision changes what the page shows: reload it.
    if (e.step === "review" || (e.step === "plan" && e.data && e.data.diff)) { src.close(); location.reload(); }
  });
  src.addEventListener("end", function () { src.close(); location.reload(); });
})();
