// The call page's audio player: fetch the recording once (one audited playback), play it
// from a blob URL (fully seekable), and jump to each answer's offset.
(function () {
  "use strict";
  function setup() {
    var player = document.getElementById("player");
    if (!player) { return; }
    var audio = document.getElementById("audio");
    var status = document.getElementById("player-status");
    var loading = null;
    function load() {
      if (loading) { return loading; }
      player.setAttribute("data-state", "loading");
      loading = fetch(player.getAttribute("data-src"), { credentials: "same-origin" })
        .then(function (resp) {
          if (!resp.ok) {
            return resp.text().then(function () {
              throw new Error(resp.status === 409 ? "integrity" : "http " + resp.status);
            });
          }
          return resp.blob();
        })
        .then(function (blob) {
          audio.src = URL.createObjectURL(blob);
          return new Promise(function (resolve) {
            audio.addEventListener("loadedmetadata", function () { resolve(); }, { once: true });
            audio.load();
          });
        })
        .then(function () { player.setAttribute("data-state", "loaded"); })
        .catch(function (err) {
          player.setAttribute("data-state", "failed");
          status.textContent = err.message === "integrity"
            ? (document.documentElement.lang === "en"
              ? "The recording failed its integrity check: flagged, not served"
              : "录音完整性校验失败，已标记，不予播放")
            : err.message;
          loading = null;
          throw err;
        });
      return loading;
    }
    function playFrom(offset) {
      load().then(function () {
        if (offset !== null) { audio.currentTime = offset; }
        var p = audio.play();
        if (p && p.catch) { p.catch(function () { /* autoplay refused: user can press play */ }); }
        player.setAttribute("data-position", String(audio.currentTime));
      }).catch(function () {});
    }
    document.getElementById("play").addEventListener("click", function () { playFrom(null); });
    Array.prototype.forEach.call(document.querySelectorAll("button.jump"), function (btn) {
      btn.addEventListener("click", function () {
        playFrom(parseFloat(btn.getAttribute("data-offset")));
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else { setup(); }
})();

// The wallboard: calls in progress, followed live through server-sent events (no reload).
(function () {
  "use strict";
  function setup() {
    var board = document.getElementById("wallboard");
    if (!board || !window.EventSource) { return; }
    var depts = JSON.parse(board.getAttribute("data-departments"));
    var scripts = JSON.parse(board.getAttribute("data-scripts"));
    var labels = JSON.parse(board.getAttribute("data-labels"));
    var states = ["dialling", "ringing", "in_ivr", "in_queue", "with_person"];
    var calls = {};
    var agents = {};
    var paused = {};
    var status = document.getElementById("wb-status");
    var pending = false;
    function text(id, value) { document.getElementById(id).textContent = value; }
    function cell(row, value, cls) {
      var td = document.createElement("td");
      td.textContent = value;
      if (cls) { td.className = cls; }
      row.appendChild(td);
    }
    function minutes(since) {
      var s = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
      return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
    }
    function render() {
      pending = false;
      var byDept = {}, byScript = {}, total = 0, queued = 0, oldest = null;
      Object.keys(calls).forEach(function (key) {
        var c = calls[key];
        total += 1;
        var d = byDept[c.department_id] = byDept[c.department_id] || {};
        d[c.state] = (d[c.state] || 0) + 1;
        byScript[c.script] = (byScript[c.script] || 0) + 1;
        if (c.state === "in_queue") {
          queued += 1;
          if (!oldest || c.queued_at < oldest) { oldest = c.queued_at; }
        }
      });
      text("wb-total", String(total));
      text("wb-queue", String(queued));
      text("wb-wait", oldest ? minutes(oldest) : "—");
      var body = document.querySelector("#wb-by-dept tbody");
      body.textContent = "";
      Object.keys(depts).forEach(function (id) {
        var counts = byDept[id] || {};
        var row = document.createElement("tr");
        row.setAttribute("data-department", id);
        var sum = 0;
        cell(row, depts[id] + (paused[id] ? " (" + labels.paused + ")" : ""),
             paused[id] ? "paused" : "");
        states.forEach(function (s) { sum += counts[s] || 0; cell(row, String(counts[s] || 0)); });
        cell(row, String(sum));
        body.appendChild(row);
      });
      var sbody = document.querySelector("#wb-by-script tbody");
      sbody.textContent = "";
      Object.keys(byScript).sort().forEach(function (sid) {
        var row = document.createElement("tr");
        cell(row, scripts[sid] || sid);
        cell(row, String(byScript[sid]));
        sbody.appendChild(row);
      });
      var abody = document.querySelector("#wb-agents tbody");
      abody.textContent = "";
      Object.keys(agents).map(function (k) { return agents[k]; })
        .sort(function (a, b) { return a.member < b.member ? -1 : a.member > b.member ? 1 : 0; })
        .forEach(function (a) {
          var row = document.createElement("tr");
          row.setAttribute("data-state", a.state);
          cell(row, a.member);
          cell(row, labels["agent_" + a.state] || a.state);
          cell(row, minutes(a.since));
          abody.appendChild(row);
        });
    }
    function later() {
      if (!pending) { pending = true; window.setTimeout(render, 200); }
    }
    function take(m) {
      if (m.type === "snapshot") {
        calls = {};
        agents = {};
        m.calls.forEach(function (c) { calls[c.key] = c; });
        (m.agents || []).forEach(function (a) { agents[a.key] = a; });
        take(m.lines);
      } else if (m.type === "call") {
        calls[m.key] = m;
      } else if (m.type === "end") {
        delete calls[m.key];
      } else if (m.type === "agent") {
        agents[m.key] = m;
      } else if (m.type === "agent_gone") {
        delete agents[m.key];
      } else if (m.type === "lines") {
        text("wb-lines", m.in_use + " / " + m.max);
        text("wb-cpm", String(m.dialled_last_min));
        if (status.getAttribute("data-state") !== "offline") {
          var running = m.dialers !== 0;
          status.setAttribute("data-state", running ? "live" : "idle");
          status.textContent = running ? labels.live : labels.no_dialer;
        }
      } else if (m.type === "stats") {
        text("wb-answer-rate", m.answer_rate);
        text("wb-completion-rate", m.completion_rate);
        paused = {};
        m.holds.forEach(function (h) {
          if (h.scope === "all") { Object.keys(depts).forEach(function (id) { paused[id] = true; }); }
          if (h.department_id !== null) { paused[h.department_id] = true; }
        });
      }
      later();
    }
    var source = new EventSource(board.getAttribute("data-events"));
    source.onopen = function () {
      status.setAttribute("data-state", "live");
      status.textContent = labels.live || "";
    };
    source.onerror = function () {
      status.setAttribute("data-state", "offline");
      status.textContent = labels.offline || "";
    };
    source.onmessage = function (e) { take(JSON.parse(e.data)); };
    window.setInterval(render, 1000);  // the waits and talk times keep counting
    render();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else { setup(); }
})();
