/* War Room pages: clocks and countdowns, the people filter, and the live war room.
 *
 * The live room: the page is a snapshot at seq N (main[data-seq]). The socket sends each
 * timeline event with its seq; the page adds it to the timeline and then reloads its
 * panels from /faults/<id>/panels/, so that every panel is rendered by the same server
 * code as the first page. On reconnect the page asks for everything after its last seq
 * (?after=N); when it is too far behind the server says "snapshot" and the page reloads
 * all its panels, timeline included. No framework, no build step.
 */
(function () {
  "use strict";

  var _ = window.gettext || function (s) { return s; };
  var fmt = window.interpolate || function (s, args) { return s.replace("%s", args[0]); };

  // --- clocks ---------------------------------------------------------------------------

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function span(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var text = h + ":" + pad(m) + ":" + pad(s % 60);
    return d ? fmt(_("%sd"), [d]) + " " + text : text;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-elapsed-from]").forEach(function (el) {
      var until = el.dataset.elapsedUntil ? Date.parse(el.dataset.elapsedUntil) : now;
      el.textContent = span(until - Date.parse(el.dataset.elapsedFrom));
    });
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Date.parse(el.dataset.deadline) - now;
      var overdue = left < 0;
      el.textContent = overdue ? fmt(_("%s overdue"), [span(-left)]) : fmt(_("in %s"), [span(left)]);
      el.classList.toggle("overdue", overdue);
    });
  }

  // Times in the reader's own zone (the server renders them in his person's zone, or UTC).
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var hm = pad(at.getHours()) + ":" + pad(at.getMinutes());
      var md = pad(at.getMonth() + 1) + "-" + pad(at.getDate());
      el.textContent = el.dataset.local === "full" ? at.getFullYear() + "-" + md + " " + hm
        : el.dataset.local === "short" ? md + " " + hm : hm;
    });
  }

  // --- small form helpers ---------------------------------------------------------------

  // A search box that narrows a <select> of people. The names on the page narrow it at
  // once; with data-search-url the people API (name, email, username) then answers, and
  // its matches are what the select offers. Without script the select alone still works.
  function narrow(select, test) {
    var firstMatch = null;
    Array.prototype.forEach.call(select.options, function (o) {
      var hit = o.value === "" || test(o);
      o.hidden = !hit;
      if (hit && o.value !== "" && !firstMatch) firstMatch = o;
    });
    if (firstMatch && select.selectedOptions[0] && select.selectedOptions[0].hidden) firstMatch.selected = true;
    return firstMatch;
  }

  var searches = {};

  function searchPeople(box, select, q) {
    var url = box.dataset.searchUrl;
    if (!url) return;
    var state = searches[select.id] = searches[select.id] || { timer: null, seq: 0 };
    clearTimeout(state.timer);
    // Debounced: one request once the user pauses, not one per keystroke.
    state.timer = setTimeout(function () {
      var mine = ++state.seq;
      box.setAttribute("aria-busy", "true");
      fetch(url + "?limit=20&search=" + encodeURIComponent(q), {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      })
        .then(function (res) { if (!res.ok) throw new Error("people " + res.status); return res.json(); })
        .then(function (page) {
          if (mine !== state.seq || box.value.trim() !== q) return;  // an older answer
          var current = document.getElementById(select.id) || select;
          var ids = {};
          (page.results || page).forEach(function (p) {
            ids[String(p.id)] = true;
            if (!current.querySelector('option[value="' + p.id + '"]')) current.add(new Option(p.name, p.id));
          });
          var first = narrow(current, function (o) { return ids[o.value]; });
          var status = document.getElementById(box.id + "-status");
          if (status) {
            status.textContent = first ? fmt(_("%s found"), [Object.keys(ids).length]) : _("Nobody found");
          }
        })
        .catch(function () { /* the names on the page still narrow the select */ })
        .then(function () { box.removeAttribute("aria-busy"); });
    }, 250);
  }

  document.addEventListener("input", function (e) {
    var box = e.target;
    if (box.matches && box.matches("input[data-filters]")) {
      var select = document.getElementById(box.dataset.filters);
      if (!select) return;
      var q = box.value.trim();
      var lower = q.toLowerCase();
      narrow(select, function (o) { return !lower || o.text.toLowerCase().indexOf(lower) !== -1; });
      var status = document.getElementById(box.id + "-status");
      if (status) status.textContent = "";
      if (q) searchPeople(box, select, q);
      return;
    }
    if (box.form && box.type !== "search") box.form.dataset.dirty = "1";
  });

  // One click, one request: a commander double-tapping "Approve" on a phone sends it once.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset.sending) { e.preventDefault(); return; }
    form.dataset.sending = "1";
  });

  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(function (f) { delete f.dataset.sending; });
  });

  // --- the live room --------------------------------------------------------------------

  function LiveRoom(main) {
    this.main = main;
    this.seq = parseInt(main.dataset.seq, 10) || 0;
    this.attempt = 0;
    this.refreshing = false;
    this.refreshAgain = false;
    this.status = document.getElementById("connection");
    this.connect();
  }

  LiveRoom.prototype.setState = function (state, text) {
    if (!this.status) return;
    this.status.dataset.state = state;
    this.status.querySelector(".connection-text").textContent = text;
    this.main.dataset.connection = state;
  };

  LiveRoom.prototype.url = function () {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    return proto + "//" + location.host + this.main.dataset.socket +
      "?after=" + this.seq + "&lang=" + encodeURIComponent(document.documentElement.lang || "");
  };

  LiveRoom.prototype.connect = function () {
    var self = this;
    this.setState("connecting", this.attempt ? _("Reconnecting…") : _("Connecting…"));
    var ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = function () {
      self.attempt = 0;
      self.setState("syncing", _("Catching up…"));
    };
    ws.onmessage = function (m) {
      var msg;
      try { msg = JSON.parse(m.data); } catch (err) { return; }
      self.handle(msg);
    };
    ws.onclose = function (e) {
      if (e.code === 4401 || e.code === 4403 || e.code === 4404) {
        self.setState("refused", _("This page may no longer follow the fault. Reload it to log in again."));
        return;
      }
      self.retry();
    };
  };

  LiveRoom.prototype.retry = function () {
    this.attempt += 1;
    // Exponential backoff with jitter, so that a restarted server is not hit by every page at once.
    var ceiling = Math.min(15000, 500 * Math.pow(2, this.attempt - 1));
    var delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    this.setState("offline", fmt(_("Connection lost. Reconnecting in %s s…"), [Math.ceil(delay / 1000)]));
    setTimeout(this.connect.bind(this), delay);
  };

  LiveRoom.prototype.handle = function (msg) {
    if (msg.type === "event") {
      var ev = msg.event;
      if (ev.seq <= this.seq) return;
      this.addEvent(ev);
      this.seq = ev.seq;
      this.main.dataset.seq = String(ev.seq);
      this.refreshSoon();
    } else if (msg.type === "caught_up") {
      this.setState("live", _("Live"));
    } else if (msg.type === "snapshot") {
      this.setState("syncing", _("Loading the latest state…"));
      this.refresh(true);
    }
  };

  LiveRoom.prototype.addEvent = function (ev) {
    var list = this.main.querySelector("[data-timeline]");
    if (!list || list.querySelector('[data-seq="' + ev.seq + '"]')) return;
    var li = document.createElement("li");
    li.className = "event is-new kind-" + ev.kind.replace(/[^a-z0-9]+/gi, "-");
    li.dataset.seq = String(ev.seq);
    var time = document.createElement("time");
    time.dateTime = ev.at;
    time.dataset.local = "time";
    var text = document.createElement("span");
    text.className = "event-text";
    text.textContent = ev.text;
    li.appendChild(time);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(text);
    // Newest first, in seq order even if events arrive out of order.
    var before = null;
    Array.prototype.some.call(list.children, function (other) {
      if (parseInt(other.dataset.seq, 10) < ev.seq) { before = other; return true; }
      return false;
    });
    list.insertBefore(li, before);
    localTimes(li);
  };

  // After an event: a burst of events costs one reload, and a thousand open pages do not
  // all ask in the same instant.
  LiveRoom.prototype.refreshSoon = function () {
    var self = this;
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(function () {
      self.refreshTimer = null;
      self.refresh(false);
    }, 150 + Math.random() * 350);
  };

  // Reload the panels; `all` includes the timeline (after a "snapshot").
  LiveRoom.prototype.refresh = function (all) {
    var self = this;
    if (this.refreshing) { this.refreshAgain = true; this.refreshAll = this.refreshAll || all; return; }
    this.refreshing = true;
    fetch(this.main.dataset.panels, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) {
        if (!res.ok || res.redirected) throw new Error("panels " + res.status);
        return res.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString("<div>" + html + "</div>", "text/html");
        if (!doc.querySelector('[data-region="header"]')) throw new Error("no panels in the answer");
        self.swap(doc, all);
        localTimes(self.main);
        if (all) {
          var seq = parseInt(doc.querySelector("[data-timeline] [data-seq]") ?
            doc.querySelector("[data-timeline] [data-seq]").dataset.seq : "0", 10);
          if (seq > self.seq) { self.seq = seq; self.main.dataset.seq = String(seq); }
          self.setState("live", _("Live"));
        }
        tick();
      })
      .catch(function () { /* the next event or reconnect tries again */ })
      .then(function () {
        self.refreshing = false;
        if (self.refreshAgain) {
          var again = self.refreshAll;
          self.refreshAgain = self.refreshAll = false;
          self.refresh(again);
        }
      });
  };

  LiveRoom.prototype.swap = function (doc, all) {
    var main = this.main;
    var grid = main.querySelector(".room-grid");
    var seen = {};
    var previous = null;
    doc.querySelectorAll("[data-region]").forEach(function (fresh) {
      var name = fresh.dataset.region;
      seen[name] = true;
      var after = previous;
      previous = name;
      if (name === "timeline" && !all) return;
      var current = main.querySelector('[data-region="' + name + '"]');
      var node = document.importNode(fresh, true);
      if (!current) {
        // A panel that appears (the recovery summary, the sandbox) goes where the server puts it.
        var before = after && main.querySelector('[data-region="' + after + '"]');
        grid.insertBefore(node, before ? before.nextSibling : grid.firstChild);
        return;
      }
      keepWhatTheUserTyped(current, node);
      current.replaceWith(node);
      node.querySelectorAll("input[data-filters]").forEach(function (box) {
        if (box.value) box.dispatchEvent(new Event("input", { bubbles: true }));
      });
      restoreFocus(node);
    });
    main.querySelectorAll("[data-region]").forEach(function (el) {
      if (!seen[el.dataset.region]) el.remove();
    });
  };

  var focusId = null, focusRange = null;

  // A commander typing a task while the page updates must not lose a letter.
  function keepWhatTheUserTyped(current, fresh) {
    focusId = null;
    var active = document.activeElement;
    if (active && current.contains(active) && active.id) {
      focusId = active.id;
      focusRange = typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
    }
    current.querySelectorAll("details[id]").forEach(function (el) {
      var twin = fresh.querySelector("#" + CSS.escape(el.id));
      if (twin) twin.open = el.open;
    });
    current.querySelectorAll("form").forEach(function (form) {
      var dirty = form.dataset.dirty;
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.id || el.type === "hidden" || el.type === "submit") return;
        if (!dirty && el.type !== "search") return;
        var twin = fresh.querySelector("#" + CSS.escape(el.id));
        if (!twin) return;
        if (el.tagName === "SELECT" && el.multiple) {
          Array.prototype.forEach.call(twin.options, function (o) {
            o.selected = Array.prototype.some.call(el.selectedOptions, function (s) { return s.value === o.value; });
          });
        } else {
          twin.value = el.value;
        }
        if (twin.form && dirty) twin.form.dataset.dirty = "1";
      });
    });
  }

  function restoreFocus(node) {
    if (!focusId) return;
    var el = node.querySelector("#" + CSS.escape(focusId));
    if (!el) return;
    el.focus();
    if (focusRange && el.setSelectionRange) {
      try { el.setSelectionRange(focusRange[0], focusRange[1]); } catch (err) { /* not a text field */ }
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    tick();
    setInterval(tick, 1000);
    var main = document.querySelector("main.room[data-socket]");
    if (main && "WebSocket" in window) window.warRoom = new LiveRoom(main);
  });
})();
