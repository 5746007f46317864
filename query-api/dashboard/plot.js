// The multi-lead plot: one stacked canvas track per lead on a shared time
// axis. Each range is fetched from /samples with max_points = the track's
// width in CSS pixels, so the API sends about one min/max bucket per pixel
// column and every peak survives the downsampling. Dragging across the
// tracks zooms into that range and refetches it at full resolution for the
// new width; "Reset zoom" goes back to the whole ECG. The beats of the same
// range come with the samples (beats.js): markers on each track, and the
// heart-rate trend of one lead (the ECG's heart_rate_lead) under the axis,
// so both follow every zoom and every refresh.
//
// For tests and scripts: #plot carries data-state (loading|ready|error),
// data-from-s / data-to-s (the range shown), data-bucket-samples and
// data-fetches (completed fetches); each track carries data-lead,
// data-points (buckets drawn) and data-top / data-bottom (its scale's labels);
// beats.js lists the beats' hooks.

import * as api from './api.js';
import { $, h, at, num, eng, niceStep, fitCanvas, colors } from './format.js';
import { beatsIn, drawHeartRate, drawMarkers, markerMax, trendMax } from './beats.js';

const LEFT = 52; // px for the lead name and the value scale
const RIGHT = 6;
const MIN_ZOOM_PX = 5; // a shorter drag is a click, not a zoom
const MAX_POINTS = 20000; // the API's limit per lead

export class Plot {
  /** ecg: {id, leads, started_at, sample_rate_hz}; fullS: the ECG's duration in seconds. */
  constructor(ecg, fullS) {
    this.ecg = ecg;
    this.full = [0, Math.max(fullS, 1 / ecg.sample_rate_hz)];
    this.range = null; // the range shown; null = the whole ECG
    this.data = null;
    this.seq = 0; // answers to older requests are dropped
    this.trackHeight = ecg.leads.length > 6 ? 56 : 96;
    this.trendLead = ecg.leads[0]; // until the insights name the ECG's heart_rate_lead
    this.heartRate = $('heart-rate');
    this.root = $('plot');
    this.root.dataset.fetches = '0';
    this.tracks = $('tracks');
    this.selection = $('selection');
    this.tracks.replaceChildren(this.selection);
    this.canvases = new Map();
    for (const lead of ecg.leads) {
      const canvas = h('canvas', { 'aria-label': `lead ${lead}` });
      this.tracks.append(h('div', { class: 'track', dataset: { lead, points: '0' } }, canvas));
      this.canvases.set(lead, canvas);
    }
    this.listen();
  }

  /** The shown range: the zoomed one or the whole ECG. */
  shown() {
    return this.range || this.full;
  }

  /** A longer ECG (still receiving): refetch unless zoomed in. */
  setFull(fullS) {
    if (fullS <= this.full[1]) return;
    this.full = [0, fullS];
    if (!this.range) this.load();
  }

  zoom(fromS, toS) {
    const minSpan = 4 / this.ecg.sample_rate_hz;
    const from = Math.max(this.full[0], Math.min(fromS, toS));
    const to = Math.min(this.full[1], Math.max(fromS, toS, from + minSpan));
    this.range = [from, to];
    return this.load();
  }

  reset() {
    this.range = null;
    return this.load();
  }

  /** The lead whose heart rate the trend shows. */
  setTrendLead(lead) {
    if (!lead || lead === this.trendLead) return;
    this.trendLead = lead;
    if (!this.data) return; // the load in flight sees the change
    // Its beats were fetched for markers only, cut short at their cap.
    if (this.data.beats.get(lead)?.more) this.load();
    else this.drawTrend();
  }

  width() {
    return Math.max(2, Math.round(this.tracks.clientWidth - LEFT - RIGHT));
  }

