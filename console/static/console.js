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
