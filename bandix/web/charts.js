/*
 * bandix charts and units: a small canvas line chart and human formatting,
 * with no dependencies. Shared by the daemon's dashboard and luci-app-bandix:
 * it defines one global, BandixCharts, and touches nothing else.
 */
(function (global) {
	'use strict';

	var BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
	var BIT_UNITS = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];

	/* 1536 -> "1.5 KB" (powers of 1024, as traffic totals are usually shown). */
	function formatBytes(n) {
		var v = Number(n) || 0, i = 0;
		while (Math.abs(v) >= 1024 && i < BYTE_UNITS.length - 1) { v /= 1024; i++; }
		return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + BYTE_UNITS[i];
	}

	/* A rate in bytes/s, shown as bits/s (powers of 1000, as links are sold) or bytes/s. */
	function formatRate(bytesPerSecond, unit) {
		var v = Number(bytesPerSecond) || 0;
		if (unit === 'bytes')
			return formatBytes(v) + '/s';
		v *= 8;
		var i = 0;
		while (Math.abs(v) >= 1000 && i < BIT_UNITS.length - 1) { v /= 1000; i++; }
		return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + BIT_UNITS[i];
	}

	/* "1 h 02 min" from seconds. */
	function formatDuration(seconds) {
		var s = Math.max(0, Math.round(seconds));
		if (s < 60) return s + ' s';
		if (s < 3600) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
		if (s < 86400) return Math.floor(s / 3600) + ' h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + ' min';
		return Math.floor(s / 86400) + ' d ' + Math.floor(s / 3600) % 24 + ' h';
	}

	/* A round step for about `count` ticks up to `max`. */
	/* The canvas sized to its box at the device's pixel ratio, cleared: {ctx, w, h} in CSS pixels. */
	function prepare(canvas, ratio) {
		var w = canvas.clientWidth || 600, h = canvas.clientHeight || 200;
		if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
			canvas.width = Math.round(w * ratio);
			canvas.height = Math.round(h * ratio);
		}
		var ctx = canvas.getContext('2d');
		ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
		ctx.clearRect(0, 0, w, h);
		return { ctx: ctx, w: w, h: h };
	}

	/* The value axis both charts share: grid lines and labels from 0 to a round top above maxY;
	   returns the plot area and yOf (value → pixel), text left centred for the x labels. */
	function yAxis(ctx, w, h, maxY, formatY, grid) {
		var step = niceStep(maxY || 1, 4), top = Math.max(step, Math.ceil((maxY || 1) / step) * step);
		var left = Math.max(48, ctx.measureText(formatY(top)).width + 10), right = 8, upper = 8, lower = 20;
		var pw = w - left - right, ph = h - upper - lower;
		var yOf = function (y) { return upper + ph - y / top * ph; };
		ctx.strokeStyle = grid;
		ctx.lineWidth = 1;
		ctx.textAlign = 'right';
		ctx.textBaseline = 'middle';
		for (var y = 0; y <= top + 1e-9; y += step) {
			ctx.beginPath();
			ctx.moveTo(left, Math.round(yOf(y)) + 0.5);
			ctx.lineTo(w - right, Math.round(yOf(y)) + 0.5);
			ctx.stroke();
			ctx.fillText(formatY(y), left - 6, yOf(y));
		}
		ctx.textAlign = 'center';
		ctx.textBaseline = 'top';
		return { left: left, right: right, lower: lower, pw: pw, yOf: yOf };
	}

	function niceStep(max, count) {
		var raw = max / Math.max(1, count), mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
		var n = raw / mag;
		return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
	}

	function cssVar(el, name, fallback) {
		var v = global.getComputedStyle ? global.getComputedStyle(el).getPropertyValue(name).trim() : '';
		return v || fallback;
	}

	/*
	 * Draw series on a canvas. series: [{label, color, points: [[x, y], ...], fill}];
	 * x in ms since the epoch, y >= 0. opts: {formatY(y), formatX(x), minX, maxX}.
	 * The canvas keeps its CSS size; its pixels follow devicePixelRatio.
	 * Returns the drawn ranges, so callers (and tests) can tell it drew something.
	 */
	function lineChart(canvas, series, opts) {
		opts = opts || {};
		var ratio = global.devicePixelRatio || 1;
		var c = prepare(canvas, ratio), ctx = c.ctx, w = c.w, h = c.h;

		var fg = cssVar(canvas, '--chart-fg', '#555'), grid = cssVar(canvas, '--chart-grid', '#ddd');
		var formatY = opts.formatY || String;
		var formatX = opts.formatX || function (x) { return new Date(x).toLocaleTimeString(); };
		var minX = opts.minX, maxX = opts.maxX, maxY = 0, n = 0;
		series.forEach(function (s) {
			s.points.forEach(function (p) {
				if (minX === undefined || p[0] < minX) minX = p[0];
				if (maxX === undefined || p[0] > maxX) maxX = p[0];
				if (p[1] > maxY) maxY = p[1];
				n++;
			});
		});
		ctx.font = '11px sans-serif';
		ctx.fillStyle = fg;
		if (!n || minX === undefined) {
			ctx.textAlign = 'center';
			ctx.fillText(opts.empty || 'no data yet', w / 2, h / 2);
			return { points: 0 };
		}
		if (maxX === minX) maxX = minX + 1000;
		var axis = yAxis(ctx, w, h, maxY, formatY, grid);
		var left = axis.left, right = axis.right, lower = axis.lower, pw = axis.pw, yOf = axis.yOf;
		var xOf = function (x) { return left + (x - minX) / (maxX - minX) * pw; };
		for (var k = 0; k <= 4; k++) {
			var x = minX + (maxX - minX) * k / 4;
			ctx.fillText(formatX(x), Math.min(Math.max(xOf(x), left + 20), w - right - 20), h - lower + 5);
		}
		series.forEach(function (s) {
			if (!s.points.length) return;
			ctx.beginPath();
			s.points.forEach(function (p, i) {
				if (i === 0) ctx.moveTo(xOf(p[0]), yOf(p[1]));
				else ctx.lineTo(xOf(p[0]), yOf(p[1]));
			});
			ctx.strokeStyle = s.color;
			ctx.lineWidth = s.width || 1.5;
			ctx.stroke();
			if (s.fill) {
				ctx.lineTo(xOf(s.points[s.points.length - 1][0]), yOf(0));
				ctx.lineTo(xOf(s.points[0][0]), yOf(0));
				ctx.closePath();
				ctx.globalAlpha = 0.15;
				ctx.fillStyle = s.color;
				ctx.fill();
				ctx.globalAlpha = 1;
			}
		});
		return { points: n, minX: minX, maxX: maxX, maxY: maxY };
	}

	/*
	 * Stacked bars on a canvas, one per period. bars: [{label, values: [y, ...]}];
	 * opts: {colors: [css color per value], formatY(y), empty}. For bytes per hour
	 * or day, where each bar is a total (a line would suggest a rate between them).
	 */
	function barChart(canvas, bars, opts) {
		opts = opts || {};
		var ratio = global.devicePixelRatio || 1;
		var c = prepare(canvas, ratio), ctx = c.ctx, w = c.w, h = c.h;
		var fg = cssVar(canvas, '--chart-fg', '#555'), grid = cssVar(canvas, '--chart-grid', '#ddd');
		var formatY = opts.formatY || String, colors = opts.colors || [fg];
		var maxY = 0;
		bars.forEach(function (b) {
			var sum = b.values.reduce(function (a, v) { return a + v; }, 0);
			if (sum > maxY) maxY = sum;
		});
		ctx.font = '11px sans-serif';
		ctx.fillStyle = fg;
		if (!bars.length) {
			ctx.textAlign = 'center';
			ctx.fillText(opts.empty || 'no data', w / 2, h / 2);
			return { bars: 0 };
		}
		var axis = yAxis(ctx, w, h, maxY, formatY, grid);
		var left = axis.left, lower = axis.lower, pw = axis.pw, yOf = axis.yOf, slot = pw / bars.length;
		var every = Math.max(1, Math.ceil(bars.length / Math.max(1, Math.floor(pw / 70))));
		bars.forEach(function (b, i) {
			var x = left + i * slot, base = 0;
			b.values.forEach(function (v, k) {
				ctx.fillStyle = colors[k % colors.length];
				ctx.fillRect(x + slot * 0.15, yOf(base + v), slot * 0.7, yOf(base) - yOf(base + v));
				base += v;
			});
			if (i % every === 0) {
				ctx.fillStyle = fg;
				ctx.fillText(b.label, x + slot / 2, h - lower + 5);
			}
		});
		return { bars: bars.length, maxY: maxY };
	}

	global.BandixCharts = {
		formatBytes: formatBytes,
		formatRate: formatRate,
		formatDuration: formatDuration,
		lineChart: lineChart,
		barChart: barChart
	};
})(typeof window !== 'undefined' ? window : this);
