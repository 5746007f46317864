// One ECG: its status and heart rate, the multi-lead plot with its beats
// and heart-rate trend, the zero crossings and beats per lead, and the
// crossings per time window. While the ECG is still receiving or
// processing, status and counts refresh every few seconds and the plot
// grows with the data.
//
// For tests and scripts: #ecg-view carries data-ecg-id and data-status; the
// summary's heart-rate values carry data-fact (heart_rate_bpm, sdnn_ms,
// rmssd_ms) and data-value (the API's number, '' while unknown); the counts
// table has one row per lead (data-lead) whose cells carry data-field
// (samples, zero_crossings, windows_sum, beats, heart_rate_bpm); the window
// table's cells carry data-lead and data-window (the window's index).

import * as api from './api.js';
import { $, h, num, declared, when, duration, fitCanvas, colors } from './format.js';
import { Plot } from './plot.js';

const REFRESH_MS = 5000;
const SETTLED = new Set(['complete', 'failed']);
const SHOWN_FAILURES = 5;
// The API's limit on windows per request; longer series need a longer window.
const MAX_WINDOWS = 100_000;
const WINDOW_S = { '1s': 1, '10s': 10, '1m': 60 };
// Rows of the window table rendered at most (the bars show every window).
const MAX_ROWS = 1000;

export class EcgPage {
  constructor(id) {
    this.id = id;
    this.ecg = null;
    this.seconds = 0;
    this.insights = null;
    this.plot = null;
    this.timer = null;
    this.windows = null; // the last insights' window series
    this.windowChosen = false;
    this.stopped = false;
    this.onWindow = () => {
      this.windowChosen = true;
      this.loadInsights();
    };
    this.onBarsLead = () => this.drawBars();
    this.onReset = () => this.plot && this.plot.reset();
    this.onBarClick = (e) => this.zoomToBar(e);
  }

  start() {
    const view = $('ecg-view');
    view.dataset.ecgId = this.id;
    delete view.dataset.status;
    $('ecg-id').textContent = this.id;
    for (const id of ['ecg-facts', 'axis']) $(id).replaceChildren();
    $('tracks').replaceChildren($('selection'));
    for (const id of ['ecg-error', 'plot-error', 'insights-error', 'plot-range', 'ecg-status']) {
      $(id).textContent = '';
    }
    $('counts').tBodies[0].replaceChildren();
    $('counts').tFoot.replaceChildren();
    $('windows').tHead.replaceChildren();
    $('windows').tBodies[0].replaceChildren();
    $('plot').dataset.state = 'idle';
    const trend = $('heart-rate');
    trend.height = 0; // blank until this ECG's trend is drawn
    for (const k of Object.keys(trend.dataset)) delete trend.dataset[k];
    $('window').addEventListener('change', this.onWindow);
    $('bars-lead').addEventListener('change', this.onBarsLead);
    $('zoom-reset').addEventListener('click', this.onReset);
    $('bars').addEventListener('click', this.onBarClick);
    this.refresh();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.stopped = true;
    if (this.plot) this.plot.destroy();
    $('window').removeEventListener('change', this.onWindow);
    $('bars-lead').removeEventListener('change', this.onBarsLead);
    $('zoom-reset').removeEventListener('click', this.onReset);
    $('bars').removeEventListener('click', this.onBarClick);
  }

  async refresh() {
    try {
      this.ecg = await api.get(`/v1/ecgs/${this.id}`);
    } catch (e) {
      $('ecg-error').textContent = e.message;
      this.schedule();
      return;
    }
    if (this.stopped) return;
    $('ecg-error').textContent = '';
    const ecg = this.ecg;
    const seconds = ecg.samples_processed / ecg.leads.length / ecg.sample_rate_hz;
    this.seconds = seconds;
    this.showFacts();
    for (const option of $('window').options) {
      option.disabled = seconds / WINDOW_S[option.value] > MAX_WINDOWS;
    }
    if (!this.windowChosen) $('window').value = seconds <= 60 ? '1s' : seconds <= 600 ? '10s' : '1m';
    if (!this.plot) {
      $('bars-lead').replaceChildren(
        h('option', { value: '' }, 'all leads'),
        ...ecg.leads.map((l) => h('option', { value: l }, l)),
      );
      this.plot = new Plot(ecg, seconds);
      this.plot.load();
    } else {
      this.plot.setFull(seconds);
    }
    await this.loadInsights();
    this.schedule();
  }

