// Hover values for the charts made on the server (ui/src/chart.rs): a vertical guide at the
// nearest sample and a tooltip with each series' value. Pages read fine without this file.
// Plain ES2017, no libraries, no inline handlers (strict CSP).
(function () {
  'use strict';

  var SVG_NS = 'http://www.w3.org/2000/svg';
  var MISSING = '\u2014';

  // Keep in step with format() in ui/src/units.rs.
  var KI = 1024;
  var IEC = [[1, 'B'], [KI, 'KiB'], [KI * KI, 'MiB'], [KI * KI * KI, 'GiB'],
    [KI * KI * KI * KI, 'TiB'], [KI * KI * KI * KI * KI, 'PiB']];
  var IEC_PER_S = IEC.map(function (s) { return [s[0], s[1] + '/s']; });
  var BITS = [[1, 'b/s'], [1e3, 'kb/s'], [1e6, 'Mb/s'], [1e9, 'Gb/s'], [1e12, 'Tb/s'], [1e15, 'Pb/s']];
  var TIME = [[1e-6, '\u00b5s'], [1e-3, 'ms'], [1, 's'], [60, 'min'], [3600, 'h'], [86400, 'd']];
  var SI = [[1, ''], [1e3, 'k'], [1e6, 'M'], [1e9, 'G'], [1e12, 'T'], [1e15, 'P']];

  function trimFraction(s) {
    if (s.indexOf('.') < 0) return s;
    return s.replace(/0+$/, '').replace(/\.$/, '');
  }

  // Up to 3 significant digits (all integer digits kept), no trailing zeros.
  function sig3(abs) {
    if (abs === 0 || !isFinite(abs)) return '0';
    var mag = Math.floor(Math.log10(abs));
    var decimals = Math.min(6, Math.max(0, 2 - mag));
    return trimFraction(abs.toFixed(decimals));
  }

  function scaled(abs, scales, zero, sep, tail) {
    var i = zero;
    if (abs !== 0) {
      i = 0;
      for (var k = scales.length - 1; k >= 0; k--) {
        if (abs >= scales[k][0]) { i = k; break; }
      }
    }
    var mantissa = sig3(abs / scales[i][0]);
    if (i + 1 < scales.length && parseFloat(mantissa) >= scales[i + 1][0] / scales[i][0] - 1e-9) {
      i += 1;
      mantissa = sig3(abs / scales[i][0]);
    }
    return mantissa + sep + scales[i][1] + tail;
  }

  function format(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) return MISSING;
    var abs = Math.abs(v);
    var text;
    switch (unit) {
      case 'bytes': text = scaled(abs, IEC, 0, ' ', ''); break;
      case 'bytes/s': text = scaled(abs, IEC_PER_S, 0, ' ', ''); break;
      case 'bits/s': text = scaled(abs, BITS, 0, ' ', ''); break;
      case 'seconds': text = scaled(abs, TIME, 2, ' ', ''); break;
      case 'count': case 'short': text = scaled(abs, SI, 0, '', ''); break;
      case 'ops/s': text = scaled(abs, SI, 0, '', '/s'); break;
      case 'percent': text = sig3(abs) + '%'; break;
      case 'percentunit': text = sig3(abs * 100) + '%'; break;
      default: text = sig3(abs);
    }
    return v < 0 && /[1-9]/.test(text) ? '-' + text : text;
  }

  function utc(t) {
    return new Date(t * 1000).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  }

  // The index in the sorted array `times` nearest to `t`.
  function nearest(times, t) {
    var lo = 0;
    var hi = times.length - 1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && t - times[lo - 1] <= times[lo] - t) lo -= 1;
    return lo;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setup(fig) {
    // Pointer events come to the chart; the guide is drawn in the stretched plot, whose
    // own transform maps the pointer into its coordinates.
    var area = fig.querySelector('svg.chart-area');
    var svg = fig.querySelector('svg.plot');
    var data;
    try {
      data = JSON.parse(fig.getAttribute('data-series'));
    } catch (e) {
      return;
    }
    if (!area || !svg || !data || !Array.isArray(data.t) || data.t.length === 0 || !Array.isArray(data.s)) return;
    var start = Number(fig.getAttribute('data-start'));
    var end = Number(fig.getAttribute('data-end'));
    var plot = (fig.getAttribute('data-plot') || '').split(' ').map(Number);
    if (plot.length !== 4 || plot.some(isNaN) || !(end > start)) return;
    var left = plot[0], top = plot[1], right = plot[2], bottom = plot[3];
    var unit = data.u || fig.getAttribute('data-unit') || 'none';
    var xOf = function (t) { return left + (t - start) / (end - start) * (right - left); };

    var guide = document.createElementNS(SVG_NS, 'line');
    guide.setAttribute('class', 'guide');
    guide.setAttribute('y1', String(top));
    guide.setAttribute('y2', String(bottom));
    guide.setAttribute('visibility', 'hidden');
    svg.appendChild(guide);

    var tip = el('div', 'chart-tip');
    tip.hidden = true;
    fig.appendChild(tip);

    var shown = -1;
    var point = area.createSVGPoint ? area.createSVGPoint() : null;

    function fill(i) {
      while (tip.firstChild) tip.removeChild(tip.firstChild);
      tip.appendChild(el('div', 'tip-time', utc(data.t[i])));
      data.s.forEach(function (s, k) {
        var row = el('div', 'tip-row');
        var sw = el('span', 'swatch s' + (k % 10));
        sw.setAttribute('aria-hidden', 'true');
        row.appendChild(sw);
        row.appendChild(el('span', 'tip-label', s.l));
        row.appendChild(el('span', 'tip-value', format(s.v ? s.v[i] : null, unit)));
        tip.appendChild(row);
      });
    }

    function move(ev) {
      var ctm = svg.getScreenCTM();
      if (!ctm || !point) return;
      point.x = ev.clientX;
      point.y = ev.clientY;
      var p = point.matrixTransform(ctm.inverse());
      var t = start + (p.x - left) / (right - left) * (end - start);
      var i = nearest(data.t, t);
      var x = xOf(data.t[i]);
      guide.setAttribute('x1', String(x));
      guide.setAttribute('x2', String(x));
      guide.setAttribute('visibility', 'visible');
      if (i !== shown) {
        fill(i);
        shown = i;
      }
      tip.hidden = false;
      // Beside the pointer, flipped to its left near the right edge, inside the figure.
      var box = fig.getBoundingClientRect();
      var px = ev.clientX - box.left;
      var py = ev.clientY - box.top;
      var w = tip.offsetWidth;
      var h = tip.offsetHeight;
      var lx = px + 14;
      if (lx + w > box.width) lx = px - 14 - w;
      if (lx < 0) lx = Math.max(0, box.width - w);
      var ly = Math.min(Math.max(0, py - h / 2), Math.max(0, box.height - h));
      tip.style.left = Math.round(lx) + 'px';
      tip.style.top = Math.round(ly) + 'px';
    }

    function hide() {
      guide.setAttribute('visibility', 'hidden');
      tip.hidden = true;
    }

    area.addEventListener('pointermove', move);
    area.addEventListener('pointerdown', move);
    area.addEventListener('pointerleave', hide);
    area.addEventListener('pointercancel', hide);
  }

  function init() {
    var figs = document.querySelectorAll('figure.chart[data-series]');
    for (var i = 0; i < figs.length; i++) setup(figs[i]);
  }

  if (typeof module === 'object' && module.exports) {
    module.exports = { format: format, nearest: nearest, utc: utc };
  } else if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
