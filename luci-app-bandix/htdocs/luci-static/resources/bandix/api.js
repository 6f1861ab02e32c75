'use strict';
'require baseclass';
'require poll';
'require rpc';

/*
 * What every bandix view shares: the calls of the rpcd object luci.bandix
 * (one call per refresh; each answers the daemon's envelope), the dashboard's
 * charts.js, and small builders. Text from the daemon (host names, domains)
 * always goes into the DOM as text nodes: a bare string given to E() is HTML.
 */

function declare(method, params) {
	return rpc.declare({ object: 'luci.bandix', method: method, params: params || [], expect: { '': {} } });
}

var calls = {
	devices: declare('devices', [ 'known' ]),
	device: declare('device', [ 'mac', 'since', 'level', 'extras' ]),
	connections: declare('connections'),
	dns: declare('dns', [ 'domain', 'device', 'is_query', 'page', 'page_size' ]),
	flowsTop: declare('flows_top', [ 'by', 'mac', 'lookback_minutes', 'limit' ]),
	setBinding: declare('set_binding', [ 'mac', 'hostname' ]),
	usageRanking: declare('usage_ranking', [ 'start_ms', 'end_ms', 'network_type' ]),
	usageIncrements: declare('usage_increments', [ 'mac', 'start_ms', 'end_ms', 'aggregation', 'network_type' ]),
	usageExport: declare('usage_export', [ 'format', 'start_ms', 'end_ms', 'aggregation', 'network_type' ]),
	forgetDevice: declare('forget_device', [ 'mac', 'rules' ])
};

/* The envelope's data, or a rejection with the daemon's message. */
function unwrap(reply) {
	if (reply && reply.status === 'success')
		return reply.data;
	var err = new Error((reply && reply.message) || _('No answer from bandix'));
	err.code = reply && reply.code;
	throw err;
}

function invoke(fn, args) {
	return fn.apply(null, args || []).then(unwrap);
}

var chartsLoading = null;

var COLORS = { down: '#1769aa', up: '#d9730d', lan: '#5a9e3a' };

