'use strict';
'require view';
'require bandix.api as api';

/* Where the traffic goes: the flow reports (by domain, remote address, device, ...). */

var REPORTS = [ 'domain', 'ip', 'lan', 'flow', 'sni', 'dns', 'quic', 'dohdot', 'coverage' ];

return view.extend({
	load: function() {
		/* charts.js formats the numbers; a failing first call shows its message in the page. */
		return Promise.all([ api.charts(), api.flowsTop('domain', 60, 50).catch(function(err) { return err; }) ]);
	},

	render: function(res) {
		var first = res[1];
		var by = 'domain', lookback = 60;
		var status = E('div'), body = E('div');
		var labels = {
			domain: _('By domain'), ip: _('By remote address'), lan: _('By device address'), flow: _('By flow'),
			sni: _('Server names'), dns: _('DNS names'), quic: _('QUIC'), dohdot: _('Encrypted DNS'), coverage: _('Attribution coverage')
		};

		function cell(v, unit) {
			if (v === null || v === undefined)
				return '—';
			if (unit === 'bytes')
				return api.bytes(v);
			if (unit === 'pct')
				return v.toFixed(1) + ' %';
			if (unit === 'ms')
				return v.toFixed(1) + ' ms';
			return String(v);
		}

		function update(report) {
			body.replaceChildren(api.text('h3', {}, report.title), api.table(
				report.columns.map(function(c) { return [ c.label, c.unit !== 'text' ]; }),
				report.rows.map(function(r) { return report.columns.map(function(c) { return cell(r[c.key], c.unit); }); }),
				'bandix-report-table', _('No flows in this window.')));
			api.notice(status, null);
		}

		var refresh = api.follow(status, first, function() { return api.flowsTop(by, lookback, 50); }, update, 5);

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Bandix: where the traffic goes') ]),
			status,
			E('div', { 'class': 'cbi-section' }, [
				E('select', { 'class': 'cbi-input-select', 'id': 'bandix-report', 'change': function(ev) { by = ev.target.value; refresh(); } },
					REPORTS.map(function(r) { return E('option', { 'value': r }, [ labels[r] ]); })), ' ',
				E('select', { 'class': 'cbi-input-select', 'change': function(ev) { lookback = +ev.target.value; refresh(); } }, [
					E('option', { 'value': '60' }, [ _('Last hour') ]),
					E('option', { 'value': '1440' }, [ _('Last day') ]),
					E('option', { 'value': '10080' }, [ _('Last week') ])
				]),
				body
			])
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
