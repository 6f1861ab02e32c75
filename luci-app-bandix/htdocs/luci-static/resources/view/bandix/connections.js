'use strict';
'require view';
'require bandix.api as api';

/* Connection counts from conntrack: for the router and for each device. */

return view.extend({
	load: function() {
		/* charts.js formats the numbers; a failing first call shows its message in the page. */
		return Promise.all([ api.charts(), api.connections().catch(function(err) { return err; }) ]);
	},

	render: function(res) {
		var first = res[1];
		var status = E('div'), cards = E('div'), tableWrap = E('div');

		function update(data) {
			var g = data.global_stats;
			cards.replaceChildren(api.cards([
				[ _('Connections'), g.total_connections ], [ _('TCP'), g.tcp_connections ], [ _('UDP'), g.udp_connections ],
				[ _('Established'), g.established_tcp ], [ _('Time wait'), g.time_wait_tcp ], [ _('Close wait'), g.close_wait_tcp ]
			]));
			var devices = data.devices.slice().sort(function(a, b) { return b.total_connections - a.total_connections; });
			tableWrap.replaceChildren(api.table([
				[ _('MAC address') ], [ _('IP address') ], [ _('Total'), true ], [ _('TCP'), true ], [ _('UDP'), true ],
				[ _('Established'), true ], [ _('Time wait'), true ], [ _('Close wait'), true ]
			], devices.map(function(d) {
				return [ api.text('a', { 'href': api.deviceUrl(d.mac_address) }, d.mac_address), d.ip_address || '—',
					d.total_connections, d.tcp_connections, d.udp_connections, d.established_tcp, d.time_wait_tcp, d.close_wait_tcp ];
			}), 'bandix-connection-table', _('No connections.')));
			api.notice(status, data.partial ? new Error(_('The conntrack table was larger than the limit: counts are partial.')) : null);
		}

		api.follow(status, first, function() { return api.connections(); }, update, 5);

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Bandix: connections') ]),
			status, cards,
			E('div', { 'class': 'cbi-section' }, [ tableWrap ])
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
