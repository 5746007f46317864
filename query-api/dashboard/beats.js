// Beats (R peaks) on the plot: each lead's beats in the shown range, from
// /beats, drawn as a small triangle over the track at each beat's time; and
// under the tracks the heart-rate trend of one lead, 60000 / RR ms per beat.
// A beat is shown when fromS <= t_s <= toS, the plot's range: the API takes
// millisecond bounds, so the request is widened to the enclosing
// milliseconds and the beats outside the range are dropped here.
//
// Markers closer than a pixel column apart say nothing, so a lead whose
// range holds more beats than the track has columns gets none (the range
// text says so); the trend pages on up to TREND_MAX beats.
//
// For tests and scripts: each track carries data-beats (markers drawn) and
// data-beat-x (their x in CSS px from the canvas' left, space-separated);
// #heart-rate carries data-lead, data-points (values drawn), and its
// scale: data-hi / data-lo (bpm) at the rows data-hi-y / data-lo-y (CSS px).

import * as api from './api.js';
import { at, num, niceStep, fitCanvas, colors } from './format.js';

const PAGE = 10_000; // the API's limit per page
const TREND_MAX = 100_000; // beats of the trend's lead, about 22 h at 75 bpm
const HEIGHT = 100; // the trend's canvas, CSS px
const PAD_TOP = 8; // px above the trend's scale
const PAD_BOTTOM = 20; // px below it, for the caption

/** The marker cap of a track `width` px wide: at most one beat per column. */
export const markerMax = (width) => Math.min(PAGE, Math.max(1, Math.floor(width)));

/** The trend lead pages on further than the markers need. */
export const trendMax = TREND_MAX;

/**
 * The beats of `lead` with fromS <= t_s <= toS, in order, a page at a time
 * until `max`; resolves to {items, more} (more: the range holds others).
 */
export async function beatsIn(ecg, lead, fromS, toS, max) {
  const items = [];
  let cursor = null;
  do {
    const page = await api.get(`/v1/ecgs/${ecg.id}/beats`, {
      lead,
      // at() truncates to the millisecond: `from` is at or before fromS, and
      // `to` (exclusive) after toS.
      from: at(ecg.started_at, fromS),
      to: at(ecg.started_at, toS + 0.001),
      limit: Math.min(PAGE, max - items.length),
      cursor,
    });
    for (const b of page.items) if (b.t_s >= fromS && b.t_s <= toS) items.push(b);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items, more: Boolean(cursor) };
}

/** Draws a downward triangle at the top of a track at each of `xs`. */
export function drawMarkers(ctx, xs) {
  ctx.fillStyle = colors.beat;
  ctx.beginPath();
  for (const x of xs) {
    ctx.moveTo(x - 4, 1);
    ctx.lineTo(x + 4, 1);
    ctx.lineTo(x, 8);
    ctx.closePath();
  }
  ctx.fill();
}

/**
 * The heart-rate trend on `canvas`: trend is {lead, items, more} or {lead,
 * error}; the time axis is the tracks' (from `left` to width - `right`).
 * The scale's ticks are labelled in the left margin, the unit under them.
 */
export function drawHeartRate(canvas, trend, fromS, toS, left, right) {
  const { ctx, width } = fitCanvas(canvas, HEIGHT);
  ctx.clearRect(0, 0, width, HEIGHT);
  const w = width - left - right;
  const x = (t) => left + ((t - fromS) / (toS - fromS)) * w;
  const points = trend && trend.items ? trend.items.filter((b) => b.rr_ms > 0) : [];
  const bpm = points.map((b) => 60_000 / b.rr_ms);
  ctx.strokeStyle = colors.grid;
  ctx.lineWidth = 1;
  ctx.strokeRect(left + 0.5, 0.5, w, HEIGHT - 1);
  ctx.fillStyle = colors.text;
  ctx.font = '10px sans-serif';
  ctx.fillText('bpm', left - 30, HEIGHT - 5, 28);
  Object.assign(canvas.dataset, { lead: trend ? trend.lead : '', points: String(bpm.length) });
  for (const k of ['hi', 'lo', 'hiY', 'loY']) delete canvas.dataset[k];
  if (!bpm.length) {
    const why = trend && trend.error ? trend.error : 'no heart rate in this range yet';
    ctx.fillText(why, left + 6, HEIGHT / 2, w - 12);
    return;
  }

  // Whole ticks around the values, at least 10 bpm apart top to bottom, so
  // a steady rhythm is a flat line in the middle rather than noise blown up.
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of bpm) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi - lo < 10) [lo, hi] = [(hi + lo) / 2 - 5, (hi + lo) / 2 + 5];
  const step = niceStep((hi - lo) / 3);
  lo = Math.max(0, Math.floor(lo / step) * step);
  hi = Math.ceil(hi / step) * step;
  const bottom = HEIGHT - PAD_BOTTOM;
  const y = (v) => PAD_TOP + ((hi - v) / (hi - lo)) * (bottom - PAD_TOP);
  Object.assign(canvas.dataset, { hi: String(hi), lo: String(lo), hiY: String(PAD_TOP), loY: String(bottom) });
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  ctx.textAlign = 'right';
  for (let v = lo; v <= hi + step * 1e-6; v += step) {
    const row = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left, row);
    ctx.lineTo(left + w, row);
    ctx.stroke();
    ctx.fillText(num(v, digits), left - 4, row + 3, left - 8);
  }
  ctx.textAlign = 'left';

  ctx.strokeStyle = colors.heartRate;
  ctx.fillStyle = colors.heartRate;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  points.forEach((b, i) => (i ? ctx.lineTo(x(b.t_s), y(bpm[i])) : ctx.moveTo(x(b.t_s), y(bpm[i]))));
  ctx.stroke();
  // Each value as a dot too, while they are a few pixels apart.
  if (bpm.length <= w / 4) points.forEach((b, i) => ctx.fillRect(x(b.t_s) - 1.5, y(bpm[i]) - 1.5, 3, 3));
  ctx.fillStyle = colors.text;
  const note = trend.more ? ` (its first ${num(trend.items.length)} beats here)` : '';
  ctx.fillText(`heart rate, lead ${trend.lead}, 60000 / RR ms per beat${note}`, left + 6, HEIGHT - 5, w - 12);
}
