'use strict';
'require view';
'require poll';
'require bandix.api as api';

/* Every device with its live WAN/LAN rates and totals, and the router's total rate over time. */

var HISTORY_MS = 300000; // the total-rate chart spans five minutes of polls

return view.extend({
	load: function() {
		this.feed = api.devicesFeed();
		return Promise.all([ api.charts(), this.feed() ]);
	},

	render: function(res) {
		var C = res[0], feed = this.feed, samples = [];
		var status = E('div'), cards = E('div'), tableWrap = E('div');
		var chart = E('canvas', { 'id': 'bandix-total-chart', 'style': 'width:100%;height:200px;display:block' });

		function update(devices) {
			var now = Date.now();
			var sum = function(k) { return devices.reduce(function(a, d) { return a + d[k]; }, 0); };
			samples.push([ now, sum('wan_rx_rate'), sum('wan_tx_rate') ]);
			samples = samples.filter(function(s) { return s[0] > now - HISTORY_MS; });

			cards.replaceChildren(api.cards([
				[ _('Devices online'), devices.filter(api.online).length + ' / ' + devices.length ],
				[ _('Download'), api.rate(sum('wan_rx_rate')), api.COLORS.down ],
				[ _('Upload'), api.rate(sum('wan_tx_rate')), api.COLORS.up ],
				[ _('Downloaded'), api.bytes(sum('wan_rx_bytes')) ],
				[ _('Uploaded'), api.bytes(sum('wan_tx_bytes')) ]
			]));

			devices.sort(function(a, b) { return b.wan_rx_rate - a.wan_rx_rate || (a.mac < b.mac ? -1 : 1); });
			tableWrap.replaceChildren(api.table([
				[ _('Device') ], [ _('IP address') ], [ _('MAC address') ],
				[ _('Download'), true ], [ _('Upload'), true ], [ _('LAN down / up'), true ],
				[ _('Downloaded'), true ], [ _('Uploaded'), true ], [ _('Limit down / up'), true ], [ _('Last seen') ]
			], devices.map(function(d) {
				var limit = d.wan_rx_rate_limit || d.wan_tx_rate_limit
					? (d.wan_rx_rate_limit ? api.rate(d.wan_rx_rate_limit) : '∞') + ' / ' + (d.wan_tx_rate_limit ? api.rate(d.wan_tx_rate_limit) : '∞')
					: '—';
				return [
					api.text('a', { 'href': api.deviceUrl(d.mac) }, api.name(d)), d.ip || '—', d.mac,
					api.rate(d.wan_rx_rate), api.rate(d.wan_tx_rate),
					api.rate(d.lan_rx_rate) + ' / ' + api.rate(d.lan_tx_rate),
					api.bytes(d.wan_rx_bytes), api.bytes(d.wan_tx_bytes), limit,
					api.online(d) ? _('online') : api.ago(d.last_online_ts)
				];
			}), 'bandix-devices', _('No device has sent traffic yet.')));

			chart.dataset.points = C.lineChart(chart, [
				{ label: 'down', color: api.COLORS.down, fill: true, points: samples.map(function(s) { return [ s[0], s[1] ]; }) },
				{ label: 'up', color: api.COLORS.up, fill: true, points: samples.map(function(s) { return [ s[0], s[2] ]; }) }
			], { formatY: api.rate }).points;
			api.notice(status, null);
		}

		var node = E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Bandix: devices') ]),
			E('div', { 'class': 'cbi-map-descr' }, [ _('Traffic of every device on the LAN, counted in the kernel by bandix. Rates are per second, totals since the counters started.') ]),
			status,
			cards,
			E('div', { 'class': 'cbi-section' }, [
				E('h3', {}, [ _('Total rate (WAN)') ]),
				chart
			]),
			E('div', { 'class': 'cbi-section' }, [ tableWrap ])
		]);

		/* The canvas has its size once it is in the page. */
		requestAnimationFrame(function() { update(res[1]); });
		poll.add(function() {
			return feed().then(update, function(err) { api.notice(status, err); });
		}, 2);

		return node;
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
