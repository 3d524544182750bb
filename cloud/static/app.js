// The customer area's only script: buttons answered in place, confirmations, and live updates.
(function () {
  "use strict";
  var body = document.body;

  function answerBox() { return document.getElementById("answer"); }

  function say(text, ok) {
    var box = answerBox();
    if (!box) { return; }
    box.textContent = text;
    box.className = "answer " + (ok ? "ok" : "refused");
  }

  // A silent call plays in the page while it goes on; leaving the page ends it. The sound
  // is fetched as it arrives and handed to Media Source Extensions, which play each piece
  // at once (a plain <audio src> would wait to buffer seconds of a stream with no end).
  var listening = null;  // the AbortController of the fetch in progress
  function stopListen() {
    if (listening) { listening.abort(); listening = null; }
    var old = document.getElementById("listen-audio");
    if (old) { old.pause(); old.removeAttribute("src"); old.load(); old.remove(); }
  }
  function streamInto(audio, url) {
    var type = 'audio/webm; codecs="opus"';
    if (!window.MediaSource || !window.AbortController || !MediaSource.isTypeSupported(type)) {
      audio.src = url;
      return;
    }
    var source = new MediaSource();
    var controller = new AbortController();
    listening = controller;
    audio.src = URL.createObjectURL(source);
    source.addEventListener("sourceopen", function () {
      var buffer = source.addSourceBuffer(type);
      var queue = [];
      var done = false;
      function feed() {
        if (buffer.updating) { return; }
        if (queue.length) { buffer.appendBuffer(queue.shift()); }
        else if (done && source.readyState === "open") { source.endOfStream(); }
      }
      buffer.addEventListener("updateend", feed);
      fetch(url, { credentials: "same-origin", signal: controller.signal }).then(function (r) {
        var reader = r.body.getReader();
        function read() {
          return reader.read().then(function (part) {
            if (part.done) { done = true; feed(); return; }
            queue.push(part.value);
            feed();
            return read();
          });
        }
        return read();
      }).catch(function () {});
    });
  }
  function playListen(url, label) {
    stopListen();
    var audio = document.createElement("audio");
    audio.id = "listen-audio";
    audio.controls = true;
    audio.autoplay = true;
    audio.setAttribute("aria-label", label);
    var box = answerBox();
    (box && box.parentNode ? box.parentNode : body).insertBefore(audio, box ? box.nextSibling : null);
    streamInto(audio, url);
    var started = audio.play();
    if (started && started.catch) { started.catch(function () {}); }
  }
  window.addEventListener("pagehide", stopListen);

  document.querySelectorAll("form.command").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var confirmed = form.querySelector("[name=confirmed]");
      if (form.dataset.confirm) {
        if (!window.confirm(form.dataset.confirm)) { return; }
        if (confirmed) { confirmed.value = "1"; }
      }
      var buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      var box = answerBox();
      if (box) { box.textContent = form.dataset.wait || "…"; box.className = "answer"; }
      fetch(form.getAttribute("action"), {  // form.action would be the input named "action"
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (r) { return r.json(); }).then(function (data) {
        say(data.message, data.ok);
        if (data.ok && data.play) { playListen(data.play, form.dataset.listening || "Silent call"); }
        if (data.ok && form.dataset.reload) { window.setTimeout(function () { window.location.reload(); }, 1500); }
      }).catch(function () {
        say(form.dataset.failed || "Error", false);
      }).finally(function () {
        buttons.forEach(function (b) { b.disabled = false; });
        if (confirmed) { confirmed.value = ""; }
      });
    });
  });

  var url = body.dataset.live;
  if (!url || !window.EventSource) { return; }
  var source = new EventSource(url);

  // Fetch the photos page again and swap its list in: the notice above it stays.
  function refreshPhotos() {
    fetch(body.dataset.home + "/photos", { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("ul.photos");
      var list = document.querySelector("ul.photos");
      if (fresh && list) { list.replaceWith(fresh); }
    });
  }

  source.addEventListener("state", function (ev) {
    var d = JSON.parse(ev.data);
    var state = document.getElementById("state");
    if (!state) { return; }
    state.className = "state state-" + d.key;
    document.getElementById("state-word").textContent = d.word;
    var avail = document.getElementById("availability");
    avail.textContent = d.availability;
    avail.className = d.online ? "online" : "offline";
    document.getElementById("since").textContent = d.since;
    document.getElementById("open-zones").textContent = d.open_text;
    document.title = d.word + " · centinela";
  });
  source.addEventListener("photo", function (ev) {
    var d = JSON.parse(ev.data);
    var notice = document.getElementById("notice");
    if (notice) {
      notice.hidden = false;
      notice.textContent = "";
      var link = document.createElement("a");
      link.href = body.dataset.home + "/photos#p-" + d.photo;
      link.textContent = d.notice;
      notice.appendChild(link);
    }
    if (body.dataset.page === "photos") { refreshPhotos(); }
  });
  source.addEventListener("event", function (ev) {
    var d = JSON.parse(ev.data);
    var page = body.dataset.page;
    if (page === "photos" && /^(photo|clip)_(requested|ready)$/.test(d.type)) {
      refreshPhotos();
    }
    if (page === "activity" && window.location.search === "") {
      var rows = document.getElementById("rows");
      if (!rows) { return; }
      var tr = document.createElement("tr");
      tr.className = (d.alarm ? "alarm " : "") + d.type;
      [d.when, d.what, d.who, d.how].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      rows.insertBefore(tr, rows.firstChild);
    }
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