return baseclass.extend({
	COLORS: COLORS,

	/*
	 * A function answering every device as an object, one call each time. Who the
	 * devices are (device_fields/devices) comes only when it changed since the
	 * version held; the numbers (value_fields/values, flat, same order) every time.
	 */
	devicesFeed: function() {
		var version = null, known = [];
		return function() {
			return invoke(calls.devices, [ version || undefined ]).then(function(data) {
				if (data.devices) {
					known = data.devices.map(function(row) {
						var o = {};
						data.device_fields.forEach(function(f, i) { o[f] = row[i]; });
						return o;
					});
					version = data.version;
				}
				var width = data.value_fields.length, values = data.values;
				return known.map(function(id, n) {
					var o = Object.assign({}, id);
					data.value_fields.forEach(function(f, i) { o[f] = values[n * width + i]; });
					return o;
				});
			});
		};
	},

	/* since: ms of the newest sample already shown (a string: see the plugin's list). */
	device: function(mac, since, level, extras) {
		return invoke(calls.device, [ mac, String(since || 0), level || undefined, extras ? true : undefined ]);
	},

	connections: function() { return invoke(calls.connections); },

	dns: function(filters, page, pageSize) {
		return invoke(calls.dns, [ filters.domain || undefined, filters.device || undefined,
			filters.is_query === '' || filters.is_query == null ? undefined : filters.is_query === 'true',
			page, pageSize ]);
	},

	flowsTop: function(by, lookback, limit) { return invoke(calls.flowsTop, [ by, undefined, lookback, limit ]); },

	setBinding: function(mac, hostname) { return invoke(calls.setBinding, [ mac, hostname ]); },

	/* Usage over a range (ms since the epoch, as strings: see the plugin's list). */
	/* network: 'wan', 'lan' or 'all' (WAN + LAN). */
	usageRanking: function(start, end, network) { return invoke(calls.usageRanking, [ String(start), String(end), network ]); },
	usageIncrements: function(mac, start, end, aggregation, network) {
		return invoke(calls.usageIncrements, [ mac || undefined, String(start), String(end), aggregation, network ]);
	},
	/* The export file: {filename, content_type, content} for CSV, the rows for JSON. */
	usageExport: function(format, start, end, network) {
		return invoke(calls.usageExport, [ format, String(start), String(end), 'daily', network ]);
	},
	forgetDevice: function(mac, rules) { return invoke(calls.forgetDevice, [ mac, rules ? true : undefined ]); },

	/* The dashboard's charts.js, loaded once as a plain script: it defines window.BandixCharts. */
	charts: function() {
		if (window.BandixCharts)
			return Promise.resolve(window.BandixCharts);
		if (!chartsLoading) {
			chartsLoading = new Promise(function(resolve, reject) {
				var script = document.createElement('script');
				script.src = L.resource('bandix/charts.js');
				script.onload = function() { resolve(window.BandixCharts); };
				script.onerror = function() { chartsLoading = null; reject(new Error(_('Cannot load bandix/charts.js'))); };
				document.head.appendChild(script);
			});
		}
		return chartsLoading;
	},

	rate: function(v) { return window.BandixCharts.formatRate(v, 'bits'); },
	bytes: function(v) { return window.BandixCharts.formatBytes(v); },
	/* The daemon's verdict: traffic from it or a neighbour confirmation within offline_timeout. */
	online: function(d) { return d.online === true; },
	name: function(d) { return d.hostname || d.mac; },

	ago: function(ms) {
		if (!ms)
			return '—';
		var s = (Date.now() - ms) / 1000;
		return s < 60 ? _('now') : _('%s ago').format(window.BandixCharts.formatDuration(s));
	},

	deviceUrl: function(mac) {
		return L.url('admin/status/bandix/device') + '?mac=' + encodeURIComponent(mac);
	},

	/* A node holding `value` as text, never as HTML. */
	text: function(tag, attrs, value) {
		var node = E(tag, attrs || {});
		node.appendChild(document.createTextNode(value == null ? '' : String(value)));
		return node;
	},

	/* Figures in a row: [[label, value, color?], ...]. */
	cards: function(items) {
		return E('div', { 'class': 'bandix-cards', 'style': 'display:flex;flex-wrap:wrap;gap:.5em 2em;margin:.5em 0 1em' },
			items.map(L.bind(function(i) {
				return E('div', { 'class': 'bandix-card' }, [
					this.text('div', { 'style': 'font-size:85%;opacity:.75' }, i[0]),
					this.text('div', { 'style': 'font-size:130%;font-weight:bold' + (i[2] ? ';color:' + i[2] : '') }, i[1])
				]);
			}, this)));
	},

	/* A LuCI table: headers [[label, numeric?], ...]; rows of cells (text, or a Node). */
	table: function(headers, rows, id, empty) {
		var t = E('table', { 'class': 'table', 'id': id || null }, [
			E('tr', { 'class': 'tr table-titles' }, headers.map(L.bind(function(h) {
				return this.text('th', { 'class': 'th', 'style': h[1] ? 'text-align:right' : null }, h[0]);
			}, this)))
		]);
		rows.forEach(L.bind(function(cells) {
			t.appendChild(E('tr', { 'class': 'tr' }, cells.map(L.bind(function(c, i) {
				var style = headers[i] && headers[i][1] ? 'text-align:right' : null;
				return (c instanceof Node) ? E('td', { 'class': 'td', 'style': style }, [ c ])
					: this.text('td', { 'class': 'td', 'style': style }, c);
			}, this))));
		}, this));
		if (!rows.length)
			t.appendChild(E('tr', { 'class': 'tr placeholder' }, [
				this.text('td', { 'class': 'td', 'colspan': headers.length }, empty || _('No data yet.'))
			]));
		return t;
	},

	/* Where a page shows the daemon's complaint (module off, daemon down). */
	notice: function(node, err) {
		node.replaceChildren(err ? this.text('div', { 'class': 'alert-message warning' }, err.message) : '');
	},

	/*
	 * A view's refresh cycle: show the first answer with update (or its error in
	 * status), then load and update every `seconds`. Returns refresh(), for a view
	 * whose filters change what load asks for. Answers can come back out of order
	 * (a filter typed while the last request runs): one older than what is shown
	 * is dropped, so the page never goes back to an earlier filter's results.
	 */
	follow: function(status, first, load, update, seconds) {
		var self = this, asked = 0, shown = 0;
		function refresh() {
			var n = ++asked;
			return load().then(function(data) {
				if (n > shown) { shown = n; update(data); }
			}, function(err) {
				if (n > shown) { shown = n; self.notice(status, err); }
			});
		}
		if (first instanceof Error)
			self.notice(status, first);
		else
			update(first);
		poll.add(refresh, seconds);
		return refresh;
	}
});
