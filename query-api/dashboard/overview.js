// The overview: pipeline panel, active streams and the ECG list, refreshed
// every few seconds while shown. Each panel fails on its own: an endpoint in
// error shows its message and the others keep updating.

import * as api from './api.js';
import { $, h, num, declared, when, fitCanvas, colors } from './format.js';

const REFRESH_MS = 5000;
const PAGE = 50;

export class Overview {
  constructor() {
    this.timer = null;
    this.cursor = null; // next page of the ECG list, when more than one is shown
    this.pages = 1;
    this.onFilter = () => this.loadEcgs(true);
    this.onMore = () => this.loadEcgs(false);
  }

  start() {
    $('status-filter').addEventListener('change', this.onFilter);
    $('more').addEventListener('click', this.onMore);
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
    $('status-filter').removeEventListener('change', this.onFilter);
    $('more').removeEventListener('click', this.onMore);
  }

  refresh() {
    this.loadPipeline();
    this.loadStreams();
    // Refreshing would drop the pages the user loaded with "more".
    if (this.pages === 1) this.loadEcgs(true);
  }

  async loadPipeline() {
    try {
      const p = await api.get('/v1/pipeline');
      const metric = (name, text) => {
        const e = document.querySelector(`#pipeline [data-metric="${name}"]`);
        e.textContent = text;
      };
      metric('ingest.samples_per_s', num(p.ingest.samples_per_s, 0));
      metric('ingest.chunks_per_s', `${num(p.ingest.chunks_per_s, 1)} chunks/s`);
      metric('processing.samples_per_s', num(p.processing.samples_per_s, 0));
      metric('processing.chunks_per_s', `${num(p.processing.chunks_per_s, 1)} chunks/s`);
      metric(
        'consumer_lag.messages',
        p.consumer_lag.available ? num(p.consumer_lag.messages) : 'n/a',
      );
      metric('dead_lettered.total', num(p.dead_lettered.total));
      metric('dead_lettered.last_hour', `${num(p.dead_lettered.last_hour)} in the last hour`);
      metric('ecgs.receiving', num(p.ecgs.receiving));
      metric(
        'ecgs.summary',
        `${num(p.ecgs.processing)} processing, ${num(p.ecgs.complete)} complete, ${num(p.ecgs.failed)} failed`,
      );
      metric('active_streams', num(p.active_streams));
      $('pipeline').dataset.at = p.at;
      $('pipeline-at').textContent = `rates over ${p.window_s} s, at ${when(p.at)} UTC`;
      $('pipeline-error').textContent = '';
      drawSpark($('throughput'), p.throughput);
    } catch (e) {
      $('pipeline-error').textContent = e.message;
    }
  }

  async loadStreams() {
    try {
      const s = await api.get('/v1/streams/active');
      $('streams-within').textContent = `data in the last ${s.within_s} s`;
      const rows = s.streams.map((x) =>
        h(
          'tr',
          { dataset: { ecgId: x.id } },
          h('td', {}, h('a', { href: `#/ecg/${x.id}` }, x.id.slice(0, 8))),
          h('td', {}, x.device_id),
          h('td', {}, when(x.last_activity_at)),
          h('td', { class: 'num' }, num(x.samples_per_s, 0)),
          h('td', { class: 'num' }, x.lag_s === null ? '–' : num(x.lag_s, 2)),
          h('td', { class: 'num' }, num(x.waiting_chunks)),
        ),
      );
      if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'no stream is sending data')));
      $('streams').tBodies[0].replaceChildren(...rows);
      $('streams-error').textContent = '';
    } catch (e) {
      $('streams-error').textContent = e.message;
    }
  }

  async loadEcgs(first) {
    try {
      const page = await api.get('/v1/ecgs', {
        limit: PAGE,
        status: $('status-filter').value,
        cursor: first ? null : this.cursor,
      });
      const rows = page.items.map(ecgRow);
      const body = $('ecg-list').tBodies[0];
      if (first) {
        this.pages = 1;
        body.replaceChildren(...rows);
        if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'no ECG yet')));
      } else {
        this.pages += 1;
        body.append(...rows);
      }
      this.cursor = page.next_cursor;
      $('more').hidden = !page.next_cursor;
      $('ecgs-error').textContent = '';
    } catch (e) {
      $('ecgs-error').textContent = e.message;
    }
  }
}

function ecgRow(e) {
  return h(
    'tr',
    { dataset: { ecgId: e.id, status: e.status } },
    h('td', {}, h('a', { class: 'ecg-link', href: `#/ecg/${e.id}` }, e.id.slice(0, 8))),
    h('td', {}, e.device_id),
    h('td', {}, h('span', { class: `status ${e.status}` }, e.status)),
    h('td', {}, when(e.started_at)),
    h('td', {}, e.leads.join(' ')),
    h('td', { class: 'num', dataset: { field: 'sample_rate_hz' } }, declared(e.sample_rate_hz)),
    h('td', { class: 'num' }, num(e.chunks_processed)),
    h('td', { class: 'num' }, num(e.samples_processed)),
    h('td', { class: e.failed_chunks_count ? 'num error' : 'num' }, num(e.failed_chunks_count)),
  );
}

/**
 * Ingested (green area) and processed (blue line) samples/s over the last
 * minutes, as the API gives them on every call: drawn in full from the first
 * load (a history gathered by this page, one point per refresh, was a lone
 * dot at the left edge for the first minutes).
 */
function drawSpark(canvas, t) {
  const { ctx, width, height } = fitCanvas(canvas, 60);
  ctx.clearRect(0, 0, width, height);
  const n = t.processing_samples_per_s.length;
  const top = Math.max(1, ...t.ingest_samples_per_s, ...t.processing_samples_per_s);
  // Step i spans [i, i + 1) of n; its value is drawn at its middle.
  const x = (i) => (width * (i + 0.5)) / n;
  const y = (v) => height - 14 - ((height - 20) * v) / top;
  if (n) {
    ctx.fillStyle = colors.bar;
    ctx.globalAlpha = 0.35;
    ctx.beginPath();
    ctx.moveTo(x(0), y(0));
    t.ingest_samples_per_s.forEach((v, i) => ctx.lineTo(x(i), y(v)));
    ctx.lineTo(x(n - 1), y(0));
    ctx.closePath();
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.strokeStyle = colors.signal;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    t.processing_samples_per_s.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
  }
  const minutes = (n * t.step_s) / 60;
  ctx.fillStyle = colors.text;
  ctx.font = '11px sans-serif';
  ctx.fillText(
    `peak ${num(top)} samples/s over the last ${num(minutes)} min, per ${t.step_s} s — ingested (green), processed (blue)`,
    4,
    height - 2,
  );
}
