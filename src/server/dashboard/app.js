// The heloflow dashboard: reads /api/schema, taps the streams it shows over WebSocket (history
// first, then live), polls /api/status every second, and draws per subject the emotion
// distribution (bars and a scrolling uPlot history with markers and conditions on its time axis),
// the hidden truth where the pipeline has it, signal quality, the latest features and the
// per-condition means. Rows only mark things dirty; drawing happens once per animation frame.
"use strict";
(function () {
  const HISTORY_CAP = 3600; // points kept per subject and series (an hour at 1 Hz)
  const MARKER_CAP = 500; // markers kept per subject
  const QUALITY_LABELS = ["coverage", "nonfinite", "flat", "clipped"];
  const COLORS = {
    neutral: "#8d8d8d", amusement: "#f9a825", joy: "#fdd835", tenderness: "#f06292",
    inspiration: "#29b6f6", surprise: "#ab47bc", sadness: "#1e66c8", fear: "#6d4c41",
    anger: "#e53935", disgust: "#43a047",
  };

  const token = new URLSearchParams(location.search).get("token");

  /** An API path with its query (and the page's token, when it has one). */
  function apiUrl(path, query) {
    const q = new URLSearchParams(query || {});
    if (token) q.set("token", token);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  }

  function socketUrl(path, query) {
    return (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + apiUrl(path, query);
  }

  // Test hooks: what arrived and what was drawn, so a browser test can see live data on the charts.
  const hooks = {
    schema: null,
    rows: {}, // stream -> rows received
    draws: { history: 0, truth: 0, bars: 0, cards: 0 }, // draw calls so far
    points: { history: 0, truth: 0, bars: 0, cards: 0 }, // points in the last draw; cards: cards showing a distribution
    lastDraw: {}, // chart -> Date.now() of its last draw
    markersDrawn: 0, // marker lines in the last history draw
    conditionsDrawn: 0, // condition spans in the last history draw
    frameMs: 0, // how long the last animation frame's drawing took
    maxFrameMs: 0,
    statusPolls: 0,
    statusErrors: 0,
    sockets: {}, // stream -> "connecting" | "open" | "ended" | "closed"
    ended: false,
    errors: [],
    selected: null,
    subjects: () => [...subjects.keys()],
    select: (id) => select(id),
  };
  window.heloflow = hooks;

  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");

  function fmt(v) {
    if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
    if (typeof v !== "number") return String(v);
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (Number.isInteger(v) && a < 1e9) return String(v);
    if (a >= 1000) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 0.001) return v.toPrecision(3);
    return v.toExponential(2);
  }

  function color(label, index) {
    return COLORS[label] || "hsl(" + ((index * 47) % 360) + ",60%,50%)";
  }

  // ---------------------------------------------------------------- the schema: what to show
  const plan = {
    labels: [], // the model's labels (or the emotion stream's channels)
    model: null, // {name, keys: the channel of each label}
    truth: null, // likewise, the hidden truth
    markers: [], // marker stream names
    quality: [], // {name, modality, labels: [quality channel labels]}
    features: [], // {name, modality, labels: [feature channel labels]}
    conditions: [], // condition_means stream names
    channels: {}, // stream -> [channel labels], for rows written as arrays
  };

  const isQuality = (c) => /quality/i.test(c.type || "") || QUALITY_LABELS.includes(c.label);

  /** The channel of each label in a stream (`joy` or `joy_mean`), in label order; null if one is missing. */
  function labelKeys(stream, labels) {
    const names = stream.channels.map((c) => c.label);
    const keys = [];
    for (const label of labels) {
      const key = names.includes(label) ? label : names.includes(label + "_mean") ? label + "_mean" : null;
      if (key === null) return null;
      keys.push(key);
    }
    return keys;
  }

  function planFrom(schema) {
    const streams = schema.streams || [];
    for (const s of streams) {
      s.channels = s.channels || [];
      plan.channels[s.name] = s.channels.map((c) => c.label);
    }
    const models = schema.models || [];
    let model = null;
    for (const m of models) {
      model = streams.find((s) => s.name === m.operator);
      if (model) {
        plan.labels = m.labels && m.labels.length ? m.labels : model.channels.map((c) => c.label);
        break;
      }
    }
    if (!model) {
      model = streams.find((s) => s.producer === "operator" && s.modality === "emotion") ||
        streams.find((s) => s.modality === "emotion");
      if (model) plan.labels = model.channels.filter((c) => !isQuality(c)).map((c) => c.label);
    }
    if (model) plan.model = { name: model.name, keys: labelKeys(model, plan.labels) || plan.labels };
    // The hidden truth: another stream over the same labels, a "truth" one or an operator first.
    const candidates = streams.filter((s) => model && s.name !== model.name && s.format !== "string")
      .map((s) => ({ s, keys: labelKeys(s, plan.labels) }))
      .filter((c) => c.keys);
    const rank = (c) => (/truth/i.test(c.s.name) ? 0 : 2) + (c.s.producer === "operator" ? 0 : 1);
    candidates.sort((a, b) => rank(a) - rank(b));
    if (candidates.length) plan.truth = { name: candidates[0].s.name, keys: candidates[0].keys };
    for (const s of streams) {
      if (s.kind === "condition_means") { plan.conditions.push(s.name); continue; }
      if (s.modality === "markers" || (s.format === "string" && s.producer === "source")) {
        plan.markers.push(s.name);
        continue;
      }
      if (model && s.name === model.name) continue;
      const quality = s.channels.filter(isQuality).map((c) => c.label);
      if (quality.length) plan.quality.push({ name: s.name, modality: s.modality, labels: quality });
      const features = s.channels.filter((c) => /feature/i.test(c.type || "")).map((c) => c.label);
      if (features.length && !(plan.truth && s.name === plan.truth.name)) {
        plan.features.push({ name: s.name, modality: s.modality, labels: features });
      }
    }
  }

  // ---------------------------------------------------------------- per-subject state
  const subjects = new Map(); // id -> subject
  const markersBySubject = new Map(); // id -> [{t, text}] (marker streams may name other subjects)

  function series(n) {
    const columns = [[]];
    for (let i = 0; i < n; i++) columns.push([]);
    return columns;
  }

  function subject(id) {
    let s = subjects.get(id);
    if (s) return s;
    s = {
      id,
      model: series(plan.labels.length), // uPlot columns: [t, label0, label1, ...]
      truth: series(plan.labels.length),
      latest: null, // latest model distribution
      latestTruth: null,
      t: null,
      quality: {}, // stream -> {t, values}
      features: {}, // stream -> {t, values}
      conditions: {}, // stream -> Map(key -> {t, values})
      card: null,
    };
    subjects.set(id, s);
    addCard(s);
    return s;
  }

  /** The values of a row as an object keyed by channel label. */
  function valuesOf(row) {
    const v = row.values;
    if (!Array.isArray(v)) return v || {};
    const labels = plan.channels[row.stream] || [];
    const out = {};
    v.forEach((x, i) => { out[labels[i] || String(i)] = x; });
    return out;
  }

  /** Appends a row's distribution (channel `keys` in label order) to uPlot columns; false if not newer. */
  function push(columns, t, values, keys) {
    const ts = columns[0];
    if (ts.length && t <= ts[ts.length - 1]) return false; // a replayed row after a reconnect
    ts.push(t);
    keys.forEach((key, i) => {
      const v = values[key];
      columns[i + 1].push(typeof v === "number" ? v : null);
    });
    if (ts.length > HISTORY_CAP + HISTORY_CAP / 10) {
      const drop = ts.length - HISTORY_CAP;
      for (const c of columns) c.splice(0, drop);
    }
    return true;
  }

  /** The distribution in a row, in label order. */
  function distribution(values, keys) {
    return keys.map((key) => (typeof values[key] === "number" ? values[key] : null));
  }

  /**
   * A marker as the condition_means operator reads it: `text@12.5` happened at 12.5 s whenever it
   * arrived, and `retract:text@12.5` withdraws that marker.
   */
  function parseMarker(text, t) {
    let retract = false;
    if (text.startsWith("retract:")) { retract = true; text = text.slice("retract:".length); }
    const at = /^(.*)@([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$/.exec(text);
    if (at && isFinite(Number(at[2])) && Math.abs(Number(at[2])) <= 9e9) return { t: Number(at[2]), text: at[1], retract };
    return { t, text, retract };
  }

  function onRow(stream, role, row) {
    hooks.rows[stream] = (hooks.rows[stream] || 0) + 1;
    const values = valuesOf(row);
    const t = Number(row.t);
    if (role === "markers") {
      const list = markersBySubject.get(row.subject) || [];
      const marker = parseMarker(Object.values(values).map(String).join(" "), t);
      const at = list.findIndex((m) => m.t === marker.t && m.text === marker.text);
      if (marker.retract) {
        if (at >= 0) list.splice(at, 1);
      } else if (at < 0) {
        list.push(marker);
        list.sort((a, b) => a.t - b.t);
        if (list.length > MARKER_CAP) list.splice(0, list.length - MARKER_CAP);
      }
      markersBySubject.set(row.subject, list);
      const s = subjects.get(row.subject);
      if (s) dirty(s, true); else for (const s of subjects.values()) dirty(s, false);
      return;
    }
    const s = subject(row.subject);
    if (role === "model") {
      if (push(s.model, t, values, plan.model.keys)) {
        s.latest = distribution(values, plan.model.keys);
        s.t = t;
      }
    } else if (role === "truth") {
      if (push(s.truth, t, values, plan.truth.keys)) s.latestTruth = distribution(values, plan.truth.keys);
    } else if (role === "conditions") {
      s.conditions[stream] = { t, values }; // each row carries every condition's aggregates
    }
    if (plan.quality.some((q) => q.name === stream)) s.quality[stream] = { t, values };
    if (plan.features.some((f) => f.name === stream)) s.features[stream] = { t, values };
    dirty(s, true);
  }

  // ---------------------------------------------------------------- taps
  function tap(stream, role) {
    let tries = 0;
    hooks.rows[stream] = hooks.rows[stream] || 0;
    const open = () => {
      hooks.sockets[stream] = "connecting";
      const ws = new WebSocket(socketUrl("/api/streams/" + stream + "/ws", { history: "all" }));
      ws.onopen = () => { hooks.sockets[stream] = "open"; tries = 0; showState(); };
      ws.onmessage = (event) => {
        let row;
        try { row = JSON.parse(event.data); } catch (e) { hooks.errors.push(stream + ": " + e); return; }
        onRow(stream, role, row);
      };
      ws.onclose = (event) => {
        if (event.code === 1000 || event.code === 1005) { // the pipeline ended (a close frame, with or without a code)
          hooks.sockets[stream] = "ended";
        } else if (tries < 20) {
          hooks.sockets[stream] = "closed";
          tries += 1;
          setTimeout(open, Math.min(500 * 2 ** tries, 10000));
        } else {
          hooks.sockets[stream] = "closed";
        }
        showState();
      };
    };
    open();
  }

  function showState() {
    const states = Object.values(hooks.sockets);
    hooks.ended = states.length > 0 && states.every((s) => s === "ended");
    const el = $("state");
    if (hooks.ended) { el.textContent = "session ended"; el.className = "state ended"; return; }
    const open = states.filter((s) => s === "open").length;
    if (hooks.statusErrors > 2 && !open) { el.textContent = "disconnected"; el.className = "state bad"; return; }
    el.textContent = "live · " + open + "/" + states.length + " streams";
    el.className = "state live";
  }

  // ---------------------------------------------------------------- drawing, once per frame
  const dirtyCards = new Set();
  let detailDirty = false;
  let frame = 0;

  function dirty(s, data) {
    dirtyCards.add(s);
    if (data && hooks.selected === s.id) detailDirty = true;
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    const began = performance.now();
    let cards = 0;
    for (const s of dirtyCards) if (drawCard(s)) cards += 1;
    dirtyCards.clear();
    if (cards) {
      hooks.draws.cards += 1;
      hooks.points.cards = [...subjects.values()].filter((s) => s.latest).length;
      hooks.lastDraw.cards = Date.now();
    }
    if (detailDirty) {
      detailDirty = false;
      drawDetail();
    }
    hooks.frameMs = performance.now() - began;
    hooks.maxFrameMs = Math.max(hooks.maxFrameMs, hooks.frameMs);
  }

  function legend() {
    $("legend").innerHTML = plan.labels.map((l, i) =>
      '<span><i style="background:' + color(l, i) + '"></i>' + esc(l) + "</span>").join("") +
      (plan.truth ? '<span><i class="truth-tick"></i>hidden truth (' + esc(plan.truth.name) + ")</span>" : "");
  }

  function addCard(s) {
    const card = document.createElement("button");
    card.type = "button";
    card.className = "card";
    card.dataset.subject = s.id;
    card.innerHTML = '<div class="card-head"><b></b><span class="dot"></span><span class="top"></span></div><canvas></canvas>';
    card.querySelector("b").textContent = s.id;
    card.onclick = () => select(hooks.selected === s.id ? null : s.id);
    s.card = { el: card, canvas: card.querySelector("canvas"), top: card.querySelector(".top"), dot: card.querySelector(".dot") };
    const grid = $("grid");
    const after = [...grid.children].find((c) => c.dataset.subject.localeCompare(s.id, undefined, { numeric: true }) > 0);
    grid.insertBefore(card, after || null);
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted === s.id || (!hooks.selected && !closed && !subjects.has(wanted))) select(s.id);
  }

  function sizeCanvas(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx, w, h };
  }

  /** A card: small bars of the latest distribution, truth as ticks, the top label, coverage. */
  function drawCard(s) {
    const { ctx, w, h } = sizeCanvas(s.card.canvas);
    ctx.clearRect(0, 0, w, h);
    if (!s.latest) return false;
    const n = plan.labels.length;
    const slot = w / n;
    ctx.fillStyle = "#eef0f3";
    ctx.fillRect(0, h - 1, w, 1);
    s.latest.forEach((v, i) => {
      const bar = Math.max(0, Math.min(1, v || 0)) * (h - 2);
      ctx.fillStyle = color(plan.labels[i], i);
      ctx.fillRect(i * slot + 1, h - 1 - bar, slot - 2, bar);
      const truth = s.latestTruth && s.latestTruth[i];
      if (truth !== null && truth !== undefined) {
        ctx.fillStyle = "#111";
        ctx.fillRect(i * slot, h - 1 - Math.min(1, truth) * (h - 2), slot, 2);
      }
    });
    let top = 0;
    s.latest.forEach((v, i) => { if ((v || 0) > (s.latest[top] || 0)) top = i; });
    s.card.top.textContent = s.card.top.title = plan.labels[top] + " " + Math.round((s.latest[top] || 0) * 100) + "%";
    const coverage = Object.values(s.quality).map((q) => q.values.coverage).filter((c) => typeof c === "number");
    const worst = coverage.length ? Math.min(...coverage) : null;
    s.card.dot.className = "dot " + qualityClass(worst);
    s.card.dot.title = worst === null ? "no coverage reported" : "lowest coverage " + fmt(worst);
    return true;
  }

  function qualityClass(coverage) {
    if (coverage === null || coverage === undefined) return "";
    return coverage >= 0.9 ? "good" : coverage >= 0.5 ? "fair" : "bad";
  }

  // ---------------------------------------------------------------- the detail view
  let charts = null; // {history, truth, bars, windowS}

  let closed = false; // the reader closed the detail view: do not open one by itself again

  function select(id) {
    hooks.selected = id;
    closed = !id;
    for (const c of $("grid").children) c.classList.toggle("selected", c.dataset.subject === id);
    document.body.classList.toggle("has-detail", !!id);
    $("detail").hidden = !id;
    if (charts) {
      charts.history.destroy();
      if (charts.truth) charts.truth.destroy();
      charts.bars.destroy();
      charts = null;
    }
    $("features").innerHTML = "";
    featureCells = {};
    history.replaceState(null, "", location.pathname + location.search + (id ? "#" + encodeURIComponent(id) : ""));
    if (!id) return;
    $("detail-title").textContent = id;
    charts = makeCharts();
    detailDirty = true;
    if (!frame) frame = requestAnimationFrame(draw);
  }

  /** Marker lines and condition spans (start/end pairs) on a history chart's time axis. */
  function markerPlugin(layer) {
    const spans = (markers) => {
      const open = new Map(), out = [];
      for (const m of markers) {
        const start = /^(.*?)(?:start|onset|begin)(.*)$/i.exec(m.text);
        const end = /^(.*?)(?:end|offset|stop)(.*)$/i.exec(m.text);
        if (start && !end) open.set(start[1] + "|" + start[2], m);
        else if (end) {
          const key = end[1] + "|" + end[2];
          const from = open.get(key);
          if (from) { out.push({ from: from.t, to: m.t, name: end[2].replace(/^[:_\s-]+/, "") || m.text }); open.delete(key); }
        }
      }
      for (const [key, from] of open) out.push({ from: from.t, to: Infinity, name: key.split("|")[1].replace(/^[:_\s-]+/, "") || from.text });
      return out;
    };
    return {
      hooks: {
        drawClear: [(u) => {
          const s = subjects.get(hooks.selected);
          if (!s) return;
          const { left, top, width, height } = u.bbox;
          const ctx = u.ctx;
          ctx.save();
          ctx.textAlign = "left";
          ctx.textBaseline = "alphabetic";
          let drawn = 0;
          for (const span of spans(shownMarkers(s))) {
            const x0 = Math.max(left, u.valToPos(span.from, "x", true));
            const x1 = Math.min(left + width, span.to === Infinity ? left + width : u.valToPos(span.to, "x", true));
            if (x1 <= x0) continue;
            ctx.fillStyle = "rgba(255, 193, 7, 0.13)";
            ctx.fillRect(x0, top, x1 - x0, height);
            if (layer === "history") {
              const ratio = devicePixelRatio;
              ctx.font = 11 * ratio + "px sans-serif";
              const w = ctx.measureText(span.name).width;
              if (w + 8 * ratio < x1 - x0) {
                ctx.fillStyle = "rgba(255,255,255,0.85)";
                ctx.fillRect(x0 + 2 * ratio, top + height - 17 * ratio, w + 4 * ratio, 14 * ratio);
                ctx.fillStyle = "#8a6d00";
                ctx.fillText(span.name, x0 + 4 * ratio, top + height - 6 * ratio);
              }
            }
            drawn += 1;
          }
          if (layer === "history") hooks.conditionsDrawn = drawn;
          ctx.restore();
        }],
        draw: [(u) => {
          const s = subjects.get(hooks.selected);
          if (!s) return;
          const { left, top, width, height } = u.bbox;
          const ctx = u.ctx;
          const ratio = devicePixelRatio;
          ctx.save();
          ctx.textAlign = "left";
          ctx.textBaseline = "alphabetic";
          ctx.strokeStyle = "#444";
          ctx.setLineDash([4 * ratio, 3 * ratio]);
          ctx.lineWidth = ratio;
          ctx.fillStyle = "#333";
          ctx.font = 10 * ratio + "px sans-serif";
          let drawn = 0;
          const ends = [-Infinity, -Infinity, -Infinity]; // where the labels on each of three rows end
          for (const m of shownMarkers(s)) {
            const x = u.valToPos(m.t, "x", true);
            if (x < left || x > left + width) continue;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            drawn += 1;
            if (layer !== "history") continue;
            const w = ctx.measureText(m.text).width;
            const lx = Math.min(x + 3 * ratio, left + width - w - 2 * ratio);
            const line = ends.findIndex((end) => end < lx);
            if (line < 0) continue;
            ctx.fillStyle = "rgba(255,255,255,0.8)";
            ctx.fillRect(lx - ratio, top + (2 + line * 12) * ratio, w + 2 * ratio, 11 * ratio);
            ctx.fillStyle = "#333";
            ctx.fillText(m.text, lx, top + (11 + line * 12) * ratio);
            ends[line] = lx + w + 4 * ratio;
          }
          ctx.restore();
          const n = u.data[0].length;
          hooks.draws[layer] += 1;
          hooks.points[layer] = n;
          hooks.lastDraw[layer] = Date.now();
          if (layer === "history") hooks.markersDrawn = drawn;
        }],
      },
    };
  }

  function shownMarkers(s) {
    const own = markersBySubject.get(s.id) || [];
    const shared = [];
    for (const [id, list] of markersBySubject) if (id !== s.id && !subjects.has(id)) shared.push(...list);
    return shared.length ? own.concat(shared).sort((a, b) => a.t - b.t) : own;
  }

  function windowS() {
    return Number($("window").value) || Infinity;
  }

  /** The shown stretch of event time: the chosen window up to the latest row. */
  function timeRange(min, max) {
    if (min === null || max === null || !isFinite(min) || !isFinite(max)) return [0, 1];
    const from = Math.max(min, max - windowS());
    return from === max ? [max - 1, max + 1] : [from, max];
  }

  function timeChart(el, columns, height, layer, title) {
    const opts = {
      title,
      width: el.clientWidth || 600,
      height,
      plugins: [markerPlugin(layer)],
      cursor: { sync: { key: "heloflow" }, drag: { x: false, y: false } },
      legend: { show: layer === "history", live: false },
      scales: {
        x: {
          time: false,
          range: (u, min, max) => (charts && charts.range) || timeRange(min, max),
        },
        y: { range: [0, 1] },
      },
      axes: [
        { label: layer === "history" ? "event time (s)" : "", size: 40, values: (u, v) => v.map((x) => fmt(x)) },
        { size: 52, values: (u, v) => v.map((x) => Math.round(x * 100) + "%") },
      ],
      series: [{ label: "t", value: (u, v) => fmt(v) }].concat(plan.labels.map((l, i) => ({
        label: l, stroke: color(l, i), width: 1.5, points: { show: false },
        value: (u, v) => (v === null || v === undefined ? "–" : Math.round(v * 1000) / 10 + "%"),
      }))),
    };
    return new uPlot(opts, columns, el);
  }

  function makeCharts() {
    const barsEl = $("bars"), historyEl = $("history"), truthEl = $("truth-history");
    barsEl.innerHTML = historyEl.innerHTML = truthEl.innerHTML = "";
    const n = plan.labels.length;
    const s = subjects.get(hooks.selected);
    const empty = [plan.labels.map((_, i) => i), plan.labels.map(() => null), plan.labels.map(() => null)];
    const bar = uPlot.paths.bars;
    const bars = new uPlot({
      width: barsEl.clientWidth || 360,
      height: 250,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, n - 0.5] }, y: { range: [0, 1] } },
      axes: [
        { splits: () => plan.labels.map((_, i) => i), values: () => plan.labels, rotate: -40, size: 70, gap: 2 },
        { size: 52, values: (u, v) => v.map((x) => Math.round(x * 100) + "%") },
      ],
      series: [
        {},
        { label: plan.model ? plan.model.name : "model", paths: bar({ size: [plan.truth ? 0.42 : 0.8, 60], align: plan.truth ? -1 : 0 }), points: { show: false }, stroke: "#1f4e8c", fill: "#3b7dd8cc" },
        { label: plan.truth ? plan.truth.name : "truth", paths: bar({ size: [0.42, 60], align: 1 }), points: { show: false }, stroke: "#333", fill: "#9aa0a6aa" },
      ],
      hooks: {
        draw: [(u) => {
          hooks.draws.bars += 1;
          hooks.points.bars = u.data[1].filter((v) => v !== null).length;
          hooks.lastDraw.bars = Date.now();
        }],
      },
    }, empty, barsEl);
    const historyChart = timeChart(historyEl, s ? s.model : series(n), 260, "history",
      plan.model ? plan.model.name : "emotion distribution");
    const truthChart = plan.truth ? timeChart(truthEl, s ? s.truth : series(n), 150, "truth", "hidden truth: " + plan.truth.name) : null;
    $("bars-caption").textContent = plan.truth ? "(blue: " + plan.model.name + ", grey: " + plan.truth.name + ")" : "";
    return { bars, history: historyChart, truth: truthChart };
  }

  let featureCells = {};

  function drawDetail() {
    const s = subjects.get(hooks.selected);
    if (!s || !charts) return;
    $("detail-now").textContent = s.t === null ? "waiting for the first distribution" : "t = " + fmt(s.t) + " s";
    charts.bars.setData([plan.labels.map((_, i) => i), s.latest || plan.labels.map(() => null),
      s.latestTruth || plan.labels.map(() => null)]);
    // The model's and the truth's charts share one time axis.
    const columns = [s.model[0], s.truth[0]].filter((ts) => ts.length);
    charts.range = columns.length ? timeRange(Math.min(...columns.map((ts) => ts[0])), Math.max(...columns.map((ts) => ts[ts.length - 1]))) : null;
    charts.history.setData(s.model);
    if (charts.truth) charts.truth.setData(s.truth);
    drawQuality(s);
    drawMarkers(s);
    drawConditions(s);
    drawFeatures(s);
  }

  function drawQuality(s) {
    if (!plan.quality.length) { $("quality").innerHTML = '<p class="muted">no stream in this pipeline reports quality or coverage</p>'; return; }
    const labels = [...new Set(plan.quality.flatMap((q) => q.labels))];
    let html = "<table><tr><th>stream</th><th>modality</th>" + labels.map((l) => "<th>" + esc(l) + "</th>").join("") + "<th>t (s)</th></tr>";
    for (const q of plan.quality) {
      const row = s.quality[q.name];
      html += "<tr><td>" + esc(q.name) + "</td><td>" + esc(q.modality || "") + "</td>" + labels.map((l) => {
        const v = row ? row.values[l] : undefined;
        const cls = l === "coverage" ? qualityClass(v) : (typeof v === "number" && v > 0 ? "fair" : "");
        return '<td class="num ' + cls + '">' + (q.labels.includes(l) ? fmt(v) : "") + "</td>";
      }).join("") + '<td class="num">' + (row ? fmt(row.t) : "–") + "</td></tr>";
    }
    $("quality").innerHTML = html + "</table>";
  }

  function drawMarkers(s) {
    const list = shownMarkers(s);
    if (!plan.markers.length) { $("markers").innerHTML = '<p class="muted">no marker stream in this pipeline</p>'; return; }
    if (!list.length) { $("markers").innerHTML = '<p class="muted">none yet (' + esc(plan.markers.join(", ")) + ")</p>"; return; }
    $("markers").innerHTML = "<table><tr><th>t (s)</th><th>marker</th></tr>" + list.slice(-8).reverse()
      .map((m) => '<tr><td class="num">' + fmt(m.t) + "</td><td>" + esc(m.text) + "</td></tr>").join("") + "</table>";
  }

  /**
   * A condition_means row as tables, one per input: its channels are `<condition>/windows` and
   * `<condition>/<label>`, or `<condition>/<input>.windows` and `<condition>/<input>.<label>`.
   */
  function conditionTables(values) {
    const conditions = [], inputs = new Map(); // input prefix -> {columns: [], cells: Map}
    const entries = Object.entries(values).map(([key, v]) => [key.indexOf("/"), key, v]).filter(([slash]) => slash > 0);
    const prefixes = entries.map(([slash, key]) => key.slice(slash + 1)).filter((c) => c === "windows" || c.endsWith(".windows"))
      .map((c) => c.slice(0, c.length - "windows".length)).sort((a, b) => b.length - a.length);
    for (const [slash, key, v] of entries) {
      const condition = key.slice(0, slash), column = key.slice(slash + 1);
      if (!conditions.includes(condition)) conditions.push(condition);
      const prefix = prefixes.find((p) => column.startsWith(p)) || "";
      const name = column.slice(prefix.length);
      const input = inputs.get(prefix) || { columns: [], cells: new Map() };
      if (!input.columns.includes(name)) input.columns.push(name);
      input.cells.set(condition + "/" + name, v);
      inputs.set(prefix, input);
    }
    return { conditions, inputs };
  }

  const CONDITION_COLUMNS = 12; // columns shown per input (the window count and the first means)

  function drawConditions(s) {
    if (!plan.conditions.length) { $("conditions").innerHTML = '<p class="muted">no condition_means operator in this pipeline</p>'; return; }
    let html = "";
    for (const name of plan.conditions) {
      const row = s.conditions[name];
      if (!row) { html += "<h4>" + esc(name) + '</h4><p class="muted">no row yet</p>'; continue; }
      const { conditions, inputs } = conditionTables(row.values);
      for (const [prefix, input] of inputs) {
        const columns = input.columns.slice(0, CONDITION_COLUMNS);
        const more = input.columns.length - columns.length;
        html += "<h4>" + esc(name) + (prefix ? " · " + esc(prefix.replace(/\.$/, "")) : "") + ' <span class="muted">t = ' + fmt(row.t) + " s" +
          (more > 0 ? ", " + more + " more columns not shown" : "") + "</span></h4>";
        html += '<div class="scroll"><table><tr><th>condition</th>' + columns.map((c) => "<th>" + esc(c) + "</th>").join("") + "</tr>" +
          conditions.map((c) => {
            const empty = !input.cells.get(c + "/windows");
            return "<tr" + (empty ? ' class="muted"' : "") + "><td>" + esc(c) + "</td>" +
              columns.map((col) => '<td class="num">' + fmt(input.cells.get(c + "/" + col)) + "</td>").join("") + "</tr>";
          }).join("") + "</table></div>";
      }
    }
    $("conditions").innerHTML = html;
  }

  function drawFeatures(s) {
    const root = $("features");
    if (!plan.features.length) { root.innerHTML = '<p class="muted">no feature stream in this pipeline</p>'; return; }
    for (const f of plan.features) {
      let cells = featureCells[f.name];
      if (!cells) {
        const box = document.createElement("details");
        box.open = f.labels.length <= 40;
        box.innerHTML = "<summary><b>" + esc(f.name) + '</b> <span class="muted">' + f.labels.length + " features, t = <span class=t>–</span> s</span></summary>";
        const kv = document.createElement("div");
        kv.className = "kv";
        cells = { t: box.querySelector(".t"), values: {} };
        for (const label of f.labels) {
          const cell = document.createElement("span");
          cell.innerHTML = "<i>" + esc(label) + "</i><b>–</b>";
          kv.appendChild(cell);
          cells.values[label] = cell.lastChild;
        }
        box.appendChild(kv);
        root.appendChild(box);
        featureCells[f.name] = cells;
      }
      const row = s.features[f.name];
      if (!row) continue;
      cells.t.textContent = fmt(row.t);
      for (const label of f.labels) cells.values[label].textContent = fmt(row.values[label]);
    }
  }

  // ---------------------------------------------------------------- the session
  function drawModels(schema) {
    const models = schema.models || [];
    if (!models.length) { $("models").innerHTML = ""; return; }
    const keys = ["operator", "name", "version", "provider", "window_s", "hop_s"];
    $("models").innerHTML = "<h4>Models</h4><table><tr>" + keys.map((k) => "<th>" + esc(k) + "</th>").join("") + "<th>labels</th></tr>" +
      models.map((m) => "<tr>" + keys.map((k) => "<td>" + esc(fmt(m[k])) + "</td>").join("") + "<td>" + esc((m.labels || []).length) + "</td></tr>").join("") + "</table>";
  }

  const scalar = (v) => v === null || typeof v !== "object";

  /** Any JSON as HTML: scalars inline, objects of objects and arrays of objects as tables. */
  function render(value) {
    if (scalar(value)) return esc(fmt(value));
    if (Array.isArray(value)) {
      if (!value.length) return "–";
      if (value.every(scalar)) return esc(value.map(fmt).join(", "));
      if (value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
        const keys = [...new Set(value.flatMap(Object.keys))];
        return "<table><tr>" + keys.map((k) => "<th>" + esc(k) + "</th>").join("") + "</tr>" +
          value.map((v) => "<tr>" + keys.map((k) => '<td class="num">' + render(v[k]) + "</td>").join("") + "</tr>").join("") + "</table>";
      }
      return value.map(render).join("<br>");
    }
    const entries = Object.entries(value);
    const rowsOfScalars = entries.length && entries.every(([, v]) => v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every(scalar));
    if (rowsOfScalars) {
      const keys = [...new Set(entries.flatMap(([, v]) => Object.keys(v)))];
      return '<div class="scroll"><table><tr><th></th>' + keys.map((k) => "<th>" + esc(k.replace(/_/g, " ")) + "</th>").join("") + "</tr>" +
        entries.map(([name, v]) => "<tr><th>" + esc(name) + "</th>" + keys.map((k) => '<td class="num">' + render(v[k]) + "</td>").join("") + "</tr>").join("") + "</table></div>";
    }
    const simple = entries.filter(([, v]) => scalar(v) || (Array.isArray(v) && v.every(scalar)));
    const nested = entries.filter((e) => !simple.includes(e));
    return (simple.length ? '<dl class="pairs">' + simple.map(([k, v]) => "<div><dt>" + esc(k.replace(/_/g, " ")) + "</dt><dd>" + render(v) + "</dd></div>").join("") + "</dl>" : "") +
      nested.map(([k, v]) => '<div class="group"><h4>' + esc(k.replace(/_/g, " ")) + "</h4>" + render(v) + "</div>").join("");
  }

  let lastStatus = "";
  async function pollStatus() {
    try {
      const response = await fetch(apiUrl("/api/status"), { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const text = await response.text();
      hooks.statusPolls += 1;
      hooks.statusErrors = 0;
      if (text !== lastStatus) {
        lastStatus = text;
        hooks.status = JSON.parse(text);
        $("status").innerHTML = render(hooks.status);
      }
    } catch (e) {
      hooks.statusErrors += 1;
    }
    showState();
    if (!hooks.ended) setTimeout(pollStatus, 1000); // the figures are final once every tap has ended
  }

  // ---------------------------------------------------------------- start
  async function start() {
    $("uplot-license").href = apiUrl("/assets/uPlot.LICENSE.txt");
    $("detail-close").onclick = () => select(null);
    const select_ = document.createElement("select");
    select_.id = "window";
    select_.title = "time shown on the history charts";
    select_.innerHTML = '<option value="60">1 min</option><option value="120" selected>2 min</option><option value="600">10 min</option><option value="">all</option>';
    select_.onchange = () => { detailDirty = true; if (!frame) frame = requestAnimationFrame(draw); };
    $("detail-now").after(select_);
    window.addEventListener("resize", () => {
      if (!charts) return;
      charts.bars.setSize({ width: $("bars").clientWidth, height: 250 });
      charts.history.setSize({ width: $("history").clientWidth, height: 260 });
      if (charts.truth) charts.truth.setSize({ width: $("truth-history").clientWidth, height: 150 });
      for (const s of subjects.values()) dirtyCards.add(s);
      if (!frame) frame = requestAnimationFrame(draw);
    });
    let schema;
    try {
      const response = await fetch(apiUrl("/api/schema"), { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      schema = await response.json();
    } catch (e) {
      $("state").textContent = "cannot read /api/schema: " + e.message;
      $("state").className = "state bad";
      hooks.errors.push(String(e));
      return;
    }
    hooks.schema = schema;
    hooks.plan = plan;
    planFrom(schema);
    $("pipeline").textContent = schema.pipeline || "";
    $("description").textContent = schema.description || "";
    document.title = "heloflow · " + (schema.pipeline || "");
    legend();
    drawModels(schema);
    if (plan.model) {
      // Subjects the schema knows get their card before any row.
      for (const s of schema.streams) if (s.name === plan.model.name) (s.subjects || []).forEach(subject);
      tap(plan.model.name, "model");
    } else {
      $("grid").innerHTML = '<p class="muted">this pipeline has no emotion stream to show</p>';
    }
    if (plan.truth) tap(plan.truth.name, "truth");
    for (const name of plan.markers) tap(name, "markers");
    for (const name of plan.conditions) tap(name, "conditions");
    const others = new Set([...plan.quality, ...plan.features].map((x) => x.name));
    for (const name of others) if (name !== (plan.truth && plan.truth.name)) tap(name, "features");
    showState();
    pollStatus();
  }

  start();
})();
