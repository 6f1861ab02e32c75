'use strict';
'require view';
'require bandix.api as api';

/* The devices' DNS queries and responses with filters and pages, and the statistics. */

var PAGE_SIZE = 50;

return view.extend({
	load: function() {
		/* charts.js formats the numbers; a failing first call shows its message in the page. */
		return Promise.all([ api.charts(), api.dns({}, 1, PAGE_SIZE).catch(function(err) { return err; }) ]);
	},

	render: function(res) {
		var first = res[1];
		var filters = { domain: '', device: '', is_query: '' }, page = 1, data = null;
		var status = E('div'), cards = E('div'), tableWrap = E('div'), pageInfo = E('span');

		function update(d) {
			data = d;
			var s = d.stats;
			cards.replaceChildren(api.cards([
				[ _('Queries'), s.total_queries ], [ _('Answered'), s.queries_with_response ],
				[ _('Success rate'), (s.success_rate * 100).toFixed(1) + ' %' ],
				[ _('Average response'), s.avg_response_time_ms + ' ms' ],
				[ _('95th percentile'), s.response_time_percentiles.p95 + ' ms' ],
				[ _('Lost / malformed'), s.lost_events + ' / ' + s.malformed_packets ]
			]));
			tableWrap.replaceChildren(api.table([
				[ _('Time') ], [ _('Device') ], [ _('Kind') ], [ _('Domain') ], [ _('Type') ], [ _('Answer') ],
				[ _('Time taken'), true ], [ _('Addresses') ]
			], d.queries.map(function(r) {
				return [ r.timestamp_formatted.slice(11), r.device_name || r.device_mac, r.is_query ? _('query') : _('response'),
					r.domain, r.query_type, r.response_code, r.is_query ? '' : r.response_time_ms + ' ms', r.response_ips.join(', ') ];
			}), 'bandix-dns-table', _('No DNS records match.')));
			pageInfo.textContent = _('Page %d of %d, %d records').format(d.page, Math.max(1, Math.ceil(d.total / PAGE_SIZE)), d.total);
			api.notice(status, null);
		}

		var refresh = api.follow(status, first, function() { return api.dns(filters, page, PAGE_SIZE); }, update, 3);

		function filter(key, placeholder) {
			return E('input', { 'class': 'cbi-input-text', 'type': 'search', 'placeholder': placeholder, 'data-filter': key,
				'input': function(ev) { filters[key] = ev.target.value; page = 1; refresh(); } });
		}

		return E('div', { 'class': 'cbi-map' }, [
			E('h2', {}, [ _('Bandix: DNS') ]),
			status, cards,
			E('div', { 'class': 'cbi-section' }, [
				E('div', {}, [
					filter('domain', _('Domain contains')), ' ',
					filter('device', _('Device (name, MAC or IP)')), ' ',
					E('select', { 'class': 'cbi-input-select', 'change': function(ev) { filters.is_query = ev.target.value; page = 1; refresh(); } }, [
						E('option', { 'value': '' }, [ _('Queries and responses') ]),
						E('option', { 'value': 'true' }, [ _('Queries') ]),
						E('option', { 'value': 'false' }, [ _('Responses') ])
					])
				]),
				tableWrap,
				E('div', {}, [
					E('button', { 'class': 'cbi-button', 'click': function() { if (page > 1) { page--; refresh(); } } }, [ _('‹ Newer') ]), ' ',
					E('button', { 'class': 'cbi-button', 'click': function() { if (data && page * PAGE_SIZE < data.total) { page++; refresh(); } } }, [ _('Older ›') ]), ' ',
					pageInfo
				])
			])
		]);
	},

	handleSave: null,
	handleSaveApply: null,
	handleReset: null
});
