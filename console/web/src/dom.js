// Small DOM helpers: the console builds its pages with these instead of a framework, which
// keeps the bundle small.

// h creates an HTML element: attributes (on* are listeners, class, text), then children
// (nodes, strings, arrays; null and false are skipped).
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

const SVG = 'http://www.w3.org/2000/svg';

// s creates an SVG element the same way.
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// clear removes an element's children.
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// Times are shown in the browser's zone (Intl without a timeZone uses it).
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function fmtTime(ms) {
  return ms == null ? '' : dateTime.format(new Date(ms));
}

export function fmtClock(ms) {
  return timeOnly.format(new Date(ms));
}

const num = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
export function fmtNum(v) {
  return typeof v === 'number' ? num.format(v) : v == null ? '' : String(v);
}

// fmtAgo says how long ago a time was, in words.
export function fmtAgo(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

// cell renders a value of a row for a table cell.
export function cell(v) {
  if (v == null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return typeof v === 'number' ? String(v) : v;
}
