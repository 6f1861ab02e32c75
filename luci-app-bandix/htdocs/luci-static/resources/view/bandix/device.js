'use strict';
'require view';
'require poll';
'require ui';
'require bandix.api as api';

/*
 * One device (?mac=): live rates, its realtime and history charts, top
 * domains and connections, and its name. Each refresh is one call that asks
 * for the samples not yet shown; the history level every 30 s, domains and
 * connections every 10 s.
 */

var LEVELS = [ 'day', 'week', 'month', 'year' ];

function requestedMac() {
	var m = /[?&]mac=([^&]*)/.exec(window.location.search);
	return m ? decodeURIComponent(m[1]) : null;
}

return view.extend({
	load: function() {
		return Promise.all([ api.charts(), requestedMac() ? null : api.devicesFeed()() ]);
	},

	/* No device asked for: pick one. */
	renderPicker: function(devices) {
		var select = E('select', { 'class': 'cbi-input-select', 'id': 'bandix-device-picker', 'change': function(ev) {
			if (ev.target.value)
				window.location.href = api.deviceUrl(ev.target.value);
		} }, [ E('option', { 'value': '' }, [ _('Choose a device…') ]) ]);
		devices.forEach(function(d) {
			select.appendChild(api.text('option', { 'value': d.mac }, api.name(d) + (d.ip ? ' (' + d.ip + ')' : '')));
		});
		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Bandix: device detail') ]),
			E('div', { 'class': 'cbi-section' }, [ select ])
		]);
	},

	render: function(res) {
		var C = res[0], mac = requestedMac();
		if (!mac)
			return this.renderPicker(res[1]);

		var samples = [], since = 0, level = 'day', levelRows = [], nextLevel = 0, nextExtras = 0;
		var title = api.text('h2', {}, mac), status = E('div'), cards = E('div');
		var live = E('canvas', { 'id': 'bandix-chart-realtime', 'style': 'width:100%;height:200px;display:block' });
		var hist = E('canvas', { 'id': 'bandix-chart-history', 'style': 'width:100%;height:200px;display:block' });
		var domains = E('div', { 'id': 'bandix-domains' }), conns = E('div', { 'id': 'bandix-connections' });
		var levelSelect = E('select', { 'class': 'cbi-input-select', 'change': function(ev) { level = ev.target.value; nextLevel = 0; refresh(); } },
			LEVELS.map(function(l) { return E('option', { 'value': l }, [ l ]); }));
		var nameInput = E('input', { 'class': 'cbi-input-text', 'id': 'bandix-name', 'placeholder': _('e.g. Living room TV') });
		var nameButton = E('button', { 'class': 'cbi-button cbi-button-save', 'click': function() {
			return api.setBinding(mac, nameInput.value.trim()).then(function() {
				ui.addNotification(null, E('p', {}, [ _('Name saved.') ]), 'info');
			}, function(err) {
				ui.addNotification(null, E('p', {}, [ err.message ]), 'error');
			});
		} }, [ _('Save name') ]);
		var forgetButton = E('button', { 'class': 'cbi-button cbi-button-remove', 'id': 'bandix-forget', 'click': function() {
			if (!window.confirm(_('Forget this device? Its totals, samples and history are removed; its limits, quota and name stay. It comes back from zero at its next packet.')))
				return;
			return api.forgetDevice(mac).then(function() {
				ui.addNotification(null, E('p', {}, [ _('Device forgotten.') ]), 'info');
			}, function(err) {
				ui.addNotification(null, E('p', {}, [ err.message ]), 'error');
			});
		} }, [ _('Forget device') ]);

		function draw(info) {
			title.textContent = api.name(info) + (info.ip ? ' · ' + info.ip : '');
			cards.replaceChildren(api.cards([
				[ _('Download'), api.rate(info.wan_rx_rate), api.COLORS.down ],
				[ _('Upload'), api.rate(info.wan_tx_rate), api.COLORS.up ],
				[ _('LAN down / up'), api.rate(info.lan_rx_rate) + ' / ' + api.rate(info.lan_tx_rate) ],
				[ _('Downloaded'), api.bytes(info.wan_rx_bytes) ],
				[ _('Uploaded'), api.bytes(info.wan_tx_bytes) ],
				[ _('Limit down / up'), (info.wan_rx_rate_limit ? api.rate(info.wan_rx_rate_limit) : '—') + ' / ' +
					(info.wan_tx_rate_limit ? api.rate(info.wan_tx_rate_limit) : '—') ],
				[ _('Last seen'), api.online(info) ? _('online since %s').format(new Date(info.online_since).toLocaleString())
					: api.ago(info.last_online_ts) ]
			]));
			/* Sample rows: [ts, lan_rx, lan_tx... ] as /api/traffic/metrics documents them. */
			live.dataset.points = C.lineChart(live, [
				{ label: 'down', color: api.COLORS.down, fill: true, points: samples.map(function(r) { return [ r[0], r[5] ]; }) },
				{ label: 'up', color: api.COLORS.up, fill: true, points: samples.map(function(r) { return [ r[0], r[6] ]; }) },
				{ label: 'LAN', color: api.COLORS.lan, points: samples.map(function(r) { return [ r[0], r[3] + r[4] ]; }) }
			], { formatY: api.rate }).points;
			hist.dataset.points = C.lineChart(hist, [
				{ label: 'down avg', color: api.COLORS.down, fill: true, points: levelRows.map(function(r) { return [ r[0], r[1] ]; }) },
				{ label: 'down p95', color: api.COLORS.down, width: 1, points: levelRows.map(function(r) { return [ r[0], r[5] ]; }) },
				{ label: 'up avg', color: api.COLORS.up, fill: true, points: levelRows.map(function(r) { return [ r[0], r[7] ]; }) },
				{ label: 'up p95', color: api.COLORS.up, width: 1, points: levelRows.map(function(r) { return [ r[0], r[11] ]; }) }
			], { formatY: api.rate, empty: _('No closed %s buckets yet').format(level),
				formatX: function(x) { return level === 'day' ? new Date(x).toLocaleTimeString() : new Date(x).toLocaleDateString(); } }).points;
		}

		function showExtras(data) {
			if (data.domains === null)
				domains.replaceChildren(api.text('p', {}, _('Flow analytics are off (enable flows in the settings).')));
			else
				domains.replaceChildren(api.table([ [ _('Domain (last hour)') ], [ _('Download'), true ], [ _('Upload'), true ] ],
					data.domains.map(function(r) { return [ r.domain, api.bytes(r.down), api.bytes(r.up) ]; }),
					'bandix-domain-table', _('No traffic with a domain in the last hour.')));
			var c = data.connections;
			conns.replaceChildren(c ? api.cards([
				[ _('Connections'), c.tcp_connections + c.udp_connections ], [ _('TCP'), c.tcp_connections ],
				[ _('UDP'), c.udp_connections ], [ _('Established'), c.established_tcp ],
				[ _('Time wait'), c.time_wait_tcp ], [ _('Close wait'), c.close_wait_tcp ]
			]) : api.text('p', {}, _('No connection statistics for this device.')));
		}

		var pending = null; /* the first refresh and the poll must not both add the same samples */
		function refresh() {
			if (pending)
				return pending;
			var now = Date.now(), wantLevel = now >= nextLevel, wantExtras = now >= nextExtras, asked = level;
			pending = api.device(mac, since, wantLevel ? level : null, wantExtras).then(function(data) {
				samples = samples.concat(data.metrics);
				if (samples.length)
					since = samples[samples.length - 1][0];
				var horizon = since - data.retention_seconds * 1000;
				samples = samples.filter(function(r) { return r[0] > horizon; });
				/* An answer for the level shown before a switch is dropped: the new one is asked next. */
				if (data.level && asked === level) {
					levelRows = data.level.metrics;
					nextLevel = now + 30000;
				}
				if ('domains' in data) {
					showExtras(data);
					nextExtras = now + 10000;
				}
				if (!nameInput.value && document.activeElement !== nameInput)
					nameInput.value = data.device.hostname || '';
				draw(data.device);
				api.notice(status, null);
			}, function(err) { api.notice(status, err); }).then(function() { pending = null; });
			return pending;
		}

		var node = E('div', { 'class': 'cbi-map' }, [
			E('p', {}, [ E('a', { 'href': L.url('admin/status/bandix/overview') }, [ _('← All devices') ]) ]),
			title, status, cards,
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ _('Realtime') ]), live ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ _('History'), ' ', levelSelect ]), hist ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ _('Top domains') ]), domains ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ _('Connections') ]), conns ]),
			E('div', { 'class': 'cbi-section' }, [ E('h3', {}, [ _('Name') ]),
				E('div', { 'class': 'cbi-value' }, [ nameInput, ' ', nameButton, ' ', forgetButton ]) ])
		]);

		requestAnimationFrame(refresh);
		poll.add(refresh, 1);
		return node;
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
