/* scalecast dashboard: nodes, node pages and autoscaled services, live from
 * the REST API (see docs/dashboard.md). Plain ES2017, no build step; charts
 * by Debian's dygraphs, served by scalecastd under /lib/dygraphs/.
 *
 * Routes (the hash, so the page never reloads):
 *   #/                    overview: services and the nodes table
 *   #/node/NAME[?r=6h]    one node: full charts and its containers
 *   #/service/NAME[?r=6h] one service: replicas, metric vs target and
 *                         thresholds, forecast band, decision timeline
 * Query string of the page: ?poll=SECONDS (default 5, at least 1).
 *
 * window.scalecast exposes the state (charts, polls) for tests and for the
 * curious operator in the browser console. */
(function () {
  'use strict';

  const qs = new URLSearchParams(location.search);
  const POLL_MS = Math.max(1, Number(qs.get('poll')) || 5) * 1000;
  const SLOW_MS = Math.max(POLL_MS, 30000); /* sparklines and forecasts */
  const TOKEN_KEY = 'scalecast.token';
  const RANGES = { '1h': 3600, '6h': 6 * 3600, '24h': 86400 };
  const STEPS = { '1h': 10, '6h': 60, '24h': 300 };
  const PALETTE = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#db2777', '#0891b2',
    '#ca8a04', '#4b5563', '#dc2626', '#0d9488', '#7c3aed', '#65a30d'];
  const C = {
    cpu: '#2563eb', mem: '#9333ea', read: '#0891b2', write: '#ea580c', rx: '#16a34a',
    tx: '#db2777', band: '#f59e0b', target: '#15803d', up: '#dc2626', down: '#2563eb',
    current: '#2563eb', decided: '#ea580c', asked: '#6b7280', now: '#9ca3af'
  };
  const TOUCH = window.matchMedia && window.matchMedia('(pointer: coarse)').matches;

  const SC = (window.scalecast = {
    charts: {}, /* id -> Chart */
    polls: 0, /* completed refreshes of the current view */
    errors: 0,
    lastUpdate: 0, /* Date.now() of the last successful refresh */
    lastError: null,
    route: null,
    pollMs: POLL_MS
  });

  /* ---- small helpers ------------------------------------------------------ */

  const $ = (sel, root) => (root || document).querySelector(sel);

  /* h('div.card', {title: 'x', onclick: fn}, child, 'text', ...) */
  function h(spec, attrs, ...kids) {
    const m = /^([a-z0-9]+)((?:\.[\w-]+)*)(?:#([\w-]+))?$/.exec(spec);
    if (!m) throw new Error('bad element spec ' + spec);
    const el = document.createElement(m[1]);
    if (m[2]) el.className = m[2].slice(1).replace(/\./g, ' ');
    if (m[3]) el.id = m[3];
    if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
      kids.unshift(attrs);
      attrs = null;
    }
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v == null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
      else if (k in el && k !== 'list') el[k] = v;
      else el.setAttribute(k, v);
    }
    append(el, kids);
    return el;
  }

  function append(el, kids) {
    for (const k of kids) {
      if (k == null || k === false) continue;
      if (Array.isArray(k)) append(el, k);
      else el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
  }

  function setText(el, text, title) {
    const t = text == null ? '' : String(text);
    if (el.textContent !== t) el.textContent = t;
    if (title !== undefined && el.title !== (title || '')) el.title = title || '';
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  const isNum = (v) => typeof v === 'number' && isFinite(v);

  /* First of obj's keys that holds a value (the services API's field names
   * are read leniently, so older and newer servers both show). */
  function pick(obj, ...keys) {
    if (!obj) return undefined;
    for (const k of keys) {
      const path = k.split('.');
      let v = obj;
      for (const p of path) v = v != null && typeof v === 'object' ? v[p] : undefined;
      if (v !== undefined && v !== null) return v;
    }
    return undefined;
  }

  /* ---- formatting ------------------------------------------------------------ */

  function fmtNum(v, digits) {
    if (!isNum(v)) return '–';
    const a = Math.abs(v);
    const d = digits != null ? digits : a >= 100 ? 0 : a >= 10 ? 1 : 2;
    return v.toFixed(d);
  }
  const fmtPct = (v) => (isNum(v) ? v.toFixed(1) + '%' : '–');
  function fmtSI(v, unit) {
    if (!isNum(v)) return '–';
    const units = ['', 'k', 'M', 'G', 'T', 'P'];
    let i = 0;
    let x = Math.abs(v);
    while (x >= 1000 && i < units.length - 1) { x /= 1000; i++; }
    const s = x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
    return (v < 0 ? '-' : '') + s + ' ' + units[i] + unit;
  }
  const fmtBps = (v) => fmtSI(v, 'B/s');
  /* "1.02 / 3.21 MB/s" when both share a unit, else "1.02 MB/s / 980 kB/s". */
  function fmtPair(a, b, fmt) {
    const x = fmt(a);
    const y = fmt(b);
    const ux = x.split(' ');
    const uy = y.split(' ');
    if (ux.length === 2 && uy.length === 2 && ux[1] === uy[1]) return ux[0] + ' / ' + y;
    return x + ' / ' + y;
  }
  function fmtBytes(v) {
    if (!isNum(v)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    let x = v;
    while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return (x >= 100 || i === 0 ? x.toFixed(0) : x.toFixed(1)) + ' ' + units[i];
  }
  function fmtAgo(ts) {
    if (!isNum(ts) || ts <= 0) return 'never';
    const s = Date.now() / 1000 - ts;
    if (s < 1.5) return 'just now';
    if (s < 90) return Math.round(s) + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    if (s < 2 * 86400) return Math.round(s / 3600) + ' h ago';
    return new Date(ts * 1000).toLocaleDateString();
  }
  function fmtDur(s) {
    if (!isNum(s)) return '–';
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  function fmtClock(ts) {
    const d = new Date(ts * 1000);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }
  function fmtStamp(ts) {
    const d = new Date(ts * 1000);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + fmtClock(ts);
  }
  /* Values in a metric's own unit ("%" for cpu and mem, as the autoscaler's
   * reasons print them). */
  const metricUnit = (metric) => (/^(cpu|mem|swap|gpu\d+_(util|mem))$/.test(metric || '') ? '%' : '');
  const fmtMetric = (v, metric) => (metricUnit(metric) === '%' ? fmtPct(v) : fmtNum(v));

  const FORMATS = {
    pct: { value: fmtPct, axis: (v) => v.toFixed(0) + '%' },
    Bps: { value: fmtBps, axis: (v) => fmtSI(v, 'B/s').replace(' ', '') },
    iops: { value: (v) => fmtNum(v) + ' /s', axis: (v) => fmtSI(v, '').trim() },
    bytes: { value: fmtBytes, axis: (v) => fmtBytes(v).replace(' ', '') },
    num: { value: (v) => fmtNum(v), axis: (v) => fmtNum(v) },
    int: { value: (v) => (isNum(v) ? String(Math.round(v)) : '–'), axis: (v) => (Number.isInteger(v) ? String(v) : '') }
  };

  /* ---- API ---------------------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, msg, path) {
      super(msg);
      this.status = status;
      this.path = path;
    }
  }

  let tokenWait = null; /* one dialog for every request that met a 401 */

  async function api(path) {
    for (let attempt = 0; ; attempt++) {
      const token = localStorage.getItem(TOKEN_KEY);
      const headers = token ? { Authorization: 'Bearer ' + token } : {};
      let r;
      try {
        r = await fetch(path, { headers, cache: 'no-store' });
      } catch (e) {
        throw new ApiError(0, 'cannot reach scalecastd (' + e.message + ')', path);
      }
      if (r.status === 401 && attempt < 5) {
        await askToken(token ? 'The saved token was refused (401). Enter a valid one.'
          : 'This server needs a read token for its API.', token);
        continue;
      }
      let body = null;
      try {
        body = await r.json();
      } catch (e) {
        /* non-JSON answer: reported below */
      }
      if (!r.ok) {
        throw new ApiError(r.status, (body && body.error) || r.status + ' ' + r.statusText, path);
      }
      if (body == null) throw new ApiError(r.status, 'answer is not JSON', path);
      return body;
    }
  }

  /* Resolves when the user has given a token (stored in localStorage). A
   * refused token that is still the stored one is not asked for twice at
   * once: every waiting request retries with the new one. */
  function askToken(why, refused) {
    const cur = localStorage.getItem(TOKEN_KEY);
    if (cur && cur !== refused) return Promise.resolve(); /* someone just set a new one */
    if (!tokenWait) {
      tokenWait = new Promise((resolve) => {
        const dlg = $('#token-dialog');
        setText($('#token-why'), why);
        $('#token-forget').hidden = !cur;
        dlg.hidden = false;
        $('#token-input').value = '';
        $('#token-input').focus();
        dlg._resolve = () => {
          dlg.hidden = true;
          tokenWait = null;
          resolve();
        };
      });
    }
    return tokenWait;
  }

  function setupTokenDialog() {
    const dlg = $('#token-dialog');
    $('#token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('#token-input').value.trim();
      if (!t) return;
      localStorage.setItem(TOKEN_KEY, t);
      $('#token-btn').hidden = false;
      if (dlg._resolve) dlg._resolve();
      else dlg.hidden = true;
      tick(true);
    });
    $('#token-forget').addEventListener('click', () => {
      localStorage.removeItem(TOKEN_KEY);
      $('#token-btn').hidden = true;
      location.reload();
    });
    $('#token-btn').addEventListener('click', () => {
      setText($('#token-why'), 'Replace the saved token, or forget it.');
      $('#token-forget').hidden = false;
      $('#token-input').value = '';
      dlg.hidden = false;
      $('#token-input').focus();
    });
    dlg.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !dlg._resolve) dlg.hidden = true;
    });
    $('#token-btn').hidden = !localStorage.getItem(TOKEN_KEY);
  }

  /* ---- charts ------------------------------------------------------------------ */

  /* The touch model of dygraphs swallows touch events (no page scrolling
   * over a chart on a phone): there, a tap only highlights the nearest
   * point. */
  const TOUCH_MODEL = {
    mousedown: (event, g, ctx) => ctx.initializeMouseDown(event, g, ctx)
  };

  /* One dygraph plus what dygraphs does not draw itself: confidence bands,
   * horizontal reference lines (target, thresholds, min/max) and a "now"
   * marker, all painted in the underlay. */
  class Chart {
    /* opts: {title, unit: key of FORMATS, spark: bool, height: css class} */
    constructor(id, opts) {
      this.id = id;
      this.opts = opts || {};
      this.fmt = FORMATS[this.opts.unit || 'num'];
      this.g = null;
      this.rows = [];
      this.labels = [];
      this.bands = []; /* {label, color, pts: [[xms, lo, hi], ...]} */
      this.hlines = []; /* {y, label, color, dash} */
      this.last = {}; /* label -> last non-null value */
      this.userZoom = false;
      if (this.opts.spark) {
        this.el = h('div.spark');
        this.root = this.el;
      } else {
        this.el = h('div.chart' + (this.opts.tall ? '.tall' : ''));
        this.legend = h('div.legend');
        this.noteEl = h('p.note', { hidden: true });
        this.root = h('div.chart-card' + (this.opts.wide ? '.wide' : ''),
          h('h3', this.opts.title || ''), this.el, this.legend, this.noteEl);
      }
      SC.charts[id] = this;
    }

    note(text) {
      if (!this.noteEl) return;
      this.noteEl.hidden = !text;
      setText(this.noteEl, text || '');
    }

    /* series: [{label, pts: [[ts_seconds, v], ...], color, step, dash, gapAfter}]
     * extra: {bands, hlines, dateWindow: [ms, ms], now: bool, annotations,
     *         valueRange} */
    set(series, extra) {
      extra = extra || {};
      this.bands = extra.bands || [];
      this.hlines = extra.hlines || [];
      this.showNow = !!extra.now;
      const rows = mergeRows(series);
      this.rows = rows;
      this.labels = ['time'].concat(series.map((s) => s.label));
      this.last = {};
      series.forEach((s, i) => {
        for (let r = rows.length - 1; r >= 0; r--) {
          if (rows[r][i + 1] != null) {
            this.last[s.label] = rows[r][i + 1];
            break;
          }
        }
      });
      if (!rows.length || !window.Dygraph) {
        this.destroyGraph();
        if (!this.placeholder) {
          this.placeholder = h('div.empty', window.Dygraph ? 'no data in this range'
            : 'charts unavailable: /lib/dygraphs/dygraph.min.js did not load (install libjs-dygraphs)');
          this.el.appendChild(this.placeholder);
        }
        return;
      }
      if (this.placeholder) {
        this.placeholder.remove();
        this.placeholder = null;
      }
      const seriesOpts = {};
      series.forEach((s) => {
        seriesOpts[s.label] = {
          stepPlot: !!s.step,
          strokePattern: s.dash ? [5, 4] : null,
          strokeWidth: s.width || (this.opts.spark ? 1.2 : 1.6),
          drawPoints: !!s.points,
          pointSize: 2.5
        };
      });
      const o = {
        file: rows,
        labels: this.labels,
        colors: series.map((s, i) => s.color || PALETTE[i % PALETTE.length]),
        series: seriesOpts,
        valueRange: extra.valueRange || (this.opts.spark ? null : this.autoRange(series)),
        dateWindow: this.userZoom ? undefined : extra.dateWindow || null
      };
      if (this.g) {
        if (this.userZoom) delete o.dateWindow;
        this.g.updateOptions(o);
      } else {
        this.create(o);
      }
      if (extra.annotations) this.g.setAnnotations(extra.annotations);
    }

    /* [0 or below, a little above everything drawn]. With opts.cap (the
     * 100 of a percentage), forecasts may not stretch the axis past the cap
     * or the highest measured value: an extrapolation to 2000% CPU would
     * flatten the history into a line; it is clipped at the top instead. */
    autoRange(series) {
      let hi = 0;
      let lo = 0;
      for (const s of series) {
        if (s.forecast) continue;
        for (const p of s.pts) if (isNum(p[1])) { hi = Math.max(hi, p[1]); lo = Math.min(lo, p[1]); }
      }
      const measured = hi;
      for (const s of series) if (s.forecast) for (const p of s.pts) if (isNum(p[1])) hi = Math.max(hi, p[1]);
      for (const b of this.bands) for (const p of b.pts) if (isNum(p[2])) hi = Math.max(hi, p[2]);
      for (const l of this.hlines) if (isNum(l.y)) hi = Math.max(hi, l.y);
      if (this.opts.cap) {
        const cap = Math.max(this.opts.cap, measured);
        if (hi >= cap * 0.92) return [lo, cap * 1.04];
      }
      if (hi <= lo) hi = lo + 1;
      return [lo, hi * 1.1];
    }

    create(o) {
      const self = this;
      const spark = !!this.opts.spark;
      this.g = new window.Dygraph(this.el, o.file, Object.assign({
        legend: spark ? 'never' : 'always',
        labelsDiv: this.legend || undefined,
        legendFormatter: function (data) { return self.legendHtml(data); },
        axes: {
          x: spark ? { drawAxis: false, drawGrid: false } : { axisLabelWidth: 64, pixelsPerLabel: 70 },
          y: spark ? { drawAxis: false, drawGrid: false }
            : {
              axisLabelWidth: 58,
              axisLabelFormatter: (v) => this.fmt.axis(v),
              valueFormatter: (v) => this.fmt.value(v),
              pixelsPerLabel: 28
            }
        },
        includeZero: true,
        gridLineColor: '#eef0f3',
        axisLineColor: '#d1d5db',
        highlightCircleSize: spark ? 0 : 3,
        rightGap: spark ? 0 : 6,
        xRangePad: 0,
        yRangePad: spark ? 2 : 0,
        showLabelsOnHighlight: !spark,
        interactionModel: spark ? {} : TOUCH ? TOUCH_MODEL : window.Dygraph.defaultInteractionModel,
        zoomCallback: (minX, maxX) => {
          this.userZoom = this.g ? this.g.isZoomed('x') : false;
        },
        underlayCallback: (ctx, area, g) => this.underlay(ctx, area, g),
        annotationClickHandler: this.opts.onAnnotation
          ? (ann) => this.opts.onAnnotation(ann) : undefined
      }, o));
    }

    underlay(ctx, area, g) {
      ctx.save();
      for (const b of this.bands) {
        const pts = b.pts.filter((p) => isNum(p[1]) && isNum(p[2]));
        if (pts.length < 2) continue;
        ctx.beginPath();
        pts.forEach((p, i) => {
          const xy = g.toDomCoords(p[0], p[2]);
          if (i) ctx.lineTo(xy[0], xy[1]);
          else ctx.moveTo(xy[0], xy[1]);
        });
        for (let i = pts.length - 1; i >= 0; i--) {
          const xy = g.toDomCoords(pts[i][0], pts[i][1]);
          ctx.lineTo(xy[0], xy[1]);
        }
        ctx.closePath();
        ctx.globalAlpha = 0.22;
        ctx.fillStyle = b.color;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
      ctx.font = '11px system-ui, sans-serif';
      for (const l of this.hlines) {
        if (!isNum(l.y)) continue;
        const y = Math.round(g.toDomYCoord(l.y)) + 0.5;
        if (y < area.y || y > area.y + area.h) continue;
        ctx.strokeStyle = l.color;
        ctx.lineWidth = 1.2;
        ctx.setLineDash(l.dash ? [6, 4] : []);
        ctx.beginPath();
        ctx.moveTo(area.x, y);
        ctx.lineTo(area.x + area.w, y);
        ctx.stroke();
        ctx.fillStyle = l.color;
        ctx.textAlign = 'left';
        ctx.fillText(l.label, area.x + 4, y - 3);
      }
      if (this.showNow) {
        const x = Math.round(g.toDomXCoord(Date.now())) + 0.5;
        if (x >= area.x && x <= area.x + area.w) {
          ctx.strokeStyle = C.now;
          ctx.setLineDash([3, 3]);
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(x, area.y);
          ctx.lineTo(x, area.y + area.h);
          ctx.stroke();
          ctx.fillStyle = C.now;
          ctx.textAlign = 'right';
          ctx.fillText('now', x - 3, area.y + 11);
        }
      }
      ctx.restore();
    }

    legendHtml(data) {
      const items = [];
      const hl = data.x != null;
      if (hl) items.push('<span class="item"><b>' + esc(fmtStamp(data.x / 1000)) + '</b></span>');
      for (const s of data.series) {
        if (!s.isVisible) continue;
        const dash = this.g && this.g.getOption('strokePattern', s.label) ? ' dash' : '';
        const v = hl ? (s.y != null ? this.fmt.value(s.y) : '–') : this.fmt.value(this.last[s.label]);
        items.push('<span class="item"><span class="sw' + dash + '" style="background:' + s.color +
          ';border-color:' + s.color + '"></span>' + esc(s.label) + ' <b>' + esc(v) + '</b></span>');
      }
      for (const b of this.bands) {
        if (b.label) items.push('<span class="item"><span class="sw band" style="background:' + b.color + '"></span>' + esc(b.label) + '</span>');
      }
      for (const l of this.hlines) {
        items.push('<span class="item"><span class="sw' + (l.dash ? ' dash' : '') + '" style="background:' + l.color +
          ';border-color:' + l.color + '"></span>' + esc(l.label) + '</span>');
      }
      return items.join('');
    }

    destroyGraph() {
      if (this.g) {
        this.g.destroy();
        this.g = null;
        this.userZoom = false;
      }
    }

    destroy() {
      this.destroyGraph();
      if (SC.charts[this.id] === this) delete SC.charts[this.id];
    }

    /* For tests and debugging: what the chart holds and whether it drew. */
    info() {
      const canvases = Array.from(this.el.querySelectorAll('canvas'));
      let inked = 0;
      for (const cv of canvases) {
        if (!cv.width || !cv.height) continue;
        const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) inked++;
      }
      const xs = this.rows.map((r) => r[0].getTime());
      const bandX = [].concat(...this.bands.map((b) => b.pts.map((p) => p[0])));
      return {
        labels: this.labels,
        rows: this.rows.map((r) => [r[0].getTime() / 1000].concat(r.slice(1))),
        last: this.last,
        xmax: Math.max(...xs.concat(bandX)) / 1000,
        bands: this.bands.map((b) => ({ label: b.label, pts: b.pts.map((p) => [p[0] / 1000, p[1], p[2]]) })),
        hlines: this.hlines.map((l) => ({ y: l.y, label: l.label })),
        annotations: this.g ? this.g.annotations().map((a) => ({ x: a.x / 1000, text: a.text, shortText: a.shortText })) : [],
        drawn: !!this.g,
        inkedPixels: inked,
        width: this.el.clientWidth,
        height: this.el.clientHeight
      };
    }
  }

  /* Rows for dygraphs: [Date, v0, v1, ...] over the union of the series'
   * times, with a null row in any gap wider than a series' gapAfter (so a
   * silent node shows as a break in the line, not a slope). */
  function mergeRows(series) {
    const byX = new Map();
    const n = series.length;
    const row = (x) => {
      let r = byX.get(x);
      if (!r) {
        r = new Array(n + 1).fill(null);
        r[0] = x;
        byX.set(x, r);
      }
      return r;
    };
    series.forEach((s, i) => {
      let prev = null;
      for (const p of s.pts) {
        if (!isNum(p[0])) continue;
        const x = Math.round(p[0] * 1000);
        if (s.gapAfter && prev != null && x - prev > s.gapAfter * 1000) row(prev + Math.round(s.gapAfter * 500));
        row(x)[i + 1] = isNum(p[1]) ? p[1] : null;
        prev = x;
      }
    });
    return Array.from(byX.values()).sort((a, b) => a[0] - b[0]).map((r) => { r[0] = new Date(r[0]); return r; });
  }

  /* ---- data shared by views ------------------------------------------------- */

  function seriesUrl(node, metric, container, from, step) {
    const p = new URLSearchParams({ node, metric, from: String(from) });
    if (container) p.set('container', container);
    if (step) p.set('step', String(step));
    return '/api/v1/series?' + p.toString();
  }

  /* Points of one series, or [] when the series does not exist (404). */
  async function points(node, metric, container, from, step) {
    try {
      return (await api(seriesUrl(node, metric, container, from, step))).points || [];
    } catch (e) {
      if (e.status === 404) return [];
      throw e;
    }
  }

  /* Forecast points ahead of a series' last sample: at each horizon, the
   * point forecast and its interval. Returns {pts: [[xms, lo, mid, hi]],
   * model} or {why} when the predictor has too little history. */
  async function forecastBand(node, metric, horizons) {
    const out = { pts: [], model: null, why: null };
    const ask = (hz, model) => {
      const p = new URLSearchParams({ node, metric, horizon: String(hz), model });
      return api('/api/v1/forecast?' + p.toString()).catch((e) => {
        if (e.status === 422 || e.status === 404) return { error: e.message };
        throw e;
      });
    };
    /* auto picks a model for the longest horizon; the shorter ones use the
     * same model, so the band is one forecast's, not a patchwork. */
    const far = Math.max(...horizons);
    const first = await ask(far, 'auto');
    const answers = [first];
    if (!first.error) answers.push(...(await Promise.all(horizons.filter((hz) => hz !== far).map((hz) => ask(hz, first.model)))));
    for (const a of answers) {
      if (a.error) {
        out.why = a.error;
        continue;
      }
      out.model = a.model;
      out.confidence = a.confidence;
      if (!out.pts.length && isNum(a.last_ts)) out.origin = a.last_ts;
      out.pts.push([a.at * 1000, a.lower, a.value, a.upper]);
    }
    out.pts.sort((x, y) => x[0] - y[0]);
    return out;
  }

  /* The services: what /api/v1/services says, completed by the newest
   * decisions (a service with decisions but no longer configured still
   * shows, from its log). Returns [{name, status, last}] sorted by name. */
  async function loadServices() {
    const [svc, dec] = await Promise.all([
      api('/api/v1/services'),
      api('/api/v1/decisions?limit=100')
    ]);
    const by = new Map();
    for (const s of svc.services || []) {
      const name = pick(s, 'service', 'name');
      if (name) by.set(name, { name, status: s, last: null });
    }
    for (const d of dec.decisions || []) {
      let e = by.get(d.service);
      if (!e) by.set(d.service, (e = { name: d.service, status: null, last: null }));
      if (!e.last) e.last = d; /* newest first */
    }
    return Array.from(by.values()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /* One service's figures. From its status in /api/v1/services when the
   * server has one (autoscaler/scaler.h: the forecast there is already per
   * replica, in the metric's unit), else, and for what the status lacks,
   * from its newest logged decision (whose inputs hold the forecast of the
   * load, value x replicas, divided here by the replicas it had). */
  function serviceSummary(e) {
    const s = e.status || {};
    const logged = e.last || {};
    const brief = s.last_decision && typeof s.last_decision === 'object' ? s.last_decision : null;
    /* the newer of the two; the log's entry has every field */
    const d = brief && !(isNum(logged.ts) && logged.ts >= brief.ts) ? brief : logged;
    const inp = logged.inputs || {};
    const current = isNum(s.current_replicas) ? s.current_replicas
      : logged.outcome === 'applied' ? logged.target : logged.current;
    let fc = null;
    if (s.forecast && typeof s.forecast === 'object') {
      const f = s.forecast;
      fc = { peak: f.peak, lower: f.lower, upper: f.upper, horizon: f.horizon, model: f.model };
    } else if (!e.status && inp.forecast && typeof inp.forecast === 'object') {
      const f = inp.forecast;
      const per = logged.current > 0 ? logged.current : 1;
      fc = { peak: f.peak / per, lower: f.peak_lower / per, upper: f.peak_upper / per, horizon: f.horizon, model: f.model };
    }
    const metric = typeof s.metric === 'string' ? s.metric : inp.metric;
    return {
      name: e.name,
      mode: s.mode || logged.mode,
      target: typeof s.target === 'string' ? s.target : typeof inp.target === 'string' ? inp.target : undefined,
      min: s.min_replicas,
      max: s.max_replicas,
      current: isNum(current) ? current : undefined,
      desired: isNum(s.desired_replicas) ? s.desired_replicas : logged.target,
      metric,
      aggregation: s.aggregation || inp.aggregation,
      value: isNum(s.metric_value) ? s.metric_value : inp.value,
      targetValue: pick(s, 'target_value', 'target_utilization') ?? (e.status ? undefined : inp.target_utilization),
      upAbove: pick(s, 'scale_up_above'),
      downBelow: pick(s, 'scale_down_below'),
      tolerance: pick(s, 'tolerance'),
      fcPeak: fc ? fc.peak : undefined,
      fcLower: fc ? fc.lower : undefined,
      fcUpper: fc ? fc.upper : undefined,
      fcHorizon: fc ? fc.horizon : undefined,
      fcModel: fc ? fc.model : undefined,
      fcWhy: s.forecast_why || inp.forecast_why,
      decision: d,
      reason: d.reason,
      error: e.status ? s.last_error : logged.error,
      ts: d.ts
    };
  }

  /* ---- views --------------------------------------------------------------- */

  function rangeBar(base, cur) {
    return h('span.ranges', Object.keys(RANGES).map((r) =>
      h('a', { href: base + (r === '1h' ? '' : '?r=' + r), class: r === cur ? 'on' : null, text: r })));
  }

  function tile(key, value, sub, title) {
    const v = h('div.v', { text: value, title: title || null });
    const s = h('div.s', { text: sub || '' });
    const t = h('div.tile', h('div.k', key), v, s);
    t.set = (val, subText, tt) => {
      setText(v, val, tt);
      setText(s, subText || '');
    };
    return t;
  }

  function badge(text, cls) {
    return h('span.badge', { class: cls || String(text).replace(/[^\w-]/g, '_'), text });
  }

  /* Overview: services (if any) and the nodes table. */
  class OverviewView {
    constructor(root) {
      this.rows = new Map(); /* node -> {tr, cells, spark, sparkAt} */
      this.svcCards = new Map();
      this.summary = h('span.muted.small');
      this.svcSection = h('section', { hidden: true }, h('h2', 'Services'), (this.svcGrid = h('div.svc-grid')));
      this.tbody = h('tbody');
      this.table = h('table.grid#nodes',
        h('thead', h('tr',
          h('th', 'Node'), h('th', 'State'), h('th.r', 'CPU'), h('th.r', 'Memory'),
          h('th.r', 'Disk read / write'), h('th.r', 'Net in / out'), h('th.r', 'Containers'),
          h('th', 'Last seen'), h('th', 'CPU and memory, last hour'))),
        this.tbody);
      this.emptyRow = h('div.empty', { hidden: true },
        'No node has reported yet. Start scalecast-agent with --server pointing here.');
      append(root, [
        this.svcSection,
        h('h2', 'Nodes ', this.summary),
        h('div.table-wrap', this.table, this.emptyRow)
      ]);
      crumbs([]);
    }

    async update() {
      const [nodes, services] = await Promise.all([api('/api/v1/nodes'), loadServices()]);
      this.renderServices(services);
      await this.renderNodes(nodes);
    }

    renderServices(list) {
      this.svcSection.hidden = !list.length;
      const seen = new Set();
      for (const e of list) {
        seen.add(e.name);
        let c = this.svcCards.get(e.name);
        if (!c) {
          c = this.makeCard(e.name);
          this.svcCards.set(e.name, c);
        }
        this.svcGrid.appendChild(c.el); /* keeps name order */
        const s = serviceSummary(e);
        c.mode.replaceChildren(s.mode ? badge(s.mode) : '');
        setText(c.target, s.target || '');
        c.target.hidden = c.targetKey.hidden = !s.target;
        setText(c.replicas, (isNum(s.current) ? s.current : '?') + ' → ' + (isNum(s.desired) ? s.desired : '?') +
          (isNum(s.min) && isNum(s.max) ? '  (min ' + s.min + ', max ' + s.max + ')' : ''));
        setText(c.metric, s.metric ? s.metric + (s.aggregation ? ' ' + s.aggregation : '') + ' ' + fmtMetric(s.value, s.metric) +
          (isNum(s.targetValue) ? ' / target ' + fmtMetric(s.targetValue, s.metric) : '') : '–');
        setText(c.forecast, isNum(s.fcPeak) ? 'peak ' + fmtMetric(s.fcPeak, s.metric) + ' [' + fmtMetric(s.fcLower, s.metric) + ', ' +
          fmtMetric(s.fcUpper, s.metric) + ']' + (isNum(s.fcHorizon) ? ' within ' + fmtDur(s.fcHorizon) : '')
          : s.fcWhy || '–');
        const d = s.decision || {};
        c.last.replaceChildren(d.action ? badge(d.action.replace('_', ' '), d.action) : '', ' ',
          d.outcome && d.outcome !== 'none' ? badge(d.outcome) : '', ' ',
          h('span.muted.small', { text: isNum(s.ts) ? fmtAgo(s.ts) : '' }));
        setText(c.reason, s.reason || '', s.reason || '');
        c.error.hidden = !s.error;
        setText(c.error, s.error ? 'error: ' + s.error : '');
      }
      for (const [name, c] of this.svcCards) {
        if (!seen.has(name)) {
          c.el.remove();
          this.svcCards.delete(name);
        }
      }
    }

    makeCard(name) {
      const c = {
        mode: h('span'), target: h('dd.mono'), targetKey: h('dt', 'Target'), replicas: h('dd.num'), metric: h('dd'),
        forecast: h('dd'), last: h('dd'), reason: h('p.reason'), error: h('p.errtext', { hidden: true })
      };
      c.el = h('div.card.svc-card', { 'data-service': name },
        h('h3', h('a', { href: '#/service/' + encodeURIComponent(name), text: name }), c.mode),
        h('dl', c.targetKey, c.target, h('dt', 'Replicas'), c.replicas, h('dt', 'Metric'), c.metric,
          h('dt', 'Forecast'), c.forecast, h('dt', 'Last decision'), c.last),
        c.reason, c.error);
      return c;
    }

    async renderNodes(doc) {
      const list = doc.nodes || [];
      const staleAfter = doc.stale_after || 60;
      let up = 0;
      const seen = new Set();
      const sparkJobs = [];
      for (const n of list) {
        seen.add(n.node);
        if (n.state === 'up') up++;
        let r = this.rows.get(n.node);
        if (!r) {
          r = this.makeRow(n.node);
          this.rows.set(n.node, r);
        }
        this.tbody.appendChild(r.tr); /* keeps the API's (name) order */
        const m = n.metrics || {};
        r.tr.classList.toggle('stale', n.state !== 'up');
        r.state.replaceChildren(badge(n.state || '?'));
        setText(r.cpu, fmtPct(m.cpu));
        setText(r.mem, fmtPct(m.mem), isNum(m.mem_used_bytes) ? fmtBytes(m.mem_used_bytes) + ' used' : '');
        setText(r.disk, fmtPair(m.disk_read_bps, m.disk_write_bps, fmtBps));
        setText(r.net, fmtPair(m.net_rx_bps, m.net_tx_bps, fmtBps));
        const cs = n.containers || [];
        const live = cs.filter((c) => Date.now() / 1000 - c.last_seen <= staleAfter).length;
        setText(r.containers, live === cs.length ? String(cs.length) : live + ' of ' + cs.length,
          cs.map((c) => c.container).join(', '));
        setText(r.seen, fmtAgo(n.last_seen), fmtStamp(n.last_seen));
        if (!r.sparkAt || Date.now() - r.sparkAt >= SLOW_MS) sparkJobs.push(this.loadSpark(n.node, r));
      }
      for (const [name, r] of this.rows) {
        if (!seen.has(name)) {
          r.tr.remove();
          r.spark.destroy();
          this.rows.delete(name);
        }
      }
      this.emptyRow.hidden = list.length > 0;
      this.table.hidden = list.length === 0;
      setText(this.summary, list.length ? '(' + up + ' up' + (list.length - up ? ', ' + (list.length - up) + ' stale' : '') + ')' : '');
      await Promise.all(sparkJobs);
    }

    makeRow(node) {
      const td = (label, cls) => h('td', { class: cls || null, 'data-label': label });
      const r = {
        state: td('State'), cpu: td('CPU', 'r num'), mem: td('Memory', 'r num'),
        disk: td('Disk read / write', 'r num'), net: td('Net in / out', 'r num'),
        containers: td('Containers', 'r num'), seen: td('Last seen'),
        spark: new Chart('spark/' + node, { spark: true })
      };
      r.link = h('a', { href: '#/node/' + encodeURIComponent(node), text: node });
      r.tr = h('tr', { 'data-node': node },
        h('td.title-cell', r.link), r.state, r.cpu, r.mem, r.disk, r.net, r.containers, r.seen,
        h('td.spark-cell', { 'data-label': 'CPU and memory, last hour' }, r.spark.root));
      return r;
    }

    async loadSpark(node, r) {
      r.sparkAt = Date.now();
      const [cpu, mem] = await Promise.all([points(node, 'cpu', null, -3600, 60), points(node, 'mem', null, -3600, 60)]);
      const now = Date.now();
      r.spark.set([
        { label: 'cpu', pts: cpu, color: C.cpu, gapAfter: 180 },
        { label: 'mem', pts: mem, color: C.mem, gapAfter: 180 }
      ], { dateWindow: [now - 3600e3, now], valueRange: [0, 100] });
      r.spark.root.title = 'last hour: cpu ' + fmtPct(r.spark.last.cpu) + ', mem ' + fmtPct(r.spark.last.mem) + ' (1-min averages)';
    }

    destroy() {
      for (const r of this.rows.values()) r.spark.destroy();
    }
  }

  /* One node: tiles, full charts, containers. */
  class NodeView {
    constructor(root, node, range) {
      this.node = node;
      this.range = RANGES[range] ? range : '1h';
      this.charts = {};
      this.fc = {}; /* metric -> {at, band} */
      this.state = h('span');
      this.seen = h('span.muted.small');
      const base = '#/node/' + encodeURIComponent(node);
      this.tiles = {
        cpu: tile('CPU', '–'), mem: tile('Memory', '–'), swap: tile('Swap', '–'), load: tile('Load 1 / 5 / 15', '–'),
        disk: tile('Disk read / write', '–'), net: tile('Net in / out', '–')
      };
      this.gpuTiles = h('div.contents'); /* its tiles join the grid above */
      this.chartBox = h('div.charts');
      this.ctBody = h('tbody');
      this.ctTable = h('table.grid#containers', h('thead', h('tr', h('th', 'Container'), h('th', 'Service'),
        h('th.r', 'CPU (% of a core)'), h('th.r', 'Memory'), h('th.r', 'Memory used'), h('th', 'Last seen'))), this.ctBody);
      this.ctEmpty = h('div.empty', { hidden: true }, 'No container metrics from this node.');
      this.ctCharts = h('div.charts');
      this.ctNote = h('p.note', { hidden: true });
      append(root, [
        h('div.head', h('h1', node), this.state, this.seen, h('span.spacer'), rangeBar(base, this.range)),
        h('div.tiles', Object.values(this.tiles), this.gpuTiles),
        h('h2', 'Host'),
        this.chartBox,
        h('h2', 'Containers'),
        h('div.table-wrap', this.ctTable, this.ctEmpty),
        h('div', { style: 'height:.8rem' }),
        this.ctCharts,
        this.ctNote
      ]);
      crumbs([['node', null], [node, base]]);
    }

    chart(key, opts) {
      let c = this.charts[key];
      if (!c) {
        c = this.charts[key] = new Chart('node/' + this.node + '/' + key, opts);
        (opts.containers ? this.ctCharts : this.chartBox).appendChild(c.root);
      }
      return c;
    }

    async update() {
      const nodes = await api('/api/v1/nodes');
      const n = (nodes.nodes || []).find((x) => x.node === this.node);
      if (!n) throw new ApiError(404, 'node ' + this.node + ' is unknown to this server', '/api/v1/nodes');
      const m = n.metrics || {};
      this.state.replaceChildren(badge(n.state));
      setText(this.seen, 'last seen ' + fmtAgo(n.last_seen), fmtStamp(n.last_seen));
      this.tiles.cpu.set(fmtPct(m.cpu), isNum(m.load1) ? 'load ' + fmtNum(m.load1) : '');
      this.tiles.mem.set(fmtPct(m.mem), isNum(m.mem_used_bytes) ? fmtBytes(m.mem_used_bytes) + ' used, ' + fmtBytes(m.mem_avail_bytes) + ' available' : '');
      this.tiles.swap.set(fmtPct(m.swap), '');
      this.tiles.load.set([m.load1, m.load5, m.load15].map((v) => fmtNum(v)).join(' / '), '');
      this.tiles.disk.set(fmtPair(m.disk_read_bps, m.disk_write_bps, fmtBps),
        isNum(m.disk_read_iops) ? fmtNum(m.disk_read_iops) + ' / ' + fmtNum(m.disk_write_iops) + ' IOPS' : '');
      this.tiles.net.set(fmtPair(m.net_rx_bps, m.net_tx_bps, fmtBps), '');
      const gpus = Object.keys(m).map((k) => /^gpu(\d+)_util$/.exec(k)).filter(Boolean).map((x) => x[1]);
      this.gpuTiles.replaceChildren(...gpus.map((i) => tile('GPU ' + i, fmtPct(m['gpu' + i + '_util']), 'memory ' + fmtPct(m['gpu' + i + '_mem']))));

      const span = RANGES[this.range];
      const step = STEPS[this.range];
      const from = -span;
      const has = (k) => k in m;
      const wanted = ['cpu', 'mem', 'disk_read_bps', 'disk_write_bps', 'net_rx_bps', 'net_tx_bps', 'disk_read_iops',
        'disk_write_iops', 'load1', 'load5', 'load15'].concat(...gpus.map((i) => ['gpu' + i + '_util', 'gpu' + i + '_mem'])).filter(has);
      const got = {};
      await Promise.all(wanted.map(async (k) => { got[k] = await points(this.node, k, null, from, step); }));
      const fcJobs = ['cpu', 'mem'].filter(has).map((k) => this.refreshForecast(k));
      await Promise.all(fcJobs);
      const now = Date.now();
      const gap = step * 3;
      const fcEnd = Math.max(now, ...['cpu', 'mem'].map((k) => (this.fc[k] && this.fc[k].pts.length ? this.fc[k].pts[this.fc[k].pts.length - 1][0] : 0)));
      const win = [now - span * 1000, now];
      const fwin = [win[0], fcEnd + (fcEnd > now ? 10e3 : 0)];
      const S = (label, key, color, o) => Object.assign({ label, pts: got[key] || [], color, gapAfter: gap }, o || {});
      for (const k of ['cpu', 'mem']) {
        if (!has(k)) continue;
        const f = this.fc[k];
        const ex = { dateWindow: win, now: true, bands: [] };
        const series = [S(k, k, C[k])];
        if (f && f.pts.length) {
          const last = (got[k] || []).slice(-1)[0];
          const start = last ? [[last[0] * 1000, last[1], last[1], last[1]]] : [];
          const pts = start.concat(f.pts);
          ex.bands.push({ label: Math.round((f.confidence || 0.9) * 100) + '% interval', color: C.band, pts: pts.map((p) => [p[0], p[1], p[3]]) });
          series.push({ label: 'forecast (' + f.model + ')', pts: pts.map((p) => [p[0] / 1000, p[2]]), color: C.band, dash: true, forecast: true });
        }
        const c = this.chart(k, { title: k === 'cpu' ? 'CPU busy (% of all CPUs)' : 'Memory used (%)', unit: 'pct', cap: 100 });
        c.set(series, Object.assign(ex, { dateWindow: fwin }));
        c.note(f && f.why && !f.pts.length ? 'forecast: ' + f.why : '');
      }
      if (has('disk_read_bps') || has('disk_write_bps')) {
        this.chart('disk', { title: 'Disk throughput', unit: 'Bps' }).set([S('read', 'disk_read_bps', C.read), S('write', 'disk_write_bps', C.write)], { dateWindow: win, now: true });
      }
      if (has('net_rx_bps') || has('net_tx_bps')) {
        this.chart('net', { title: 'Network', unit: 'Bps' }).set([S('in', 'net_rx_bps', C.rx), S('out', 'net_tx_bps', C.tx)], { dateWindow: win, now: true });
      }
      if (has('disk_read_iops') || has('disk_write_iops')) {
        this.chart('iops', { title: 'Disk operations (per second)', unit: 'iops' }).set([S('read', 'disk_read_iops', C.read), S('write', 'disk_write_iops', C.write)], { dateWindow: win, now: true });
      }
      if (has('load1')) {
        this.chart('load', { title: 'Load average', unit: 'num' }).set([S('1 min', 'load1', PALETTE[0]), S('5 min', 'load5', PALETTE[1]), S('15 min', 'load15', PALETTE[2])], { dateWindow: win, now: true });
      }
      if (gpus.length) {
        this.chart('gpu', { title: 'GPUs (%)', unit: 'pct', cap: 100 }).set([].concat(...gpus.map((i, j) => [
          S('gpu' + i + ' util', 'gpu' + i + '_util', PALETTE[(2 * j) % PALETTE.length]),
          S('gpu' + i + ' mem', 'gpu' + i + '_mem', PALETTE[(2 * j + 1) % PALETTE.length], { dash: true })])), { dateWindow: win, now: true });
      }
      await this.renderContainers(n, nodes.stale_after || 60, from, step, win);
    }

    async refreshForecast(metric) {
      const f = this.fc[metric];
      if (f && Date.now() - f.at < SLOW_MS) return;
      const band = await forecastBand(this.node, metric, [60, 150, 300, 600]);
      band.at = Date.now();
      this.fc[metric] = band;
    }

    async renderContainers(n, staleAfter, from, step, win) {
      const cs = (n.containers || []).slice();
      this.ctEmpty.hidden = cs.length > 0;
      this.ctTable.hidden = !cs.length;
      const rows = cs.map((c) => {
        const m = c.metrics || {};
        const stale = Date.now() / 1000 - c.last_seen > staleAfter;
        const td = (label, text, cls, title) => h('td', { class: cls || null, 'data-label': label, text, title: title || null });
        return h('tr', { class: stale ? 'stale' : null, 'data-container': c.container },
          h('td.title-cell', h('span.mono', c.container), stale ? badge('stale') : ''),
          td('Service', c.service || '–'), td('CPU (% of a core)', fmtPct(m.cpu), 'r num'),
          td('Memory', fmtPct(m.mem), 'r num'), td('Memory used', fmtBytes(m.mem_bytes), 'r num'),
          td('Last seen', fmtAgo(c.last_seen), null, fmtStamp(c.last_seen)));
      });
      this.ctBody.replaceChildren(...rows);
      /* Charts of the busiest containers (by CPU now): one line each. */
      const LIMIT = 12;
      const top = cs.filter((c) => Date.now() / 1000 - c.last_seen <= Math.max(staleAfter, RANGES[this.range]))
        .sort((a, b) => ((b.metrics || {}).cpu || 0) - ((a.metrics || {}).cpu || 0)).slice(0, LIMIT);
      this.ctNote.hidden = cs.length <= LIMIT;
      setText(this.ctNote, 'Charts show the ' + LIMIT + ' busiest of ' + cs.length + ' containers.');
      if (!top.length) {
        for (const k of ['ct_cpu', 'ct_mem']) if (this.charts[k]) { this.charts[k].destroy(); this.charts[k].root.remove(); delete this.charts[k]; }
        return;
      }
      const data = await Promise.all(top.map(async (c) => ({
        c,
        cpu: await points(this.node, 'cpu', c.container, from, step),
        mem: await points(this.node, 'mem', c.container, from, step)
      })));
      const gap = step * 3;
      this.chart('ct_cpu', { title: 'Container CPU (% of one core)', unit: 'pct', containers: true })
        .set(data.map((d, i) => ({ label: d.c.container, pts: d.cpu, color: PALETTE[i % PALETTE.length], gapAfter: gap })), { dateWindow: win, now: true });
      this.chart('ct_mem', { title: 'Container memory (% of limit or host)', unit: 'pct', containers: true })
        .set(data.map((d, i) => ({ label: d.c.container, pts: d.mem, color: PALETTE[i % PALETTE.length], gapAfter: gap })), { dateWindow: win, now: true });
    }

    destroy() {
      for (const c of Object.values(this.charts)) c.destroy();
    }
  }

  /* One autoscaled service: replicas over time, its metric against target
   * and thresholds with the forecast band ahead of now, and the decision
   * timeline. The history comes from the decision log; the live figures
   * from /api/v1/services when it knows the service. */
  class ServiceView {
    constructor(root, name, range) {
      this.name = name;
      this.range = RANGES[range] ? range : '1h';
      this.decisions = new Map(); /* id -> decision, the range's log */
      this.newest = 0;
      this.open = new Set(); /* ids whose details the user opened */
      const base = '#/service/' + encodeURIComponent(name);
      this.mode = h('span');
      this.target = h('span.mono.muted');
      this.tiles = {
        replicas: tile('Replicas now', '–'), desired: tile('Desired', '–'), metric: tile('Metric', '–'),
        forecast: tile('Forecast peak (per replica)', '–'), last: tile('Last decision', '–')
      };
      this.err = h('div.banner', { hidden: true, style: 'margin:.6rem 0 0' });
      this.replChart = new Chart('service/' + name + '/replicas', {
        title: 'Replicas', unit: 'int', onAnnotation: (a) => this.reveal(a.decisionId)
      });
      this.metricChart = new Chart('service/' + name + '/metric', { title: 'Metric', unit: 'num' });
      this.metricTitle = $('h3', this.metricChart.root);
      this.onlyChanges = h('input', { type: 'checkbox', onchange: () => this.renderTimeline() });
      this.timeline = h('ul.timeline#timeline');
      this.tlNote = h('p.note');
      append(root, [
        h('div.head', h('h1', name), this.mode, this.target, h('span.spacer'), rangeBar(base, this.range)),
        h('div.tiles', Object.values(this.tiles)),
        this.err,
        h('div.charts', { style: 'margin-top:.8rem' }, this.metricChart.root, this.replChart.root),
        h('div.head', h('h2', { style: 'margin:0' }, 'Decisions'), h('span.spacer'),
          h('label.timeline-tools', this.onlyChanges, 'changes and errors only')),
        this.timeline,
        this.tlNote
      ]);
      crumbs([['service', null], [name, base]]);
    }

    async update() {
      const span = RANGES[this.range];
      const from = this.newest ? this.newest : -span;
      const p = new URLSearchParams({ service: this.name, from: String(from), limit: '20000' });
      const [svc, dec] = await Promise.all([api('/api/v1/services'), api('/api/v1/decisions?' + p.toString())]);
      for (const d of dec.decisions || []) {
        this.decisions.set(d.id, d);
        if (d.ts > this.newest) this.newest = d.ts;
      }
      const cut = Date.now() / 1000 - span;
      for (const [id, d] of this.decisions) if (d.ts < cut) this.decisions.delete(id);
      const list = Array.from(this.decisions.values()).sort((a, b) => a.ts - b.ts || a.id - b.id);
      const status = (svc.services || []).find((s) => pick(s, 'service', 'name') === this.name) || null;
      if (!status && !list.length) {
        throw new ApiError(404, 'service ' + this.name + ' is not configured and has no decisions in the last ' + this.range, '/api/v1/services');
      }
      const s = serviceSummary({ name: this.name, status, last: list[list.length - 1] || null });
      this.summary = s;
      this.mode.replaceChildren(s.mode ? badge(s.mode) : '');
      setText(this.target, s.target || '');
      this.tiles.replicas.set(isNum(s.current) ? String(s.current) : '–', isNum(s.min) ? 'min ' + s.min + ', max ' + s.max : '');
      this.tiles.desired.set(isNum(s.desired) ? String(s.desired) : '–', s.decision && isNum(s.decision.desired) && s.decision.desired !== s.desired ? 'rules asked ' + s.decision.desired : '');
      this.tiles.metric.set(fmtMetric(s.value, s.metric), (s.metric || '') + ' ' + (s.aggregation || '') + (isNum(s.targetValue) ? ', target ' + fmtMetric(s.targetValue, s.metric) : ''));
      this.tiles.forecast.set(isNum(s.fcPeak) ? fmtMetric(s.fcPeak, s.metric) : '–',
        isNum(s.fcPeak) ? '[' + fmtMetric(s.fcLower, s.metric) + ', ' + fmtMetric(s.fcUpper, s.metric) + '] within ' + fmtDur(s.fcHorizon) : s.fcWhy || '', s.fcModel ? 'model ' + s.fcModel : '');
      this.tiles.last.set(s.decision && s.decision.action ? s.decision.action.replace('_', ' ') : '–', isNum(s.ts) ? fmtAgo(s.ts) : '');
      this.err.hidden = !s.error;
      setText(this.err, s.error ? 'Last error: ' + s.error : '');
      this.renderCharts(list, s, span);
      this.renderTimeline();
    }

    renderCharts(list, s, span) {
      const now = Date.now();
      const unit = metricUnit(s.metric) === '%' ? 'pct' : 'num';
      /* Replicas: what the service had, what was decided, what the rules asked. */
      const cur = list.map((d) => [d.ts, d.current]);
      const dec = list.map((d) => [d.ts, d.target]);
      const asked = list.map((d) => [d.ts, d.desired]);
      if (list.length) {
        /* carry the lines on to now */
        const last = list[list.length - 1];
        const t = now / 1000;
        if (t > last.ts) {
          cur.push([t, isNum(s.current) ? s.current : last.outcome === 'applied' ? last.target : last.current]);
          dec.push([t, last.target]);
          asked.push([t, last.desired]);
        }
      }
      const hl = [];
      if (isNum(s.max)) hl.push({ y: s.max, label: 'max ' + s.max, color: '#9ca3af', dash: true });
      if (isNum(s.min)) hl.push({ y: s.min, label: 'min ' + s.min, color: '#9ca3af', dash: true });
      const ann = list.filter((d) => d.action !== 'hold' || d.outcome === 'failed').map((d) => ({
        series: 'decided',
        x: Math.round(d.ts * 1000),
        shortText: d.outcome === 'failed' ? '!' : d.action === 'scale_up' ? '↑' : d.action === 'scale_down' ? '↓' : '•',
        text: fmtClock(d.ts) + ' ' + d.action + ' ' + d.current + ' → ' + d.target + ' (' + d.outcome + '): ' + d.reason +
          (d.error ? '\nerror: ' + d.error : ''),
        cssClass: 'scale-mark ' + (d.outcome === 'failed' ? 'fail' : d.action === 'scale_up' ? 'up' : 'down'),
        width: 16,
        height: 16,
        tickHeight: 4,
        decisionId: d.id
      }));
      const win = [now - span * 1000, now];
      /* Metric: the aggregate the autoscaler saw, the forecast of the peak
       * over the lead time plotted at the end of that lead time (so the
       * newest forecasts lie ahead of now), per replica. */
      const val = list.map((d) => [d.ts, d.inputs ? d.inputs.value : null]);
      const band = [];
      const mid = [];
      for (const d of list) {
        const f = d.inputs && d.inputs.forecast;
        if (!f || !isNum(f.peak_upper)) continue;
        const per = d.current > 0 ? d.current : 1;
        const x = (isNum(f.origin) ? Math.max(f.origin, d.ts) : d.ts) + (f.horizon || 0);
        band.push([x * 1000, f.peak_lower / per, f.peak_upper / per]);
        mid.push([x, f.peak / per]);
      }
      band.sort((a, b) => a[0] - b[0]);
      mid.sort((a, b) => a[0] - b[0]);
      const end = Math.max(now, band.length ? band[band.length - 1][0] : 0);
      const mwin = [win[0], end + (end > now ? 10e3 : 0)];
      const lines = [];
      if (isNum(s.targetValue)) lines.push({ y: s.targetValue, label: 'target ' + fmtMetric(s.targetValue, s.metric), color: C.target });
      if (isNum(s.upAbove)) lines.push({ y: s.upAbove, label: 'scale up above ' + fmtMetric(s.upAbove, s.metric), color: C.up, dash: true });
      if (isNum(s.downBelow)) lines.push({ y: s.downBelow, label: 'scale down below ' + fmtMetric(s.downBelow, s.metric), color: C.down, dash: true });
      const bands = band.length ? [{ label: 'forecast interval', color: C.band, pts: band }] : [];
      if (isNum(s.targetValue) && isNum(s.tolerance) && s.tolerance > 0) {
        /* the HPA rule's dead band: no change while the value stays inside */
        bands.unshift({ label: 'tolerance', color: '#86efac', pts: [[win[0], s.targetValue * (1 - s.tolerance), s.targetValue * (1 + s.tolerance)], [mwin[1], s.targetValue * (1 - s.tolerance), s.targetValue * (1 + s.tolerance)]] });
      }
      this.replChart.set([
        { label: 'current', pts: cur, color: C.current, step: true, width: 2 },
        { label: 'decided', pts: dec, color: C.decided, step: true },
        { label: 'rules asked', pts: asked, color: C.asked, step: true, dash: true }
      ], { dateWindow: mwin, now: true, hlines: hl, annotations: ann });
      this.metricChart.fmt = FORMATS[unit];
      setText(this.metricTitle, (s.metric || 'metric') + (s.aggregation ? ' (' + s.aggregation + ' per replica)' : '') + ' vs target' +
        (bands.length ? ', with the forecast peak ahead' : ''));
      this.metricChart.set([
        { label: s.metric || 'value', pts: val, color: C.cpu, width: 2 },
        { label: 'forecast peak', pts: mid, color: C.band, dash: true, forecast: true }
      ], { dateWindow: mwin, now: true, hlines: lines, bands });
      this.metricChart.note(!band.length && s.fcWhy ? 'forecast: ' + s.fcWhy : '');
    }

    renderTimeline() {
      const all = Array.from(this.decisions.values()).sort((a, b) => b.ts - a.ts || b.id - a.id);
      const only = this.onlyChanges.checked;
      const shown = all.filter((d) => !only || d.action !== 'hold' || d.outcome === 'failed' || d.error);
      const MAX = 200;
      const items = shown.slice(0, MAX).map((d) => this.item(d));
      this.timeline.replaceChildren(...items);
      if (!items.length) this.timeline.appendChild(h('li', h('div.empty', 'No decision in this range.')));
      setText(this.tlNote, shown.length > MAX ? 'Showing the newest ' + MAX + ' of ' + shown.length + ' decisions in the last ' + this.range + ' (all of them: /api/v1/decisions.csv).' : shown.length + ' decisions in the last ' + this.range + '.');
    }

    item(d) {
      const inputs = d.inputs && typeof d.inputs === 'object' ? d.inputs : null;
      const details = h('details', { 'data-id': d.id, open: this.open.has(d.id) },
        h('summary', { title: d.reason || '' },
          h('span.when.num', { text: fmtClock(d.ts), title: fmtStamp(d.ts) }),
          h('span', badge(d.action.replace('_', ' '), d.action)),
          h('span.repl.num', d.current + ' → ' + d.target),
          h('span.outcome', d.outcome && d.outcome !== 'none' ? badge(d.outcome) : ''),
          h('span.short', { text: d.reason || '' })),
        h('div.full',
          h('p.reason', { text: d.reason || '(no reason recorded)' }),
          d.error ? h('p.errtext', { text: 'error: ' + d.error }) : null,
          h('p.muted.small', { text: fmtStamp(d.ts) + ' · mode ' + (d.mode || '–') + ' · rules asked ' + d.desired + ', decided ' + d.target }),
          inputs ? h('div.inputs', Object.keys(inputs).filter((k) => k !== 'forecast').map((k) =>
            h('span', k + ' ', h('b', { text: fmtInput(inputs[k]) })))) : null,
          inputs && inputs.forecast ? h('div.inputs', Object.keys(inputs.forecast).map((k) =>
            h('span', 'forecast ' + k + ' ', h('b', { text: k === 'origin' || k === 'peak_at' ? fmtClock(inputs.forecast[k]) : fmtInput(inputs.forecast[k]) })))) : null));
      details.addEventListener('toggle', () => {
        if (details.open) this.open.add(d.id);
        else this.open.delete(d.id);
      });
      return h('li', details);
    }

    reveal(id) {
      const el = this.timeline.querySelector('details[data-id="' + id + '"]');
      if (!el) return;
      el.open = true;
      this.open.add(id);
      el.scrollIntoView({ block: 'center', behavior: 'smooth' });
    }

    destroy() {
      this.replChart.destroy();
      this.metricChart.destroy();
    }
  }

  function fmtInput(v) {
    if (v == null) return '–';
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(+v.toPrecision(4));
    return String(v);
  }

  /* ---- routing, polling, status ------------------------------------------------ */

  function crumbs(parts) {
    const nav = $('#crumbs');
    nav.replaceChildren();
    for (const [label, href] of parts) {
      nav.appendChild(h('span', '/'));
      nav.appendChild(href ? h('b', h('a', { href, text: label })) : h('span', { text: label }));
    }
  }

  function parseRoute() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [path, query] = hash.split('?');
    const r = new URLSearchParams(query || '').get('r') || '1h';
    const parts = path.split('/').map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
    if (parts[0] === 'node' && parts[1]) return { name: 'node', arg: parts[1], range: r };
    if (parts[0] === 'service' && parts[1]) return { name: 'service', arg: parts[1], range: r };
    return { name: 'overview' };
  }

  let view = null;
  let busy = false;
  let again = false;

  function route() {
    if (view && view.destroy) view.destroy();
    const root = $('#view');
    root.replaceChildren();
    const r = parseRoute();
    SC.route = r;
    SC.polls = 0;
    document.body.dataset.view = r.name;
    delete document.body.dataset.ready;
    view = r.name === 'node' ? new NodeView(root, r.arg, r.range)
      : r.name === 'service' ? new ServiceView(root, r.arg, r.range) : new OverviewView(root);
    window.scrollTo(0, 0);
    tick(true);
  }

  async function tick(force) {
    if (busy) {
      again = again || !!force;
      return;
    }
    if (document.hidden && !force) return;
    busy = true;
    const v = view;
    try {
      await v.update();
      if (v === view) {
        SC.lastUpdate = Date.now();
        SC.lastError = null;
        SC.polls++;
        document.body.dataset.ready = '1';
        setLive(true);
      }
    } catch (e) {
      if (v === view) {
        SC.errors++;
        SC.lastError = e.message;
        setLive(false, e);
        if (window.console) console.warn('scalecast: ' + (e.path || '') + ': ' + e.message);
      }
    } finally {
      busy = false;
      if (again) {
        again = false;
        tick(true);
      }
    }
  }

  function setLive(ok, err) {
    const live = $('#live');
    live.classList.toggle('ok', ok);
    live.classList.toggle('err', !ok);
    setText($('#live-text'), ok ? 'live · ' + fmtClock(Date.now() / 1000) : 'error');
    live.title = ok ? 'refreshed every ' + POLL_MS / 1000 + ' s' : err.message;
    const b = $('#banner');
    const msg = !ok ? (err.status === 0 ? 'Cannot reach scalecastd: ' : (err.path ? err.path.split('?')[0] + ': ' : '')) + err.message +
        ' — retrying every ' + POLL_MS / 1000 + ' s.'
      : window.Dygraph ? '' : LIB_MISSING;
    b.hidden = !msg;
    setText(b, msg);
  }

  const LIB_MISSING = 'The charting library did not load from /lib/dygraphs/ (Debian package libjs-dygraphs): tables only.';

  function start() {
    setupTokenDialog();
    setText($('#poll-secs'), String(POLL_MS / 1000));
    if (!window.Dygraph) {
      $('#banner').hidden = false;
      setText($('#banner'), LIB_MISSING);
    }
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(true); });
    setInterval(() => tick(false), POLL_MS);
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
