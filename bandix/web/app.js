/*
 * bandix dashboard: one page at a time, chosen by the URL's hash; each page
 * makes one request per refresh and only while the tab is visible. All text
 * from the API goes into the DOM as text, never as HTML.
 */
(function () {
	'use strict';

	var C = window.BandixCharts;
	var main = document.getElementById('main');
	var statusLine = document.getElementById('status');
	var settings = {
		unit: localStorage.getItem('bandix.unit') || 'bits',
		theme: document.documentElement.dataset.theme
	};
	var current = null; // {page, timer, busy}

	/* -- helpers ----------------------------------------------------------- */

	function el(tag, attrs) {
		var node = document.createElement(tag);
		Object.keys(attrs || {}).forEach(function (k) {
			var v = attrs[k];
			if (v === undefined || v === null || v === false) return;
			if (k === 'text') node.textContent = v;
			else if (k === 'class') node.className = v;
			else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
			else node.setAttribute(k, v === true ? '' : v);
		});
		for (var i = 2; i < arguments.length; i++) {
			[].concat(arguments[i]).forEach(function (c) {
				if (c !== undefined && c !== null && c !== false)
					node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
			});
		}
		return node;
	}

	function api(path, method, body) {
		var opts = { method: method || 'GET', headers: { 'Accept': 'application/json' } };
		if (body !== undefined) {
			opts.body = JSON.stringify(body);
			opts.headers['Content-Type'] = 'application/json';
		}
		return fetch(path, opts).then(function (resp) {
			if (resp.status === 401 && path !== '/api/login') showLogin();
			return resp.json().catch(function () { return {}; }).then(function (json) {
				if (!resp.ok || json.status === 'error') {
					var err = new Error(json.message || resp.status + ' ' + resp.statusText);
					err.status = resp.status;
					throw err;
				}
				return json.data;
			});
		});
	}

	/* The devices answer as objects. Who the devices are comes only when it changed
	   since the version this page holds; the numbers come every time, value_fields
	   per device in the same order. */
	function devicesFeed() {
		var version = null, known = [];
		return function () {
			return api('/api/dashboard/devices' + (version ? '?known=' + encodeURIComponent(version) : ''))
				.then(function (data) {
					if (data.devices) {
						known = data.devices.map(function (row) {
							var o = {};
							data.device_fields.forEach(function (f, i) { o[f] = row[i]; });
							return o;
						});
						version = data.version;
					}
					var width = data.value_fields.length, values = data.values;
					return known.map(function (id, n) {
						var o = Object.assign({}, id);
						data.value_fields.forEach(function (f, i) { o[f] = values[n * width + i]; });
						return o;
					});
				});
		};
	}

	function rate(v) { return C.formatRate(v, settings.unit); }
	function bytes(v) { return C.formatBytes(v); }
	function ago(ms) {
		var s = (Date.now() - ms) / 1000;
		return s < 60 ? 'now' : C.formatDuration(s) + ' ago';
	}
	/* The daemon's own verdict: traffic from it or a neighbour confirmation within offline_timeout. */
	function online(d) { return d.online === true; }
	function name(d) { return d.hostname || d.mac; }
	function setStatus(text) { statusLine.textContent = text; }

	function stat(label, value, cls) {
		return el('div', { class: 'stat' }, el('div', { class: 'label', text: label }),
			el('div', { class: 'value ' + (cls || ''), text: value }));
	}

	function notice(text) { return el('div', { class: 'notice', text: text }); }

	/* A table with sortable columns. cols: [{key, label, value(row) -> sort key, cell(row) -> node|text, num}] */
	function sortableTable(cols, sort, onSort) {
		var head = el('tr');
		cols.forEach(function (c) {
			head.appendChild(el('th', {
				class: [c.num ? 'num' : '', c.value ? 'sortable' : '', sort.key === c.key ? 'sorted' : '',
					sort.key === c.key && sort.asc ? 'asc' : '', c.narrow ? 'hide-narrow' : ''].join(' '),
				text: c.label,
				onclick: c.value ? function () { onSort(c.key); } : null
			}));
		});
		var body = el('tbody');
		return { table: el('table', null, el('thead', null, head), body), body: body };
	}

	function fill(body, cols, rows, sort, onRow) {
		var col = cols.filter(function (c) { return c.key === sort.key; })[0];
		if (col && col.value) {
			rows = rows.slice().sort(function (a, b) {
				var x = col.value(a), y = col.value(b);
				return (x < y ? -1 : x > y ? 1 : 0) * (sort.asc ? 1 : -1);
			});
		}
		body.replaceChildren.apply(body, rows.map(function (r) {
			var tr = el('tr', { class: onRow ? 'link' : null, onclick: onRow ? function () { onRow(r); } : null });
			cols.forEach(function (c) {
				var v = c.cell(r);
				tr.appendChild(el('td', { class: (c.num ? 'num ' : '') + (c.cls || '') + (c.narrow ? ' hide-narrow' : '') },
					v instanceof Node ? v : String(v)));
			});
			return tr;
		}));
	}

	/* -- pages --------------------------------------------------------------- */

	var pages = {};

	pages.devices = function () {
		var sort = { key: 'wan_rx_rate', asc: false }, search = '', last = [], feed = devicesFeed();
		var cols = [
			{ key: 'name', label: 'Device', value: function (d) { return name(d).toLowerCase(); },
				cell: function (d) { return el('span', null, el('span', { class: 'dot' + (online(d) ? ' on' : ''),
					title: online(d) ? 'online since ' + new Date(d.online_since).toLocaleString() : 'offline' }), name(d)); } },
			{ key: 'ip', label: 'IP', value: function (d) { return d.ip; }, cell: function (d) { return d.ip || '—'; } },
			{ key: 'mac', label: 'MAC', narrow: true, value: function (d) { return d.mac; }, cell: function (d) { return d.mac; } },
			{ key: 'wan_rx_rate', label: 'Down', num: true, cls: 'down', value: function (d) { return d.wan_rx_rate; }, cell: function (d) { return rate(d.wan_rx_rate); } },
			{ key: 'wan_tx_rate', label: 'Up', num: true, cls: 'up', value: function (d) { return d.wan_tx_rate; }, cell: function (d) { return rate(d.wan_tx_rate); } },
			{ key: 'lan_rx_rate', label: 'LAN down', num: true, narrow: true, value: function (d) { return d.lan_rx_rate; }, cell: function (d) { return rate(d.lan_rx_rate); } },
			{ key: 'lan_tx_rate', label: 'LAN up', num: true, narrow: true, value: function (d) { return d.lan_tx_rate; }, cell: function (d) { return rate(d.lan_tx_rate); } },
			{ key: 'wan_rx_bytes', label: 'Downloaded', num: true, value: function (d) { return d.wan_rx_bytes; }, cell: function (d) { return bytes(d.wan_rx_bytes); } },
			{ key: 'wan_tx_bytes', label: 'Uploaded', num: true, value: function (d) { return d.wan_tx_bytes; }, cell: function (d) { return bytes(d.wan_tx_bytes); } },
			{ key: 'lan_bytes', label: 'LAN total', num: true, narrow: true, value: function (d) { return d.lan_bytes; }, cell: function (d) { return bytes(d.lan_bytes); } },
			{ key: 'limit', label: 'Limit ↓/↑', num: true, narrow: true,
				value: function (d) { return d.wan_rx_rate_limit + d.wan_tx_rate_limit; },
				cell: function (d) { return d.wan_rx_rate_limit || d.wan_tx_rate_limit ? (d.wan_rx_rate_limit ? rate(d.wan_rx_rate_limit) : '∞') + ' / ' + (d.wan_tx_rate_limit ? rate(d.wan_tx_rate_limit) : '∞') : '—'; } },
			{ key: 'seen', label: 'Seen', narrow: true, value: function (d) { return d.last_online_ts; }, cell: function (d) { return d.last_online_ts ? ago(d.last_online_ts) : '—'; } }
		];
		var t, totals = el('div', { class: 'cards' });
		function draw() {
			var rows = last.filter(function (d) {
				return !search || [d.hostname, d.ip, d.mac].join(' ').toLowerCase().indexOf(search) >= 0;
			});
			fill(t.body, cols, rows, sort, function (d) { location.hash = '#/device/' + encodeURIComponent(d.mac); });
			var sum = function (k) { return last.reduce(function (a, d) { return a + d[k]; }, 0); };
			totals.replaceChildren(stat('Devices online', last.filter(online).length + ' / ' + last.length),
				stat('Down', rate(sum('wan_rx_rate')), 'down'), stat('Up', rate(sum('wan_tx_rate')), 'up'),
				stat('Downloaded', bytes(sum('wan_rx_bytes'))), stat('Uploaded', bytes(sum('wan_tx_bytes'))));
		}
		function build() {
			t = sortableTable(cols, sort, function (key) {
				sort = { key: key, asc: sort.key === key ? !sort.asc : false };
				var fresh = build();
				wrap.replaceChildren(fresh);
				draw();
			});
			return t.table;
		}
		var wrap = el('div', { class: 'table-wrap' }, build());
		return {
			node: el('section', null, el('h1', { text: 'Devices' }), totals,
				el('div', { class: 'toolbar' }, el('input', { class: 'grow', type: 'search', placeholder: 'Search name, IP or MAC',
					'aria-label': 'Search', oninput: function (e) { search = e.target.value.toLowerCase(); draw(); } })),
				wrap),
			poll: function () {
				return feed().then(function (devices) { last = devices; draw(); });
			},
			redraw: draw
		};
	};

	pages.device = function (mac) {
		var samples = [], since = 0, level = 'day', levelRows = [], nextLevel = 0, nextExtras = 0, info = null;
		var title = el('h1', { text: mac }), cards = el('div', { class: 'cards' });
		var live = el('canvas', { class: 'chart', id: 'chart-realtime' });
		var hist = el('canvas', { class: 'chart', id: 'chart-history' });
		var domains = el('div'), conns = el('div');
		var levelSelect = el('select', { 'aria-label': 'History level', onchange: function (e) { level = e.target.value; nextLevel = 0; } },
			['day', 'week', 'month', 'year'].map(function (l) { return el('option', { value: l, text: l }); }));
		function legend(items) {
			return el('div', { class: 'legend' }, items.map(function (i) { return el('span', { style: '--c: var(' + i[1] + ')', text: i[0] }); }));
		}
		function color(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
		function draw() {
			if (!info) return;
			title.textContent = name(info) + (info.ip ? ' · ' + info.ip : '');
			cards.replaceChildren(stat('Down', rate(info.wan_rx_rate), 'down'), stat('Up', rate(info.wan_tx_rate), 'up'),
				stat('LAN down / up', rate(info.lan_rx_rate) + ' / ' + rate(info.lan_tx_rate)),
				stat('Downloaded', bytes(info.wan_rx_bytes)), stat('Uploaded', bytes(info.wan_tx_bytes)),
				stat('Limit ↓ / ↑', (info.wan_rx_rate_limit ? rate(info.wan_rx_rate_limit) : '—') + ' / ' +
					(info.wan_tx_rate_limit ? rate(info.wan_tx_rate_limit) : '—')),
				stat('Seen', info.last_online_ts ? ago(info.last_online_ts) : '—'));
			live.dataset.points = C.lineChart(live, [
				{ label: 'down', color: color('--down'), fill: true, points: samples.map(function (r) { return [r[0], r[5]]; }) },
				{ label: 'up', color: color('--up'), fill: true, points: samples.map(function (r) { return [r[0], r[6]]; }) },
				{ label: 'LAN', color: color('--lan'), points: samples.map(function (r) { return [r[0], r[3] + r[4]]; }) }
			], { formatY: rate }).points;
			hist.dataset.points = C.lineChart(hist, [
				{ label: 'down avg', color: color('--down'), fill: true, points: levelRows.map(function (r) { return [r[0], r[1]]; }) },
				{ label: 'down p95', color: color('--down'), width: 1, points: levelRows.map(function (r) { return [r[0], r[5]]; }) },
				{ label: 'up avg', color: color('--up'), fill: true, points: levelRows.map(function (r) { return [r[0], r[7]]; }) },
				{ label: 'up p95', color: color('--up'), width: 1, points: levelRows.map(function (r) { return [r[0], r[11]]; }) }
			], { formatY: rate, formatX: function (x) { return level === 'day' ? new Date(x).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : new Date(x).toLocaleDateString(); },
				empty: 'no closed ' + level + ' buckets yet' }).points;
		}
		function showDomains(rows) {
			if (rows === null) { domains.replaceChildren(notice('Flow analytics are off (--enable-flows).')); return; }
			var t = el('tbody');
			rows.forEach(function (r) {
				t.appendChild(el('tr', null, el('td', { text: r.domain }), el('td', { class: 'num down', text: bytes(r.down) }),
					el('td', { class: 'num up', text: bytes(r.up) })));
			});
			domains.replaceChildren(rows.length ? el('div', { class: 'table-wrap' }, el('table', null,
				el('thead', null, el('tr', null, el('th', { text: 'Domain (last hour)' }), el('th', { class: 'num', text: 'Down' }),
					el('th', { class: 'num', text: 'Up' }))), t)) : notice('No traffic with a domain in the last hour.'));
		}
		function showConnections(c) {
			if (c === null || c === undefined) { conns.replaceChildren(notice('No connection statistics for this device.')); return; }
			conns.replaceChildren(el('div', { class: 'cards' }, stat('Connections', c.tcp_connections + c.udp_connections),
				stat('TCP', c.tcp_connections), stat('UDP', c.udp_connections), stat('Established', c.established_tcp),
				stat('Time wait', c.time_wait_tcp), stat('Close wait', c.close_wait_tcp)));
		}
		return {
			node: el('section', null, el('div', { class: 'toolbar' }, el('a', { class: 'grow', href: '#/', text: '← Devices' }),
				el('button', { type: 'button', id: 'forget', text: 'Forget device…', title: 'Remove its totals, samples and history (its limits stay)',
					onclick: function () {
						if (!window.confirm('Forget ' + mac + '? Its totals, samples and history are removed; its limits, quota and name stay. It comes back from zero at its next packet.')) return;
						api('/api/traffic/devices', 'DELETE', { mac: mac }).then(function () { location.hash = '#/'; },
							function (err) { setStatus('error: ' + err.message); });
					} })), title, cards,
				el('div', { class: 'card' }, el('h2', { text: 'Realtime' }), live, legend([['down', '--down'], ['up', '--up'], ['LAN', '--lan']])),
				el('div', { class: 'card' }, el('div', { class: 'toolbar' }, el('h2', { class: 'grow', text: 'History' }), levelSelect),
					hist, legend([['down avg / p95', '--down'], ['up avg / p95', '--up']])),
				el('h2', { text: 'Top domains' }), domains, el('h2', { text: 'Connections' }), conns),
			poll: function () {
				var now = Date.now(), q = '/api/dashboard/device?mac=' + encodeURIComponent(mac) + '&since=' + since;
				if (now >= nextLevel) q += '&level=' + level;
				if (now >= nextExtras) q += '&extras=1';
				return api(q).then(function (data) {
					info = data.device;
					samples = samples.concat(data.metrics);
					if (samples.length) since = samples[samples.length - 1][0];
					var horizon = since - data.retention_seconds * 1000;
					samples = samples.filter(function (r) { return r[0] > horizon; });
					if (data.level) { levelRows = data.level.metrics; nextLevel = now + 30000; }
					if ('domains' in data) { showDomains(data.domains); showConnections(data.connections); nextExtras = now + 10000; }
					draw();
				});
			},
			redraw: draw
		};
	};

	var DAY_NAMES = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

	var QUOTA_STATES = { none: 'no quota', ok: 'within quota', blocked: 'blocked', throttled: 'throttled' };

	/* A rate field in the form's unit: '' or a number; bytes/s (0 = none). */
	function formRate(text, scale) { return text === '' ? 0 : Math.round(Number(text) * scale); }
	function unitSelect(nameAttr) {
		return el('select', { name: nameAttr || 'unit', 'aria-label': 'Limit unit' },
			el('option', { value: '125000', text: 'Mbit/s' }), el('option', { value: '1000', text: 'KB/s' }));
	}

	pages.limits = function () {
		var devices = [], rules = [], bindings = [], quotas = [], whitelist = { enabled: false, macs: [] };
		var defaults = { wan_rx_rate_limit: 0, wan_tx_rate_limit: 0, enabled: false };
		var ruleBody = el('tbody'), bindBody = el('tbody'), quotaBody = el('tbody'), whiteBody = el('tbody');
		var ruleError = el('div', { class: 'error', role: 'alert', id: 'rule-error' });
		var bindError = el('div', { class: 'error', role: 'alert', id: 'binding-error' });
		var defaultError = el('div', { class: 'error', role: 'alert', id: 'default-error' });
		var quotaError = el('div', { class: 'error', role: 'alert', id: 'quota-error' });
		var deviceList = el('datalist', { id: 'device-macs' });
		var defaultState = el('p', { class: 'muted', id: 'default-state' });
		function label(mac) {
			if (mac === '*') return 'Every other device';
			var d = devices.filter(function (x) { return x.mac === mac; })[0];
			return d && d.hostname ? d.hostname + ' (' + mac + ')' : mac;
		}
		function limitText(v) { return v ? rate(v) : 'no limit'; }
		function failed(box) { return function (e) { box.textContent = e.message; }; }
		function quotaUse(q) {
			var under = devices.filter(function (d) { return q.mac === '*' ? d.quota_bytes && !quotas.some(function (o) { return o.mac === d.mac; }) : d.mac === q.mac; });
			if (!under.length) return '—';
			return under.map(function (d) {
				return (q.mac === '*' ? name(d) + ': ' : '') + bytes(d.quota_used_bytes) + ' (' + QUOTA_STATES[d.quota_state] + ')';
			}).join(', ');
		}
		function resetText(q) {
			var hour = (q.reset_hour < 10 ? '0' : '') + q.reset_hour + ':00';
			if (q.period === 'day') return 'daily at ' + hour;
			if (q.period === 'week') return DAY_NAMES[q.reset_day - 1] + ' ' + hour;
			return 'day ' + q.reset_day + ', ' + hour;
		}
		function draw() {
			deviceList.replaceChildren.apply(deviceList, devices.map(function (d) { return el('option', { value: d.mac, text: name(d) }); }));
			ruleBody.replaceChildren.apply(ruleBody, rules.map(function (r) {
				return el('tr', null, el('td', { text: label(r.mac) }),
					el('td', { text: r.time_slot.days.map(function (d) { return DAY_NAMES[d - 1]; }).join(' ') }),
					el('td', { text: r.time_slot.start + '–' + r.time_slot.end }),
					el('td', { class: 'num down', text: limitText(r.wan_rx_rate_limit) }),
					el('td', { class: 'num up', text: limitText(r.wan_tx_rate_limit) }),
					el('td', null, el('button', { type: 'button', text: 'Edit', onclick: function () { editRule(r); } }), ' ',
						el('button', { type: 'button', text: 'Delete', onclick: function () {
							api('/api/traffic/limits/schedule', 'DELETE', { id: r.id }).then(load, failed(ruleError));
						} })));
			}));
			if (!rules.length) ruleBody.appendChild(el('tr', null, el('td', { colspan: 6, class: 'muted', text: 'No rules.' })));
			defaultState.textContent = defaults.enabled
				? 'In force: every device not on the whitelist, new ones from their first packet, is held to ' +
					limitText(defaults.wan_rx_rate_limit) + ' down / ' + limitText(defaults.wan_tx_rate_limit) + ' up.'
				: 'Off: only the rules above limit devices.';
			whiteBody.replaceChildren.apply(whiteBody, whitelist.macs.map(function (mac) {
				return el('tr', null, el('td', { text: label(mac) }), el('td', null, el('button', { type: 'button', text: 'Remove', onclick: function () {
					api('/api/traffic/rate_limit/whitelist', 'DELETE', { mac: mac }).then(load, failed(defaultError));
				} })));
			}));
			if (!whitelist.macs.length) whiteBody.appendChild(el('tr', null, el('td', { colspan: 2, class: 'muted', text: 'Nobody is exempt.' })));
			quotaBody.replaceChildren.apply(quotaBody, quotas.map(function (q) {
				var when = q.action === 'block' ? 'block WAN' : 'throttle to ' + limitText(q.throttle_rx_rate) + ' / ' + limitText(q.throttle_tx_rate);
				return el('tr', null, el('td', { text: label(q.mac) }),
					el('td', { class: 'num', text: bytes(q.bytes) + ' / ' + q.period }),
					el('td', { text: { rx: 'download', tx: 'upload', both: 'both' }[q.direction] }),
					el('td', { text: resetText(q) }), el('td', { text: when }),
					el('td', { class: 'quota-use', text: quotaUse(q) }),
					el('td', null, el('button', { type: 'button', text: 'Edit', onclick: function () { editQuota(q); } }), ' ',
						el('button', { type: 'button', text: 'Delete', onclick: function () {
							api('/api/traffic/quotas', 'DELETE', { id: q.id }).then(load, failed(quotaError));
						} })));
			}));
			if (!quotas.length) quotaBody.appendChild(el('tr', null, el('td', { colspan: 7, class: 'muted', text: 'No quotas.' })));
			bindBody.replaceChildren.apply(bindBody, bindings.map(function (b) {
				return el('tr', null, el('td', { text: b.mac }), el('td', { text: b.hostname }),
					el('td', null, el('button', { type: 'button', text: 'Remove', onclick: function () {
						api('/api/traffic/bindings', 'POST', { mac: b.mac, hostname: '' }).then(load, failed(bindError));
					} })));
			}));
			if (!bindings.length) bindBody.appendChild(el('tr', null, el('td', { colspan: 3, class: 'muted', text: 'No bindings.' })));
		}
		function load() {
			return Promise.all([api('/api/traffic/devices'), api('/api/traffic/limits/schedule'), api('/api/traffic/bindings'),
				api('/api/traffic/rate_limit/default'), api('/api/traffic/rate_limit/whitelist'), api('/api/traffic/quotas')])
				.then(function (res) {
					devices = res[0].devices; rules = res[1].limits; bindings = res[2].bindings;
					defaults = res[3]; whitelist = res[4]; quotas = res[5].quotas;
					draw();
					var f = defaultForm;
					f.unit.value = '125000';
					f.down.value = defaults.wan_rx_rate_limit ? defaults.wan_rx_rate_limit / 125000 : '';
					f.up.value = defaults.wan_tx_rate_limit ? defaults.wan_tx_rate_limit / 125000 : '';
					f.enabled.checked = defaults.enabled;
				});
		}
		var ruleForm = el('form', { class: 'grid', id: 'rule-form', onsubmit: function (e) {
			e.preventDefault();
			var f = e.target, days = [], scale = Number(f.unit.value);
			f.querySelectorAll('input[name=day]:checked').forEach(function (c) { days.push(Number(c.value)); });
			var body = {
				mac: f.mac.value.trim(), time_slot: { start: f.start.value, end: f.end.value, days: days },
				wan_rx_rate_limit: formRate(f.down.value, scale), wan_tx_rate_limit: formRate(f.up.value, scale)
			};
			if (f.rule_id.value) body.id = f.rule_id.value;
			ruleError.textContent = '';
			api('/api/traffic/limits/schedule', body.id ? 'PUT' : 'POST', body).then(function () {
				f.rule_id.value = ''; f.querySelector('button[type=submit]').textContent = 'Add or change rule';
				return load();
			}, failed(ruleError));
		} },
			el('input', { type: 'hidden', name: 'rule_id' }),
			el('label', null, 'Device (MAC)', el('input', { name: 'mac', list: 'device-macs', required: true, placeholder: 'aa:bb:cc:dd:ee:ff' })),
			el('label', null, 'From', el('input', { name: 'start', value: '00:00', placeholder: 'HH:MM' })),
			el('label', null, 'To', el('input', { name: 'end', value: '24:00', placeholder: 'HH:MM' })),
			el('label', null, 'Down limit', el('input', { name: 'down', inputmode: 'decimal', placeholder: 'none' })),
			el('label', null, 'Up limit', el('input', { name: 'up', inputmode: 'decimal', placeholder: 'none' })),
			el('label', null, 'Unit', unitSelect()),
			el('div', { class: 'days' }, DAY_NAMES.map(function (d, i) {
				return el('label', null, el('input', { type: 'checkbox', name: 'day', value: i + 1, checked: true }), d);
			})),
			el('button', { class: 'primary', type: 'submit', text: 'Add or change rule' }));
		function editRule(r) {
			var f = ruleForm;
			f.rule_id.value = r.id; f.mac.value = r.mac; f.start.value = r.time_slot.start; f.end.value = r.time_slot.end;
			f.unit.value = '1000';
			f.down.value = r.wan_rx_rate_limit ? r.wan_rx_rate_limit / 1000 : '';
			f.up.value = r.wan_tx_rate_limit ? r.wan_tx_rate_limit / 1000 : '';
			f.querySelectorAll('input[name=day]').forEach(function (c) { c.checked = r.time_slot.days.indexOf(Number(c.value)) >= 0; });
			f.querySelector('button[type=submit]').textContent = 'Save rule';
		}
		var defaultForm = el('form', { class: 'grid', id: 'default-form', onsubmit: function (e) {
			e.preventDefault();
			var f = e.target, scale = Number(f.unit.value);
			defaultError.textContent = '';
			api('/api/traffic/rate_limit/default', 'POST', {
				wan_rx_rate_limit: formRate(f.down.value, scale), wan_tx_rate_limit: formRate(f.up.value, scale)
			}).then(function () {
				return api('/api/traffic/rate_limit/whitelist/enabled', 'POST', { enabled: f.enabled.checked });
			}).then(load, failed(defaultError));
		} },
			el('label', null, 'Down limit', el('input', { name: 'down', inputmode: 'decimal', placeholder: 'none' })),
			el('label', null, 'Up limit', el('input', { name: 'up', inputmode: 'decimal', placeholder: 'none' })),
			el('label', null, 'Unit', unitSelect()),
			el('label', null, 'In force', el('input', { type: 'checkbox', name: 'enabled' })),
			el('button', { class: 'primary', type: 'submit', text: 'Save default' }));
		var whiteForm = el('form', { class: 'grid', id: 'whitelist-form', onsubmit: function (e) {
			e.preventDefault();
			defaultError.textContent = '';
			api('/api/traffic/rate_limit/whitelist', 'POST', { mac: e.target.mac.value.trim() }).then(load, failed(defaultError));
		} },
			el('label', null, 'Exempt device (MAC)', el('input', { name: 'mac', list: 'device-macs', required: true })),
			el('button', { type: 'submit', text: 'Add to whitelist' }));
		var quotaForm = el('form', { class: 'grid', id: 'quota-form', onsubmit: function (e) {
			e.preventDefault();
			var f = e.target, scale = Number(f.unit.value);
			var body = {
				mac: f.mac.value.trim(), period: f.period.value, bytes: Math.round(Number(f.amount.value) * Number(f.size.value)),
				direction: f.direction.value, action: f.action.value,
				throttle_rx_rate: formRate(f.down.value, scale), throttle_tx_rate: formRate(f.up.value, scale),
				reset_day: Number(f.reset_day.value), reset_hour: Number(f.reset_hour.value)
			};
			if (f.quota_id.value) body.id = f.quota_id.value;
			quotaError.textContent = '';
			api('/api/traffic/quotas', body.id ? 'PUT' : 'POST', body).then(function () {
				f.quota_id.value = ''; f.querySelector('button[type=submit]').textContent = 'Set quota';
				return load();
			}, failed(quotaError));
		} },
			el('input', { type: 'hidden', name: 'quota_id' }),
			el('label', null, 'Device (MAC, or * for every other)', el('input', { name: 'mac', list: 'device-macs', required: true })),
			el('label', null, 'Allowance', el('input', { name: 'amount', inputmode: 'decimal', required: true, placeholder: 'e.g. 5' })),
			el('label', null, 'Size', el('select', { name: 'size' }, el('option', { value: '1073741824', text: 'GB' }), el('option', { value: '1048576', text: 'MB' }))),
			el('label', null, 'Per', el('select', { name: 'period' }, ['day', 'week', 'month'].map(function (p) { return el('option', { value: p, text: p }); }))),
			el('label', null, 'Counts', el('select', { name: 'direction' }, el('option', { value: 'both', text: 'download + upload' }),
				el('option', { value: 'rx', text: 'download' }), el('option', { value: 'tx', text: 'upload' }))),
			el('label', null, 'Starts on (weekday 1-7 / day 1-28)', el('input', { name: 'reset_day', type: 'number', min: 1, max: 28, value: 1 })),
			el('label', null, 'At hour', el('input', { name: 'reset_hour', type: 'number', min: 0, max: 23, value: 0 })),
			el('label', null, 'When used up', el('select', { name: 'action' }, el('option', { value: 'block', text: 'block WAN' }),
				el('option', { value: 'throttle', text: 'throttle' }))),
			el('label', null, 'Throttle down', el('input', { name: 'down', inputmode: 'decimal', placeholder: 'none' })),
			el('label', null, 'Throttle up', el('input', { name: 'up', inputmode: 'decimal', placeholder: 'none' })),
			el('label', null, 'Unit', unitSelect()),
			el('button', { class: 'primary', type: 'submit', text: 'Set quota' }));
		function editQuota(q) {
			var f = quotaForm, gb = q.bytes % 1073741824 === 0;
			f.quota_id.value = q.id; f.mac.value = q.mac; f.period.value = q.period; f.direction.value = q.direction;
			f.size.value = gb ? '1073741824' : '1048576'; f.amount.value = q.bytes / (gb ? 1073741824 : 1048576);
			f.action.value = q.action; f.reset_day.value = q.reset_day; f.reset_hour.value = q.reset_hour; f.unit.value = '1000';
			f.down.value = q.throttle_rx_rate ? q.throttle_rx_rate / 1000 : '';
			f.up.value = q.throttle_tx_rate ? q.throttle_tx_rate / 1000 : '';
			f.querySelector('button[type=submit]').textContent = 'Save quota';
		}
		var bindForm = el('form', { class: 'grid', id: 'binding-form', onsubmit: function (e) {
			e.preventDefault();
			bindError.textContent = '';
			api('/api/traffic/bindings', 'POST', { mac: e.target.mac.value.trim(), hostname: e.target.hostname.value })
				.then(load, failed(bindError));
		} },
			el('label', null, 'Device (MAC)', el('input', { name: 'mac', list: 'device-macs', required: true })),
			el('label', null, 'Name', el('input', { name: 'hostname', placeholder: 'e.g. Living room TV' })),
			el('button', { class: 'primary', type: 'submit', text: 'Save name' }));
		function table(id, headers, body) {
			return el('div', { class: 'table-wrap' }, el('table', { id: id }, el('thead', null, el('tr', null,
				headers.map(function (h) { return el('th', { text: h }); }))), body));
		}
		return {
			node: el('section', null, el('h1', { text: 'Rate limits' }), deviceList,
				el('p', { class: 'muted', text: 'WAN limits per device and weekly time slot, in the router\'s time zone. Where rules overlap, the lowest limit wins.' }),
				table('rules', ['Device', 'Days', 'Time', 'Down', 'Up', ''], ruleBody),
				el('div', { class: 'card' }, ruleForm, ruleError),
				el('h2', { text: 'Default limit' }), defaultState,
				el('div', { class: 'card' }, defaultForm),
				table('whitelist', ['Exempt from the default limit and quota', ''], whiteBody),
				el('div', { class: 'card' }, whiteForm, defaultError),
				el('h2', { text: 'Data quotas' }),
				el('p', { class: 'muted', text: 'WAN bytes per day, week or month in the router\'s time zone; used up, the device is blocked (it still reaches this router) or throttled until the period starts again.' }),
				table('quotas', ['Device', 'Allowance', 'Counts', 'Period starts', 'When used up', 'Used this period', ''], quotaBody),
				el('div', { class: 'card' }, quotaForm, quotaError),
				el('h2', { text: 'Hostname bindings' }),
				table('bindings', ['MAC', 'Name', ''], bindBody),
				el('div', { class: 'card' }, bindForm, bindError)),
			load: load,
			redraw: draw
		};
	};

	pages.connections = function () {
		var sort = { key: 'total', asc: false }, data = null;
		var cols = [
			{ key: 'mac', label: 'Device', value: function (d) { return d.mac_address; }, cell: function (d) { return d.mac_address; } },
			{ key: 'ip', label: 'IP', value: function (d) { return d.ip_address; }, cell: function (d) { return d.ip_address || '—'; } },
			{ key: 'total', label: 'Total', num: true, value: function (d) { return d.total_connections; }, cell: function (d) { return d.total_connections; } },
			{ key: 'tcp', label: 'TCP', num: true, value: function (d) { return d.tcp_connections; }, cell: function (d) { return d.tcp_connections; } },
			{ key: 'udp', label: 'UDP', num: true, value: function (d) { return d.udp_connections; }, cell: function (d) { return d.udp_connections; } },
			{ key: 'est', label: 'Established', num: true, value: function (d) { return d.established_tcp; }, cell: function (d) { return d.established_tcp; } },
			{ key: 'tw', label: 'Time wait', num: true, narrow: true, value: function (d) { return d.time_wait_tcp; }, cell: function (d) { return d.time_wait_tcp; } },
			{ key: 'cw', label: 'Close wait', num: true, narrow: true, value: function (d) { return d.close_wait_tcp; }, cell: function (d) { return d.close_wait_tcp; } }
		];
		var cards = el('div', { class: 'cards' }), wrap = el('div', { class: 'table-wrap' }), t;
		function build() {
			t = sortableTable(cols, sort, function (key) { sort = { key: key, asc: sort.key === key ? !sort.asc : false }; wrap.replaceChildren(build()); draw(); });
			return t.table;
		}
		wrap.appendChild(build());
		function draw() {
			if (!data) return;
			var g = data.global_stats;
			cards.replaceChildren(stat('Connections', g.total_connections), stat('TCP', g.tcp_connections), stat('UDP', g.udp_connections),
				stat('Established', g.established_tcp), stat('Time wait', g.time_wait_tcp), stat('Close wait', g.close_wait_tcp));
			fill(t.body, cols, data.devices, sort, function (d) { location.hash = '#/device/' + encodeURIComponent(d.mac_address); });
		}
		return {
			node: el('section', null, el('h1', { text: 'Connections' }), cards, wrap),
			poll: function () { return api('/api/connection/devices').then(function (d) { data = d; draw(); }); },
			redraw: draw
		};
	};

	pages.dns = function () {
		var filters = { domain: '', device: '', is_query: '' }, page = 1, pageSize = 50, data = null;
		var cards = el('div', { class: 'cards' }), body = el('tbody'), pageInfo = el('span', { class: 'muted' });
		function draw() {
			if (!data) return;
			var s = data.stats;
			cards.replaceChildren(stat('Queries', s.total_queries), stat('Answered', s.queries_with_response),
				stat('Success rate', (s.success_rate * 100).toFixed(1) + ' %'), stat('Avg response', s.avg_response_time_ms + ' ms'),
				stat('p95 response', s.response_time_percentiles.p95 + ' ms'), stat('Lost / malformed', s.lost_events + ' / ' + s.malformed_packets));
			body.replaceChildren.apply(body, data.queries.map(function (r) {
				return el('tr', null, el('td', { text: r.timestamp_formatted.slice(11) }), el('td', { text: r.device_name || r.device_mac }),
					el('td', { text: r.is_query ? 'query' : 'response' }), el('td', { text: r.domain }), el('td', { text: r.query_type }),
					el('td', { text: r.response_code }), el('td', { class: 'num', text: r.is_query ? '' : r.response_time_ms + ' ms' }),
					el('td', { class: 'hide-narrow', text: r.response_ips.join(', ') }));
			}));
			var pages = Math.max(1, Math.ceil(data.total / pageSize));
			pageInfo.textContent = 'page ' + data.page + ' of ' + pages + ' · ' + data.total + ' records';
		}
		function input(key, placeholder) {
			return el('input', { type: 'search', placeholder: placeholder, 'aria-label': placeholder,
				oninput: function (e) { filters[key] = e.target.value; page = 1; refresh(); } });
		}
		return {
			node: el('section', null, el('h1', { text: 'DNS' }), cards,
				el('div', { class: 'toolbar' }, input('domain', 'Domain contains'), input('device', 'Device (name, MAC or IP)'),
					el('select', { 'aria-label': 'Kind', onchange: function (e) { filters.is_query = e.target.value; page = 1; refresh(); } },
						el('option', { value: '', text: 'queries and responses' }), el('option', { value: 'true', text: 'queries' }),
						el('option', { value: 'false', text: 'responses' }))),
				el('div', { class: 'table-wrap' }, el('table', null, el('thead', null, el('tr', null,
					['Time', 'Device', 'Kind', 'Domain', 'Type', 'Answer', 'Time taken', 'Addresses'].map(function (h, i) {
						return el('th', { class: i === 6 ? 'num' : i === 7 ? 'hide-narrow' : '', text: h });
					}))), body)),
				el('div', { class: 'pager' }, el('button', { type: 'button', text: '‹ Newer', onclick: function () { if (page > 1) { page--; refresh(); } } }),
					el('button', { type: 'button', text: 'Older ›', onclick: function () { if (data && page * pageSize < data.total) { page++; refresh(); } } }), pageInfo)),
			poll: function () {
				var q = '/api/dashboard/dns?page=' + page + '&page_size=' + pageSize;
				Object.keys(filters).forEach(function (k) { if (filters[k]) q += '&' + k + '=' + encodeURIComponent(filters[k]); });
				return api(q).then(function (d) { data = d; draw(); });
			},
			redraw: draw
		};
	};

	pages.domains = function () {
		var by = 'domain', lookback = 60, report = null;
		var body = el('div');
		function cell(v, unit) {
			if (v === null || v === undefined) return '—';
			if (unit === 'bytes') return bytes(v);
			if (unit === 'pct') return v.toFixed(1) + ' %';
			if (unit === 'ms') return v.toFixed(1) + ' ms';
			return String(v);
		}
		function draw() {
			if (!report) return;
			var cols = report.columns;
			var tbody = el('tbody');
			report.rows.forEach(function (r) {
				tbody.appendChild(el('tr', null, cols.map(function (c) {
					return el('td', { class: c.unit === 'text' ? '' : 'num', text: cell(r[c.key], c.unit) });
				})));
			});
			body.replaceChildren(el('h2', { text: report.title }), report.rows.length ? el('div', { class: 'table-wrap' }, el('table', null,
				el('thead', null, el('tr', null, cols.map(function (c) { return el('th', { class: c.unit === 'text' ? '' : 'num', text: c.label }); }))), tbody))
				: notice('No flows in this window.'));
		}
		return {
			node: el('section', null, el('h1', { text: 'Where the traffic goes' }),
				el('div', { class: 'toolbar' },
					el('select', { 'aria-label': 'Report', onchange: function (e) { by = e.target.value; refresh(); } },
						[['domain', 'by domain'], ['ip', 'by remote address'], ['lan', 'by device address'], ['flow', 'by flow'],
							['sni', 'server names'], ['dns', 'DNS names'], ['quic', 'QUIC'], ['dohdot', 'encrypted DNS'], ['coverage', 'attribution coverage']]
							.map(function (o) { return el('option', { value: o[0], text: o[1] }); })),
					el('select', { 'aria-label': 'Window', onchange: function (e) { lookback = Number(e.target.value); refresh(); } },
						[[60, 'last hour'], [1440, 'last day'], [10080, 'last week']].map(function (o) { return el('option', { value: o[0], text: o[1] }); }))),
				body),
			interval: 5000,
			poll: function () {
				return api('/api/flows/top?by=' + by + '&lookback_minutes=' + lookback + '&limit=50').then(function (d) { report = d; draw(); });
			},
			redraw: draw
		};
	};

	/* Usage over a range: devices ranked by bytes (WAN, LAN or both) with their share, one
	   device's bytes per local hour or day (the router's time zone), and the export as a file. */
	var RANGES = [['today', 'today'], ['yesterday', 'yesterday'], ['7d', 'last 7 days'], ['30d', 'last 30 days'],
		['month', 'this month']];
	function rangeOf(key, now) {
		var d = new Date(now), midnight = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
		if (key === 'yesterday') return [new Date(d.getFullYear(), d.getMonth(), d.getDate() - 1).getTime(), midnight];
		if (key === '7d') return [new Date(d.getFullYear(), d.getMonth(), d.getDate() - 6).getTime(), now];
		if (key === '30d') return [new Date(d.getFullYear(), d.getMonth(), d.getDate() - 29).getTime(), now];
		if (key === 'month') return [new Date(d.getFullYear(), d.getMonth(), 1).getTime(), now];
		return [midnight, now];
	}
	var NETWORKS = [['wan', 'WAN'], ['lan', 'LAN'], ['all', 'WAN + LAN']];
	function usageQuery(range, network) {
		return 'start_ms=' + range[0] + '&end_ms=' + range[1] + '&network_type=' + network;
	}
	function exportLink(fmt, range, network) {
		return '/api/traffic/usage/export?format=' + fmt + '&aggregation=daily&' + usageQuery(range, network);
	}

	pages.usage = function () {
		var rangeKey = 'today', network = 'wan', aggregation = 'hourly', ranking = null, chosen = null, increments = null;
		var body = el('tbody'), cards = el('div', { class: 'cards' }), covered = el('p', { class: 'muted' });
		var chart = el('canvas', { class: 'chart', id: 'chart-usage' }), chartTitle = el('h2', { class: 'grow', text: 'Per period' });
		var csv = el('a', { class: 'button', id: 'export-csv', download: '', text: 'Export CSV' });
		var json = el('a', { class: 'button', id: 'export-json', download: '', text: 'JSON' });
		function color(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
		function drawChart() {
			if (!increments) return;
			chartTitle.textContent = (chosen ? name(chosen) : 'All devices') + ', per ' + (aggregation === 'daily' ? 'day' : 'hour');
			chart.dataset.bars = C.barChart(chart, increments.increments.map(function (i) {
				return { label: aggregation === 'daily' ? i.date.slice(5) : i.date.slice(11), values: [i.rx_bytes, i.tx_bytes] };
			}), { colors: [color('--down'), color('--up')], formatY: bytes }).bars;
		}
		function draw() {
			if (!ranking) return;
			cards.replaceChildren(stat('Downloaded', bytes(ranking.rx_bytes), 'down'), stat('Uploaded', bytes(ranking.tx_bytes), 'up'),
				stat('Total', bytes(ranking.total_bytes)), stat('Devices with traffic', ranking.devices.length));
			var label = NETWORKS.filter(function (o) { return o[0] === ranking.network_type; })[0][1];
			covered.textContent = label + ' bytes from ' + new Date(ranking.start_ms).toLocaleString() + ' to ' +
				new Date(ranking.end_ms).toLocaleString() + ' (' + ranking.level + ' history, ' + ranking.resolution_seconds + ' s buckets)';
			body.replaceChildren.apply(body, ranking.devices.length ? ranking.devices.map(function (d, i) {
				return el('tr', { class: 'link' + (chosen && chosen.mac === d.mac ? ' chosen' : ''), onclick: function () { choose(d); } },
					el('td', { class: 'num', text: String(i + 1) }), el('td', { text: name(d) }), el('td', { class: 'hide-narrow', text: d.ip || '—' }),
					el('td', { class: 'num down', text: bytes(d.rx_bytes) }), el('td', { class: 'num up', text: bytes(d.tx_bytes) }),
					el('td', { class: 'num', text: bytes(d.total_bytes) }),
					el('td', { class: 'share' }, el('span', { class: 'bar', style: 'width:' + (d.share * 100).toFixed(1) + '%' }),
						el('span', { text: (d.share * 100).toFixed(1) + ' %' })));
			}) : [el('tr', null, el('td', { colspan: '7', class: 'muted', text: 'No ' + label + ' traffic in this range.' }))]);
			drawChart();
		}
		function choose(d) {
			chosen = chosen && chosen.mac === d.mac ? null : d;
			loadIncrements().then(draw);
		}
		function loadIncrements() {
			var r = rangeOf(rangeKey, Date.now());
			var q = '/api/traffic/usage/increments?aggregation=' + aggregation + '&' + usageQuery(r, network);
			if (chosen) q += '&mac=' + encodeURIComponent(chosen.mac);
			return api(q).then(function (d) { increments = d; });
		}
		function refreshAll() { if (current && current.page === page) refresh(); }
		var aggSelect = el('select', { 'aria-label': 'Per', id: 'usage-aggregation', onchange: function (e) {
			aggregation = e.target.value;
			loadIncrements().then(drawChart);
		} }, [['hourly', 'per hour'], ['daily', 'per day']].map(function (o) { return el('option', { value: o[0], text: o[1] }); }));
		var page = {
			node: el('section', null, el('h1', { text: 'Usage' }),
				el('div', { class: 'toolbar' },
					el('select', { 'aria-label': 'Range', id: 'usage-range', onchange: function (e) {
						rangeKey = e.target.value;
						aggregation = rangeKey === 'today' || rangeKey === 'yesterday' ? 'hourly' : 'daily';
						aggSelect.value = aggregation;
						refreshAll();
					} }, RANGES.map(function (o) { return el('option', { value: o[0], text: o[1] }); })),
					el('select', { 'aria-label': 'Network', id: 'usage-network', onchange: function (e) {
						network = e.target.value;
						refreshAll();
					} }, NETWORKS.map(function (o) { return el('option', { value: o[0], text: o[1] }); })),
					el('span', { class: 'grow' }), csv, json),
				cards, covered,
				el('div', { class: 'table-wrap' }, el('table', { id: 'usage-ranking' },
					el('thead', null, el('tr', null, ['#', 'Device', 'IP', 'Down', 'Up', 'Total', 'Share'].map(function (h, i) {
						return el('th', { class: i === 2 ? 'hide-narrow' : i >= 3 && i <= 5 ? 'num' : '', text: h });
					}))), body)),
				el('div', { class: 'card' }, el('div', { class: 'toolbar' }, chartTitle, aggSelect), chart,
					el('div', { class: 'legend' }, el('span', { style: '--c: var(--down)', text: 'down' }), el('span', { style: '--c: var(--up)', text: 'up' })))),
			interval: 10000,
			poll: function () {
				var r = rangeOf(rangeKey, Date.now());
				csv.setAttribute('href', exportLink('csv', r, network));
				json.setAttribute('href', exportLink('json', r, network));
				return Promise.all([api('/api/traffic/usage/ranking?' + usageQuery(r, network)), loadIncrements()])
					.then(function (res) { ranking = res[0]; draw(); });
			},
			redraw: draw
		};
		return page;
	};

	/* Off the router the API wants the token (UCI api_token) once; the answer sets an
	   HttpOnly cookie, so the page never holds the token afterwards. */
	function showLogin() {
		if (current) clearInterval(current.timer);
		current = null;
		if (document.getElementById('login')) return;
		var input = el('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true,
			'aria-label': 'API token' });
		var error = el('p', { class: 'error' });
		main.replaceChildren(el('section', null, el('h1', { text: 'Log in' }),
			el('p', { text: 'This router wants its bandix API token: uci get bandix.config.api_token' }),
			el('form', { id: 'login', onsubmit: function (e) {
				e.preventDefault();
				api('/api/login', 'POST', { token: input.value }).then(function () {
					route();
				}, function (err) { error.textContent = err.message; });
			} }, input, el('button', { type: 'submit', text: 'Log in' }), error)));
		input.focus();
	}

	/* -- routing and polling ----------------------------------------------------- */

	function refresh() {
		if (!current || !current.page.poll || current.busy || document.hidden) return;
		current.busy = true;
		var started = current;
		current.page.poll().then(function () {
			setStatus('updated ' + new Date().toLocaleTimeString());
		}, function (err) {
			if (started !== current) return;
			if (err.status === 503) main.querySelector('section').replaceChildren(notice(err.message));
			setStatus('error: ' + err.message);
		}).then(function () { started.busy = false; });
	}

	function route() {
		var hash = location.hash.replace(/^#\/?/, '');
		var parts = hash.split('/'), key = parts[0] || 'devices', page;
		if (current) clearInterval(current.timer);
		if (key === 'device' && parts[1]) page = pages.device(decodeURIComponent(parts[1]));
		else if (pages[key] && key !== 'device') page = pages[key]();
		else { key = 'devices'; page = pages.devices(); }
		document.querySelectorAll('nav a').forEach(function (a) { a.classList.toggle('active', a.dataset.page === key); });
		main.replaceChildren(page.node);
		current = { page: page, busy: false, timer: null };
		if (page.load) page.load().catch(function (err) { setStatus('error: ' + err.message); });
		if (page.poll) {
			current.timer = setInterval(refresh, page.interval || 1000);
			refresh();
		}
	}

	var unitButton = document.getElementById('unit');
	function showUnit() { unitButton.textContent = settings.unit === 'bytes' ? 'B/s' : 'bit/s'; }
	unitButton.addEventListener('click', function () {
		settings.unit = settings.unit === 'bytes' ? 'bits' : 'bytes';
		localStorage.setItem('bandix.unit', settings.unit);
		showUnit();
		if (current && current.page.redraw) current.page.redraw();
	});
	document.getElementById('theme').addEventListener('click', function () {
		settings.theme = settings.theme === 'dark' ? 'light' : 'dark';
		document.documentElement.dataset.theme = settings.theme;
		localStorage.setItem('bandix.theme', settings.theme);
		if (current && current.page.redraw) current.page.redraw();
	});
	document.addEventListener('visibilitychange', refresh);
	window.addEventListener('hashchange', route);
	showUnit();
	route();
})();
