/* kpistream wallboard: reads /api/v1/*, then re-reads the affected panel on every server-sent event
   (/api/v1/events relays the Redis channel kpi:updates). No framework, no build step, no external
   assets. When Redis or the worker cannot be reached the last values stay on screen, dimmed, under
   a "data stale since ..." banner, and the page recovers by itself. */
(function () {
  "use strict";

  window.__loaded = 1; // set once per page load: a test asserts the page was never reloaded

  var API = "/api/v1/";
  var PERIODS = ["rolling", "day", "month"];
  var CARDS = ["day", "month"];
  var PANEL_OF = {
    operator: "leaderboard",
    queue: "queues",
    center: "queues",
    live: "queues",
    alert: "alerts",
    scorecard: "scorecard"
  };
  var ROTATE_MS = 15000;
  var SAFETY_REFRESH_MS = 30000;
  var params = new URLSearchParams(window.location.search);
  var LIMIT = Math.max(1, Math.min(50, parseInt(params.get("limit") || "10", 10) || 10));

  var S = {
    queues: null,
    live: null,
    boards: {},
    alerts: [],
    cards: {},
    lastOk: null,
    stale: false,
    events: 0,
    renders: 0,
    tab: params.get("tab") || "rolling",
    pinned: params.has("tab") || params.get("rotate") === "0"
  };

  // ------------------------------------------------------------------ formatting
  function $(sel, root) { return (root || document).querySelector(sel); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function pct(v, digits) {
    if (v === null || v === undefined) return "—";
    if (v >= 0.9995) return "100<small>%</small>";
    return (v * 100).toFixed(digits === undefined ? 1 : digits) + "<small>%</small>";
  }
  function pctText(v, digits) {
    if (v === null || v === undefined) return "—";
    return (v * 100).toFixed(digits === undefined ? 1 : digits) + " %";
  }
  function limitText(v) {
    var x = v * 100;
    return (Math.abs(x - Math.round(x)) < 1e-9 ? x.toFixed(0) : x.toFixed(1)) + " %";
  }
  function dur(s) {
    if (s === null || s === undefined) return "—";
    var m = Math.floor(s / 60), ss = s % 60;
    if (m >= 60) return Math.floor(m / 60) + ":" + pad(m % 60) + ":" + pad(ss);
    return m + ":" + pad(ss);
  }
  function money(v) {
    if (v === null || v === undefined) return "—";
    return v.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function hms(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function hm(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "—" : pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function dayText(key) {
    if (!key) return "—";
    var d = new Date(key.slice(4) + "T12:00:00Z");
    if (isNaN(d)) return key;
    return d.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }
  function band(b, v) {
    if (!b || v === null || v === undefined) return "";
    if (b.direction === "higher_is_better") return v >= b.green ? "green" : v < b.red ? "red" : "amber";
    return v <= b.green ? "green" : v > b.red ? "red" : "amber";
  }
  var WORD = { green: "OK", amber: "WATCH", red: "ALERT" };
  var HEALTH = { green: "healthy", amber: "watch", red: "unhealthy" };

  function tile(field, label, valueHtml, status, note) {
    return '<div class="tile ' + (status || "") + '" data-field="' + field + '" data-status="' + (status || "none") + '">' +
      '<div class="label">' + label + "</div>" +
      '<div class="value">' + valueHtml + "</div>" +
      (note === undefined ? "" : '<div class="target">' + note + "</div>") +
      "</div>";
  }
  // The limit that matters under each KPI: SL's target, answered's minimum, LCR's and CAR's alert limit.
  function targetNote(status, b, isTarget) {
    var badge = status ? '<b class="' + status + '">' + WORD[status] + "</b>" : "";
    if (!b) return badge;
    if (b.direction === "higher_is_better") return badge + "≥ " + limitText(isTarget ? b.green : b.red);
    return badge + "≤ " + limitText(b.red);
  }

  // ------------------------------------------------------------------ rendering
  function liveOf(queue) {
    var rows = (S.live && S.live.queues) || [];
    for (var i = 0; i < rows.length; i++) if (rows[i].queue === queue) return rows[i];
    return null;
  }

  function queueCard(row, alerting) {
    var rec = row.periods.rolling;
    var k = rec ? rec.kpis : {};
    var st = row.status.rolling || {};
    var b = row.bands;
    var live = liveOf(row.queue) || {};
    var waitStatus = live.waiting ? band(b.longest_wait_s, live.longest_wait_s) : "";
    var agents = ["available", "busy", "wrap_up", "paused"];
    var total = agents.reduce(function (n, a) { return n + (live["agents_" + a] || 0); }, 0);
    var bar = agents.map(function (a) {
      var n = live["agents_" + a] || 0;
      return total ? '<i class="s-' + a + '" style="width:' + (100 * n / total).toFixed(2) + '%"></i>' : "";
    }).join("");
    var names = { available: "avail", busy: "busy", wrap_up: "wrap", paused: "paused" };
    var counts = agents.map(function (a) {
      return '<span class="n" data-field="agents_' + a + '"><i class="dot s-' + a + '"></i><b>' +
        (live["agents_" + a] || 0) + "</b> " + names[a] + "</span>";
    }).join("");
    return '<article class="queue' + (alerting ? " alerting" : "") + '" data-queue="' + esc(row.queue) + '">' +
      '<div class="queue-head"><span class="queue-name">' + esc(row.queue) + "</span>" +
      '<span class="queue-vol"><b data-field="offered">' + (rec ? rec.counts.offered : 0) + "</b> calls · " +
      '<b data-field="answered">' + (rec ? rec.counts.answered : 0) + "</b> answered</span></div>" +
      '<div class="kpis">' +
      tile("sl", "SL", pct(k.sl), st.sl, targetNote(st.sl, b.sl, true)) +
      tile("lcr", "Lost", pct(k.lcr), st.lcr, targetNote(st.lcr, b.lcr)) +
      tile("car", "Abandoned", pct(k.car), st.car, targetNote(st.car, b.car)) +
      tile("answer_rate", "Answered", pct(k.answer_rate), st.answer_rate, targetNote(st.answer_rate, b.answer_rate)) +
      "</div>" +
      '<div class="floor">' +
      tile("waiting", "Waiting", String(live.waiting || 0), waitStatus) +
      tile("longest_wait_s", "Longest wait", live.waiting ? dur(live.longest_wait_s) : "—", waitStatus) +
      tile("chats_waiting", "Chats", String(live.chats_waiting || 0), "") +
      tile("emails_overdue", "E-mails late", String(live.emails_overdue || 0), live.emails_overdue ? "amber" : "") +
      "</div>" +
      '<div class="agents"><span>Agents</span>' + counts + '<div class="bar">' + bar + "</div></div>" +
      "</article>";
  }

  function renderQueues() {
    if (!S.queues) return;
    var alerting = {};
    (S.alerts || []).forEach(function (a) { if (a.scope === "queue") alerting[a.queue] = true; });
    var rows = S.queues.queues;
    $("#queues").innerHTML = rows.length
      ? rows.map(function (r) { return queueCard(r, alerting[r.queue]); }).join("")
      : '<p class="empty">No queue has published yet.</p>';
    $("#period-day").textContent = dayText(S.queues.period_keys.day);
    renderCenter();
    var b = S.queues.center.bands;
    $("#targets").textContent =
      "SL target " + limitText(b.sl.green) + " (amber from " + limitText(b.sl.red) + ") · " +
      "lost alert above " + limitText(b.lcr.red) + " (amber from " + limitText(b.lcr.green) + ") · " +
      "abandoned alert above " + limitText(b.car.red) + " (amber from " + limitText(b.car.green) + ") · " +
      "longest wait amber over " + b.longest_wait_s.green + " s, red over " + b.longest_wait_s.red + " s · " +
      "e-mails late: unanswered after " + S.queues.thresholds.email_threshold_s + " s";
    rendered();
  }

  function renderCenter() {
    var c = S.queues && S.queues.center;
    if (!c) return;
    var rec = c.periods.rolling;
    var k = rec ? rec.kpis : {};
    var st = c.status.rolling || {};
    var rows = (S.live && S.live.queues) || [];
    var waiting = 0, longest = 0, avail = 0;
    rows.forEach(function (r) {
      waiting += r.waiting;
      avail += r.agents_available;
      if (r.waiting) longest = Math.max(longest, r.longest_wait_s);
    });
    var waitStatus = waiting ? band(c.bands.longest_wait_s, longest) : "";
    $("#center").innerHTML =
      tile("sl", "SL", pct(k.sl), st.sl) +
      tile("lcr", "Lost", pct(k.lcr), st.lcr) +
      tile("car", "Abandoned", pct(k.car), st.car) +
      tile("answer_rate", "Answered", pct(k.answer_rate), st.answer_rate) +
      tile("waiting", "Waiting", String(waiting), waitStatus) +
      tile("longest_wait_s", "Longest", waiting ? dur(longest) : "—", waitStatus) +
      tile("agents_available", "Available", String(avail), "");
  }

  function renderBoards() {
    PERIODS.forEach(function (p) {
      var board = S.boards[p];
      var ol = $('.board[data-period="' + p + '"]');
      if (!board || !ol) return;
      var ops = board.operators;
      var max = ops.reduce(function (m, o) { return Math.max(m, o.fund_share || 0); }, 0);
      ol.innerHTML = ops.length
        ? ops.map(function (o) {
            var w = max ? (100 * (o.fund_share || 0) / max).toFixed(1) : 0;
            return '<li data-operator="' + esc(o.operator_id) + '">' +
              '<span class="rank">' + o.rank + "</span>" +
              '<span class="op">' + esc(o.operator_id) + "</span>" +
              '<span class="f' + (o.f < 0 ? " neg" : "") + '" data-field="f">' + o.f.toFixed(2) + "</span>" +
              '<span class="share"><span class="sbar"><i style="width:' + w + '%"></i></span>' +
              '<span data-field="fund_share">' + pctText(o.fund_share) + "</span></span></li>";
          }).join("")
        : '<li class="none">No operator activity in this period yet.</li>';
    });
    showTab(S.tab);
    rendered();
  }

  function showTab(tab) {
    S.tab = tab;
    Array.prototype.forEach.call(document.querySelectorAll(".board"), function (ol) {
      ol.hidden = ol.getAttribute("data-period") !== tab;
    });
    Array.prototype.forEach.call(document.querySelectorAll("#tabs button"), function (b) {
      b.classList.toggle("active", b.getAttribute("data-tab") === tab);
    });
  }

  function renderAlerts() {
    var box = $("#alerts");
    var list = S.alerts || [];
    var label = { lcr: "Lost call rate", car: "Abandon rate" };
    box.hidden = !list.length;
    box.innerHTML = list.slice(0, 3).map(function (a) {
      var where = a.scope === "center" ? "whole centre" : esc(a.queue);
      // The alert record holds the value when it fired; show the current one when the page has it.
      var row = !S.queues ? null : a.scope === "center" ? S.queues.center :
        S.queues.queues.filter(function (q) { return q.queue === a.queue; })[0];
      var rec = row && row.periods.rolling;
      if (rec && rec.kpis[a.kpi] !== null) a = Object.assign({}, a, { value: rec.kpis[a.kpi], offered: rec.counts.offered });
      return '<div class="alert" data-alert-id="' + esc(a.alert_id) + '" data-kpi="' + esc(a.kpi) +
        '" data-queue="' + esc(a.queue) + '"><span class="icon">!</span>' +
        '<span class="what">' + label[a.kpi] + " " + pctText(a.value) + " · " + where + "</span>" +
        "<span>above " + limitText(a.threshold) + (a.offered ? " · " + a.offered + " calls" : "") + "</span>" +
        '<span class="since">since ' + hm(a.since) + "</span></div>";
    }).join("") + (list.length > 3 ? '<div class="more">+ ' + (list.length - 3) + " more alerts</div>" : "");
    document.body.setAttribute("data-alerts", String(list.length));
  }

  var FIGURES = [
    ["customer.fcr", function (c) { return pct(c.customer.fcr); },
      function (c) { return c.customer.fcr_resolved + " / " + c.customer.fcr_contacts; }],
    ["finance.cost_per_order", function (c) { return money(c.finance.cost_per_order); },
      function (c) { return c.finance.orders === null ? "no orders" : c.finance.orders + " orders"; }],
    ["operations.answer_rate", function (c) { return pct(c.operations.answer_rate); },
      function (c) { return c.operations.answered + " / " + c.operations.offered; }],
    ["growth.attrition_month", function (c) { return pct(c.growth.attrition_month); },
      function (c) { return c.growth.leavers_month + " left · limit " + limitText(c.growth.attrition_month_limit); }],
    ["growth.attrition_12m", function (c) { return pct(c.growth.attrition_12m, 0); },
      function (c) { return c.growth.leavers_12m + " left · limit " + limitText(c.growth.attrition_12m_limit); }]
  ];

  function renderScorecard() {
    CARDS.forEach(function (p) {
      var tr = $('#scorecard tr[data-card="' + p + '"]');
      var res = S.cards[p];
      if (!tr || !res) return;
      var card = res.scorecard;
      var cells = FIGURES.map(function (f) {
        var status = (res.status || {})[f[0]] || "";
        var value = card ? f[1](card) : "—";
        var detail = card ? f[2](card) : "";
        return '<td class="' + status + '" data-figure="' + f[0] + '" data-status="' + (status || "none") + '">' +
          '<span class="value">' + value + "</span>" +
          (status ? '<span class="state">' + HEALTH[status] + "</span>" : "") +
          '<div class="detail">' + detail + "</div></td>";
      }).join("");
      tr.innerHTML = "<th>" + (p === "day" ? "Today" : "Month") + "</th>" + cells;
    });
    rendered();
  }

  // A TV has no scroll bar: shrink the type (down to 60 %) until every panel shows all of its content.
  function overflowing() {
    var root = document.documentElement;
    if (root.scrollHeight > window.innerHeight + 1) return true;
    return Array.prototype.some.call(document.querySelectorAll(".queues-panel, .card-panel"), function (el) {
      return el.scrollHeight > el.clientHeight + 1;
    });
  }
  function fit() {
    var root = document.documentElement;
    root.style.fontSize = "";
    var base = parseFloat(window.getComputedStyle(root).fontSize);
    var scale = 1;
    while (overflowing() && scale > 0.6) {
      scale *= 0.96;
      root.style.fontSize = (base * scale).toFixed(2) + "px";
    }
  }
  window.addEventListener("resize", fit);

  function rendered() {
    fit();
    S.renders += 1;
    document.body.setAttribute("data-renders", String(S.renders));
    document.body.classList.remove("loading");
  }

  // ------------------------------------------------------------------ freshness
  function setConn(state) {
    var el = $("#conn");
    el.className = "conn " + state;
    el.textContent = state === "live" ? "LIVE" : state === "down" ? "OFFLINE" : "CONNECTING";
  }

  function ok() {
    S.lastOk = new Date();
    $("#updated").textContent = "updated " + hms(S.lastOk);
    if (S.stale) {
      S.stale = false;
      document.body.classList.remove("stale-data");
      $("#stale").hidden = true;
    }
  }

  function fail(why, since) {
    var at = S.lastOk || (since ? new Date(since) : new Date());
    if (!S.stale) {
      S.stale = true;
      S.staleSince = at;
    }
    document.body.classList.add("stale-data");
    $("#stale-since").textContent = hms(S.staleSince);
    $("#stale-why").textContent = "— " + why + "; showing the last values";
    $("#stale").hidden = false;
  }

  // ------------------------------------------------------------------ loading
  function getJSON(path) {
    return fetch(API + path, { cache: "no-store" }).then(function (r) {
      if (!r.ok) {
        var e = new Error("HTTP " + r.status);
        e.status = r.status;
        throw e;
      }
      return r.json();
    });
  }

  var loaders = {
    queues: function () {
      return Promise.all([getJSON("queues"), getJSON("live")]).then(function (res) {
        S.queues = res[0];
        S.live = res[1];
        renderQueues();
        renderAlerts();
      });
    },
    leaderboard: function () {
      return Promise.all(PERIODS.map(function (p) {
        return getJSON("leaderboard?period=" + p + "&limit=" + LIMIT);
      })).then(function (res) {
        res.forEach(function (b) { S.boards[b.period] = b; });
        renderBoards();
      });
    },
    alerts: function () {
      return getJSON("alerts").then(function (res) {
        S.alerts = res.alerts;
        renderAlerts();
        renderQueues();
      });
    },
    scorecard: function () {
      return Promise.all(CARDS.map(function (p) { return getJSON("scorecard?period=" + p); })).then(function (res) {
        res.forEach(function (c) { S.cards[c.period] = c; });
        renderScorecard();
      });
    }
  };

  // Messages come in bursts (one per Redis key per flush): coalesce them into one read per panel.
  var dirty = {};
  var timer = null;
  var running = false;

  function schedule(panel, delay) {
    dirty[panel] = true;
    if (!timer && !running) timer = setTimeout(flush, delay === undefined ? 150 : delay);
  }

  function flush() {
    timer = null;
    var panels = Object.keys(dirty);
    if (!panels.length) return;
    dirty = {};
    running = true;
    Promise.all(panels.map(function (p) { return loaders[p](); })).then(ok, function (e) {
      panels.forEach(function (p) { dirty[p] = true; });
      fail(e && e.status === 503 ? "Redis unreachable" : "worker unreachable");
    }).then(function () {
      running = false;
      if (Object.keys(dirty).length && !timer) timer = setTimeout(flush, S.stale ? 3000 : 300);
    });
  }

  function loadAll() { Object.keys(loaders).forEach(function (p) { schedule(p, 0); }); }

  function connect() {
    if (!window.EventSource) {
      setInterval(loadAll, 5000);
      return;
    }
    var es = new EventSource(API + "events");
    es.onopen = function () { setConn("live"); };
    es.onmessage = function (e) {
      var m;
      try { m = JSON.parse(e.data); } catch (_) { return; }
      S.events += 1;
      document.body.setAttribute("data-events", String(S.events));
      schedule(PANEL_OF[m.kind] || "queues");
    };
    es.addEventListener("stale", function (e) {
      var d = {};
      try { d = JSON.parse(e.data); } catch (_) { /* keep defaults */ }
      setConn("down");
      fail("Redis unreachable", d.since);
    });
    es.addEventListener("fresh", function () {
      setConn("live");
      loadAll();
    });
    es.onerror = function () {
      setConn("down");
      fail("no connection to the worker");
    };
  }

  // ------------------------------------------------------------------ clock and leaderboard rotation
  function tick() { $("#clock").textContent = hms(new Date()); }

  function startRotation() {
    var bar = $("#rotate-bar");
    if (S.pinned) {
      bar.parentNode.hidden = true;
      return;
    }
    function restart() {
      bar.style.transition = "none";
      bar.style.width = "0";
      void bar.offsetWidth; // restart the CSS transition
      bar.style.transition = "width " + ROTATE_MS + "ms linear";
      bar.style.width = "100%";
    }
    restart();
    setInterval(function () {
      if (S.pinned) return;
      showTab(PERIODS[(PERIODS.indexOf(S.tab) + 1) % PERIODS.length]);
      restart();
    }, ROTATE_MS);
  }

  document.getElementById("tabs").addEventListener("click", function (e) {
    var tab = e.target && e.target.getAttribute && e.target.getAttribute("data-tab");
    if (!tab) return;
    S.pinned = true; // a click pins the tab; reload the page to rotate again
    $("#rotate-bar").parentNode.hidden = true;
    showTab(tab);
  });

  showTab(S.tab);
  tick();
  setInterval(tick, 1000);
  startRotation();
  loadAll();
  connect();
  setInterval(loadAll, SAFETY_REFRESH_MS);
})();
