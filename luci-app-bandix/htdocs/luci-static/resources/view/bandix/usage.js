'use strict';
'require view';
'require bandix.api as api';

/*
 * Usage over a range: devices ranked by bytes (WAN, LAN or both) with their share, one device's
 * (or all devices') bytes per local hour or day of the router, and the export as
 * a file per download (CSV or JSON), as nlbwmon's LuCI app offers.
 */

function rangeOf(key, now) {
	var d = new Date(now), midnight = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
	if (key === 'yesterday')
		return [ new Date(d.getFullYear(), d.getMonth(), d.getDate() - 1).getTime(), midnight ];
	if (key === '7d')
		return [ new Date(d.getFullYear(), d.getMonth(), d.getDate() - 6).getTime(), now ];
	if (key === '30d')
		return [ new Date(d.getFullYear(), d.getMonth(), d.getDate() - 29).getTime(), now ];
	if (key === 'month')
		return [ new Date(d.getFullYear(), d.getMonth(), 1).getTime(), now ];
	return [ midnight, now ];
}

/* Hand a file to the browser as a download. */
function download(filename, type, text) {
	var url = URL.createObjectURL(new Blob([ text ], { type: type }));
	var a = E('a', { 'href': url, 'download': filename, 'style': 'display:none' });
	document.body.appendChild(a);
	a.click();
	a.remove();
	setTimeout(function() { URL.revokeObjectURL(url); }, 10000);
}

return view.extend({
	load: function() {
		var r = rangeOf('today', Date.now());
		return Promise.all([ api.charts(), api.usageRanking(r[0], r[1], 'wan').catch(function(err) { return err; }) ]);
	},

	render: function(res) {
		var C = res[0], first = res[1];
		var rangeKey = 'today', network = 'wan', aggregation = 'hourly', chosen = null, increments = null;
		var status = E('div'), cards = E('div'), covered = E('div', { 'class': 'cbi-section-descr' }), tableWrap = E('div');
		var chartTitle = E('h3'), chart = E('canvas', { 'id': 'bandix-usage-chart', 'style': 'width:100%;height:220px;display:block' });

		function drawChart() {
			if (!increments)
				return;
			chartTitle.textContent = (chosen ? api.name(chosen) : _('All devices')) + ' — ' +
				(aggregation === 'daily' ? _('per day') : _('per hour'));
			chart.dataset.bars = C.barChart(chart, increments.increments.map(function(i) {
				return { label: aggregation === 'daily' ? i.date.slice(5) : i.date.slice(11), values: [ i.rx_bytes, i.tx_bytes ] };
			}), { colors: [ api.COLORS.down, api.COLORS.up ], formatY: api.bytes }).bars;
		}

		function loadIncrements() {
			var r = rangeOf(rangeKey, Date.now());
			return api.usageIncrements(chosen && chosen.mac, r[0], r[1], aggregation, network).then(function(d) { increments = d; drawChart(); });
		}

		function update(ranking) {
			cards.replaceChildren(api.cards([
				[ _('Downloaded'), api.bytes(ranking.rx_bytes), api.COLORS.down ],
				[ _('Uploaded'), api.bytes(ranking.tx_bytes), api.COLORS.up ],
				[ _('Total'), api.bytes(ranking.total_bytes) ],
				[ _('Devices with traffic'), String(ranking.devices.length) ]
			]));
			var label = { wan: _('WAN'), lan: _('LAN'), all: _('WAN + LAN') }[ranking.network_type];
			covered.textContent = _('%s bytes from %s to %s').format(label, new Date(ranking.start_ms).toLocaleString(),
				new Date(ranking.end_ms).toLocaleString());
			tableWrap.replaceChildren(api.table([
				[ '#', true ], [ _('Device') ], [ _('IP address') ], [ _('Download'), true ], [ _('Upload'), true ],
				[ _('Total'), true ], [ _('Share'), true ]
			], ranking.devices.map(function(d, i) {
				var link = api.text('a', { 'href': '#', 'click': function(ev) {
					ev.preventDefault();
					chosen = chosen && chosen.mac === d.mac ? null : d;
					loadIncrements().catch(function(err) { api.notice(status, err); });
				} }, api.name(d));
				return [ String(i + 1), link, d.ip || '—', api.bytes(d.rx_bytes), api.bytes(d.tx_bytes), api.bytes(d.total_bytes),
					(d.share * 100).toFixed(1) + ' %' ];
			}), 'bandix-usage-ranking', _('No %s traffic in this range.').format(label)));
			api.notice(status, null);
		}

		var refresh = api.follow(status, first, function() {
			var r = rangeOf(rangeKey, Date.now());
			return Promise.all([ api.usageRanking(r[0], r[1], network), loadIncrements() ]).then(function(res) { return res[0]; });
		}, update, 10);
		requestAnimationFrame(function() { loadIncrements().catch(function(err) { api.notice(status, err); }); });

		function exportAs(format) {
			var r = rangeOf(rangeKey, Date.now());
			return api.usageExport(format, r[0], r[1], network).then(function(file) {
				if (format === 'csv')
					download(file.filename, file.content_type, file.content);
				else
					download('bandix-usage-' + network + '-daily.json', 'application/json', JSON.stringify(file, null, 1));
			}, function(err) { api.notice(status, err); });
		}

		var aggSelect = E('select', { 'class': 'cbi-input-select', 'id': 'bandix-usage-aggregation', 'change': function(ev) {
			aggregation = ev.target.value;
			loadIncrements().catch(function(err) { api.notice(status, err); });
		} }, [ E('option', { 'value': 'hourly' }, [ _('Per hour') ]), E('option', { 'value': 'daily' }, [ _('Per day') ]) ]);

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Bandix: usage') ]),
			E('div', { 'class': 'cbi-map-descr' }, [ _('Bytes per device over a range (WAN, LAN or both), from the history bandix keeps; days and hours are the router\'s local time.') ]),
			status,
			E('div', { 'class': 'cbi-section' }, [
				E('select', { 'class': 'cbi-input-select', 'id': 'bandix-usage-range', 'change': function(ev) {
					rangeKey = ev.target.value;
					aggregation = rangeKey === 'today' || rangeKey === 'yesterday' ? 'hourly' : 'daily';
					aggSelect.value = aggregation;
					refresh();
				} }, [
					E('option', { 'value': 'today' }, [ _('Today') ]),
					E('option', { 'value': 'yesterday' }, [ _('Yesterday') ]),
					E('option', { 'value': '7d' }, [ _('Last 7 days') ]),
					E('option', { 'value': '30d' }, [ _('Last 30 days') ]),
					E('option', { 'value': 'month' }, [ _('This month') ])
				]), ' ',
				E('select', { 'class': 'cbi-input-select', 'id': 'bandix-usage-network', 'change': function(ev) {
					network = ev.target.value;
					refresh();
				} }, [
					E('option', { 'value': 'wan' }, [ _('WAN') ]),
					E('option', { 'value': 'lan' }, [ _('LAN') ]),
					E('option', { 'value': 'all' }, [ _('WAN + LAN') ])
				]), ' ',
				E('button', { 'class': 'cbi-button', 'id': 'bandix-export-csv', 'click': function() { return exportAs('csv'); } }, [ _('Export CSV') ]), ' ',
				E('button', { 'class': 'cbi-button', 'id': 'bandix-export-json', 'click': function() { return exportAs('json'); } }, [ _('Export JSON') ]),
				cards, covered, tableWrap
			]),
			E('div', { 'class': 'cbi-section' }, [ chartTitle, aggSelect, chart ])
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
