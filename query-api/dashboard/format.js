// Small DOM and number helpers. Text always goes in through textContent, never
// innerHTML: device ids and failure reasons come from clients.

/** Creates an element: h('td', {class: 'num', dataset: {lead: 'II'}}, '75'). */
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const $ = (id) => document.getElementById(id);

export function num(x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return Number(x).toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/**
 * A value of any magnitude in at most ten characters: three significant
 * digits, plain from 0.01 to 999 ("0.0125", "2.5", "-480"), else in
 * engineering notation, the exponent a multiple of three ("12.5e-3",
 * "1e300", "180e306", "4.94e-324"). Built from toExponential's digits by
 * moving the decimal point in the string, never by scaling the number:
 * 10 ** -324 is 0 and 10 ** 309 is Infinity.
 */
export function eng(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  if (x === 0) return '0';
  // "1.25e-7": rounded to three digits, and the exponent is the rounded
  // value's (999.6 gives "1.00e+3").
  const [mantissa, exp10] = Math.abs(x).toExponential(2).split('e');
  const exp = Number(exp10);
  const digits = mantissa.replace('.', '');
  const sign = x < 0 ? '-' : '';
  if (exp >= -2 && exp <= 2) {
    const text =
      exp >= 0
        ? `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`
        : `0.${'0'.repeat(-exp - 1)}${digits}`;
    return sign + trimZeros(text);
  }
  const shift = ((exp % 3) + 3) % 3; // digits before the point: 1, 2 or 3
  const text = trimZeros(`${digits.slice(0, shift + 1)}.${digits.slice(shift + 1)}`);
  return `${sign}${text}e${exp - shift}`;
}

/** "1.50" as "1.5", "2.00" as "2", "120." as "120". */
function trimZeros(text) {
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/**
 * A number as it was declared (a sample rate: 128.5 stays "128.5", 500 is
 * "500"): the shortest digits that give the number back, the integer part
 * grouped like num()'s. Rounding it to a fixed number of decimals would show
 * a rate the ECG does not have.
 */
export function declared(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  const text = String(x);
  // Exponent forms (below 1e-6 or from 1e21) are left as they are.
  if (/e/i.test(text)) return text;
  const [int, frac] = text.split('.');
  const grouped = int.replace(/\B(?=(\d{3})+$)/g, ',');
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/** A timestamp as UTC "2026-11-23 10:00:01". */
export function when(rfc3339) {
  if (!rfc3339) return '–';
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toISOString().slice(0, 19).replace('T', ' ');
}

/** Seconds as "12.5 s", "3 min 20 s" or "2 h 5 min". */
export function duration(s) {
  if (!Number.isFinite(s)) return '–';
  if (s < 60) return `${num(s, s < 10 ? 3 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** started_at + s seconds, as RFC 3339 with milliseconds. */
export function at(startedAt, s) {
  return new Date(Date.parse(startedAt) + s * 1000).toISOString();
}

/** A canvas sized to its CSS box at the screen's pixel ratio; returns its 2D context in CSS pixels. */
export function fitCanvas(canvas, cssHeight) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.parentElement.clientWidth;
  canvas.style.height = `${cssHeight}px`;
  canvas.width = Math.max(1, Math.round(width * ratio));
  canvas.height = Math.max(1, Math.round(cssHeight * ratio));
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height: cssHeight };
}

/** 1, 2 or 5 times a power of ten, at least `raw`: a step between labelled ticks. */
export function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Colours shared by the plot and the charts. */
export const colors = {
  signal: '#1f5fbf',
  zero: '#c0392b',
  grid: '#e3e6ea',
  text: '#4a4f57',
  bar: '#2e8b57',
  beat: '#e69500',
  heartRate: '#8e44ad',
  selection: 'rgba(31, 95, 191, 0.15)',
};