  async load() {
    const seq = ++this.seq;
    const [fromS, toS] = this.shown();
    const trendLead = this.trendLead;
    this.root.dataset.state = 'loading';
    try {
      const [data, beats] = await Promise.all([
        api.get(`/v1/ecgs/${this.ecg.id}/samples`, {
          from: at(this.ecg.started_at, fromS),
          to: at(this.ecg.started_at, toS),
          max_points: Math.min(MAX_POINTS, this.width()),
        }),
        this.loadBeats(fromS, toS, trendLead),
      ]);
      if (seq !== this.seq) return;
      // The trend's lead changed meanwhile, and its beats were fetched for
      // markers only, cut short at their cap: fetch its whole range.
      if (trendLead !== this.trendLead && beats.get(this.trendLead)?.more) return this.load();
      this.data = { fromS, toS, body: data, beats };
      this.draw();
      $('plot-error').textContent = '';
      this.root.dataset.fetches = String(Number(this.root.dataset.fetches) + 1);
      this.root.dataset.state = 'ready';
    } catch (e) {
      if (seq !== this.seq) return;
      $('plot-error').textContent = e.message;
      this.root.dataset.state = 'error';
    }
  }

  /**
   * Each lead's beats in fromS..toS (a Map of lead to {items, more} or
   * {error}): as many as its markers can show, more for the trend's lead.
   * A lead whose beats fail to load is shown without them.
   */
  async loadBeats(fromS, toS, trendLead) {
    const cap = markerMax(this.width());
    const all = await Promise.all(
      this.ecg.leads.map((lead) =>
        beatsIn(this.ecg, lead, fromS, toS, lead === trendLead ? Math.max(cap, trendMax) : cap).catch((e) => ({
          items: [],
          more: false,
          error: e.message,
        })),
      ),
    );
    return new Map(this.ecg.leads.map((lead, i) => [lead, all[i]]));
  }

  draw() {
    if (!this.data) return;
    const { fromS, toS, body, beats } = this.data;
    const byLead = new Map(body.leads.map((l) => [l.lead, l]));
    const cap = markerMax(this.width());
    let dense = 0; // leads with too many beats in range for markers
    for (const [lead, canvas] of this.canvases) {
      const series = byLead.get(lead) || { t_s: [], min: [], max: [] };
      const b = beats.get(lead);
      const marked = b && !b.more && b.items.length <= cap ? b.items.map((x) => x.t_s) : [];
      if (b && !b.error && !marked.length && b.items.length) dense++;
      const xs = drawTrack(canvas, this.trackHeight, lead, series, fromS, toS, body.units, marked);
      Object.assign(canvas.parentElement.dataset, {
        points: String(series.t_s.length),
        beats: String(xs.length),
        beatX: xs.map((x) => x.toFixed(2)).join(' '),
      });
    }
    this.drawAxis(fromS, toS);
    this.drawTrend();
    Object.assign(this.root.dataset, {
      fromS: String(fromS),
      toS: String(toS),
      bucketSamples: String(body.bucket_samples),
    });
    const per = body.bucket_samples === 1 ? 'every sample' : `min/max of ${num(body.bucket_samples)} samples per point`;
    const zoomIn = dense ? `; beat markers: zoom in (over ${num(cap)} beats)` : '';
    $('plot-range').textContent = `${num(fromS, 3)} s – ${num(toS, 3)} s, ${per}${zoomIn}`;
  }

  drawTrend() {
    const { fromS, toS, beats } = this.data;
    const b = beats.get(this.trendLead) || { items: [], more: false };
    drawHeartRate(this.heartRate, { lead: this.trendLead, ...b }, fromS, toS, LEFT, RIGHT);
  }

  drawAxis(fromS, toS) {
    const axis = $('axis');
    const span = toS - fromS;
    const w = this.width();
    const step = niceStep(span / Math.max(1, w / 90));
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    const ticks = [];
    for (let t = Math.ceil(fromS / step) * step; t <= toS + step * 1e-6; t += step) {
      const tick = h('span', { class: 'tick' }, `${num(t, digits)} s`);
      tick.style.left = `${LEFT + ((t - fromS) / span) * w}px`;
      ticks.push(tick);
    }
    axis.replaceChildren(...ticks);
  }