  schedule() {
    if (this.stopped || (this.ecg && SETTLED.has(this.ecg.status))) return;
    this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  /** The summary: the ECG's status and facts, and once the insights have it, its heart rate. */
  showFacts() {
    const { ecg, seconds } = this;
    const view = $('ecg-view');
    view.dataset.status = ecg.status;
    const status = $('ecg-status');
    status.textContent = ecg.status;
    status.className = `status ${ecg.status}`;
    const facts = [
      ['device', ecg.device_id],
      ['leads', `${ecg.leads.join(' ')} (${ecg.units})`],
      ['sample rate', `${declared(ecg.sample_rate_hz)} Hz`],
      ['started', `${when(ecg.started_at)} UTC`],
      ['last data', ecg.last_activity_at ? `${when(ecg.last_activity_at)} UTC` : '–'],
      ['duration', duration(seconds)],
      ['chunks', `${num(ecg.chunks_processed)} processed${ecg.chunks_received !== undefined ? ` of ${num(ecg.chunks_received)} received` : ''}`],
      ['samples', `${num(ecg.samples_processed)} (all leads)`],
      ['missing / waiting', `${num(ecg.missing_count)} / ${num(ecg.waiting_count)} chunks`],
      ['failed chunks', num(ecg.failed_chunks_count)],
    ];
    const items = facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]);
    items.push(...this.heartRateFacts());
    for (const f of (ecg.failed_chunks || []).slice(0, SHOWN_FAILURES)) {
      items.push(h('dt', { class: 'error' }, `chunk ${f.seq ?? '?'}`), h('dd', { class: 'error' }, f.reason));
    }
    $('ecg-facts').replaceChildren(...items);
  }

  /** Heart rate, SDNN and RMSSD of the ECG's heart_rate_lead, as <dt>/<dd> pairs. */
  heartRateFacts() {
    const insights = this.insights || {};
    const lead = insights.heart_rate_lead;
    const hr = (lead && insights.leads && insights.leads[lead] && insights.leads[lead].heart_rate) || {};
    const fact = (name, label, value, text) => [
      h('dt', {}, label),
      h('dd', { dataset: { fact: name, value: String(value ?? '') } }, value === null || value === undefined ? '–' : text),
    ];
    const of = lead ? ` (lead ${lead}, ${num(hr.normal_intervals)} of ${num(hr.rr_intervals)} RR intervals normal)` : '';
    return [
      ...fact('heart_rate_bpm', 'heart rate', insights.heart_rate_bpm, `${num(insights.heart_rate_bpm, 1)} bpm${of}`),
      ...fact('sdnn_ms', 'SDNN', hr.sdnn_ms, `${num(hr.sdnn_ms, 1)} ms`),
      ...fact('rmssd_ms', 'RMSSD', hr.rmssd_ms, `${num(hr.rmssd_ms, 1)} ms`),
    ];
  }

  async loadInsights() {
    let insights;
    try {
      insights = await api.get(`/v1/ecgs/${this.id}/insights`, { window: $('window').value });
    } catch (e) {
      $('insights-error').textContent = e.message;
      return;
    }
    if (this.stopped) return;
    $('insights-error').textContent = '';
    this.insights = insights;
    this.showFacts();
    if (this.plot) this.plot.setTrendLead(insights.heart_rate_lead || this.ecg.leads[0]);
    this.windows = insights.windows || null;
    this.showCounts(insights);
    this.showWindows();
    this.drawBars();
  }

  showCounts(insights) {
    const leads = this.ecg.leads;
    const sums = windowSums(this.windows, leads);
    const cell = (lead, field, value, digits = 0) =>
      h('td', { class: 'num', dataset: { lead, field, value: String(value ?? '') } }, num(value, digits));
    const rows = leads.map((lead) => {
      const l = insights.leads[lead] || {};
      return h(
        'tr',
        { dataset: { lead } },
        h('th', {}, lead),
        cell(lead, 'samples', l.samples),
        cell(lead, 'zero_crossings', l.zero_crossings),
        cell(lead, 'rate_hz', l.zero_crossing_rate_hz, 2),
        cell(lead, 'windows_sum', sums.get(lead)),
        cell(lead, 'beats', l.beats),
        cell(lead, 'heart_rate_bpm', l.heart_rate && l.heart_rate.heart_rate_bpm, 1),
      );
    });
    $('counts').tBodies[0].replaceChildren(...rows);
    $('counts').tFoot.replaceChildren(
      h(
        'tr',
        {},
        h('th', {}, 'all'),
        h('td', {}),
        h('td', { class: 'num', id: 'total-crossings', dataset: { value: String(insights.total_zero_crossings) } }, num(insights.total_zero_crossings)),
        h('td', {}),
        h('td', {}),
        h('td', {}),
        h('td', {}),
      ),
    );
  }

  showWindows() {
    const leads = this.ecg.leads;
    const table = $('windows');
    if (!this.windows) {
      table.tHead.replaceChildren();
      table.tBodies[0].replaceChildren();
      return;
    }
    table.dataset.window = this.windows.window;
    table.tHead.replaceChildren(h('tr', {}, h('th', {}, 'from s'), ...leads.map((l) => h('th', { class: 'num' }, l))));
    const series = this.windows.series;
    const rows = series.slice(0, MAX_ROWS).map((w, k) =>
      h(
        'tr',
        { dataset: { window: String(k), startS: String(w.start_s) } },
        h('th', {}, num(w.start_s, this.windows.window_s < 1 ? 3 : 0)),
        ...leads.map((lead) =>
          h('td', { class: 'num', dataset: { lead, window: String(k) } }, num(w.leads[lead] ?? 0)),
        ),
      ),
    );
    if (series.length > MAX_ROWS) {
      rows.push(
        h(
          'tr',
          {},
          h('td', { colspan: leads.length + 1, class: 'muted' }, `… and ${num(series.length - MAX_ROWS)} more windows (the bars show all of them)`),
        ),
      );
    }
    table.tBodies[0].replaceChildren(...rows);
  }

  drawBars() {
    const canvas = $('bars');
    const { ctx, width, height } = fitCanvas(canvas, 90);
    ctx.clearRect(0, 0, width, height);
    if (!this.windows || !this.windows.series.length) return;
    const lead = $('bars-lead').value;
    const values = this.windows.series.map((w) =>
      lead ? (w.leads[lead] ?? 0) : Object.values(w.leads).reduce((a, b) => a + b, 0),
    );
    const top = Math.max(1, ...values);
    const barW = width / values.length;
    ctx.fillStyle = colors.bar;
    values.forEach((v, i) => {
      const bh = ((height - 16) * v) / top;
      ctx.fillRect(i * barW + (barW > 3 ? 1 : 0), height - 14 - bh, Math.max(1, barW - (barW > 3 ? 2 : 0)), bh);
    });
    ctx.fillStyle = colors.text;
    ctx.font = '11px sans-serif';
    const what = lead ? `lead ${lead}` : 'all leads';
    ctx.fillText(`zero crossings per ${this.windows.window} window, ${what}; highest ${num(top)}`, 2, height - 2);
  }

  zoomToBar(e) {
    if (!this.windows || !this.windows.series.length || !this.plot) return;
    const box = $('bars').getBoundingClientRect();
    const k = Math.floor(((e.clientX - box.left) / box.width) * this.windows.series.length);
    const w = this.windows.series[Math.min(Math.max(k, 0), this.windows.series.length - 1)];
    this.plot.zoom(w.start_s, w.start_s + this.windows.window_s);
  }
}

/** Per lead, the sum of its window counts (equal to its total over the whole ECG). */
function windowSums(windows, leads) {
  const sums = new Map();
  if (!windows) return sums;
  for (const lead of leads) {
    sums.set(
      lead,
      windows.series.reduce((a, w) => a + (w.leads[lead] ?? 0), 0),
    );
  }
  return sums;
}