  /** Drag to zoom: pointer events on the tracks, the selection drawn as an overlay. */
  listen() {
    let startX = null;
    const toSeconds = (clientX) => {
      const box = this.tracks.getBoundingClientRect();
      const [fromS, toS] = this.data ? [this.data.fromS, this.data.toS] : this.shown();
      const f = (clientX - box.left - LEFT) / this.width();
      return fromS + Math.min(1, Math.max(0, f)) * (toS - fromS);
    };
    const paint = (x0, x1) => {
      const box = this.tracks.getBoundingClientRect();
      const left = Math.max(LEFT, Math.min(x0, x1) - box.left);
      const right = Math.min(LEFT + this.width(), Math.max(x0, x1) - box.left);
      this.selection.style.left = `${left}px`;
      this.selection.style.width = `${Math.max(0, right - left)}px`;
      this.selection.hidden = false;
    };
    this.tracks.addEventListener('pointerdown', (e) => {
      startX = e.clientX;
      this.tracks.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    this.tracks.addEventListener('pointermove', (e) => {
      if (startX !== null) paint(startX, e.clientX);
    });
    this.tracks.addEventListener('pointerup', (e) => {
      if (startX === null) return;
      const x0 = startX;
      startX = null;
      this.selection.hidden = true;
      if (Math.abs(e.clientX - x0) >= MIN_ZOOM_PX) this.zoom(toSeconds(x0), toSeconds(e.clientX));
    });
    this.onResize = () => this.draw();
    window.addEventListener('resize', this.onResize);
  }

  destroy() {
    this.seq++;
    window.removeEventListener('resize', this.onResize);
  }
}

/**
 * The vertical scale of a track: the buckets' min and max, with zero always
 * in view (the crossings are about it). Values are divided by the largest
 * magnitude first, so the arithmetic happens on numbers in [-1, 1]: a span of
 * ±1.8e308 would overflow to Infinity, and one of subnormals (5e-324) is too
 * small for a fixed threshold to tell from flat. y() maps a value to the
 * fraction of the height from the top, 0..1 between the padded extremes.
 */
function scale(mins, maxs) {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < mins.length; i++) {
    lo = Math.min(lo, mins[i]);
    hi = Math.max(hi, maxs[i]);
  }
  const big = Math.max(-lo, hi);
  if (!(big > 0)) {
    // All zero (or no data): zero in the middle.
    return { lo, hi, y: () => 0.5 };
  }
  // Zero is in [lo, hi], so the normalised span is between 1 and 2.
  const top = hi / big;
  const span = top - lo / big;
  const pad = span * 0.06;
  return { lo, hi, y: (v) => (top + pad - v / big) / (span + 2 * pad) };
}

/** Draws one lead's track, with a marker at each of `beats` (times, s); returns the markers' x. */
function drawTrack(canvas, height, lead, s, fromS, toS, units, beats) {
  const { ctx, width } = fitCanvas(canvas, height);
  ctx.clearRect(0, 0, width, height);
  const w = width - LEFT - RIGHT;
  const { lo, hi, y: fraction } = scale(s.min, s.max);
  const y = (v) => 4 + fraction(v) * (height - 8);
  const x = (t) => LEFT + ((t - fromS) / (toS - fromS)) * w;

  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.strokeRect(LEFT + 0.5, 0.5, w, height - 1);
  ctx.strokeStyle = colors.zero;
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.moveTo(LEFT, Math.round(y(0)) + 0.5);
  ctx.lineTo(LEFT + w, Math.round(y(0)) + 0.5);
  ctx.stroke();
  ctx.setLineDash([]);

  // Each bucket as a vertical bar from its min to its max, joined to the
  // next: with one sample per bucket this is the plain polyline.
  ctx.strokeStyle = colors.signal;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let i = 0; i < s.t_s.length; i++) {
    const xi = x(s.t_s[i]);
    if (i === 0) ctx.moveTo(xi, y(s.min[i]));
    else ctx.lineTo(xi, y(s.min[i]));
    ctx.lineTo(xi, y(s.max[i]));
  }
  ctx.stroke();

  // The scale's labels are at most ten characters whatever the magnitude
  // (eng()); the units go after the lead's name, and the margin's width caps
  // every label (fillText squeezes a longer one rather than spill onto the trace).
  const top = eng(hi);
  const bottom = eng(lo);
  Object.assign(canvas.parentElement.dataset, { top, bottom });
  const room = LEFT - 6;
  ctx.fillStyle = colors.text;
  ctx.font = 'bold 12px sans-serif';
  ctx.fillText(lead, 4, 16, room);
  const name = Math.min(room, ctx.measureText(lead).width);
  ctx.font = '10px sans-serif';
  if (units && name + 4 < room) ctx.fillText(units, 4 + name + 4, 16, room - name - 4);
  ctx.fillText(top, 4, 30, room);
  ctx.fillText(bottom, 4, height - 5, room);

  const xs = beats.map(x);
  drawMarkers(ctx, xs);
  return xs;
}
