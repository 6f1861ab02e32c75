'use strict';
'require view';
'require form';
'require uci';
'require tools.widgets as widgets';

/*
 * /etc/config/bandix: the daemon's options (config bandix 'config'), the
 * rate-limit schedules (config limit), the default limit and its whitelist
 * (the section default_limit of that type), data quotas (config quota) and
 * hostname bindings (config binding).
 * Option names are the daemon's (bandix/config.py, bandix/settings.py). Save
 * & Apply commits the file; procd runs `/etc/init.d/bandix reload`: an option
 * bandix fixes at start-up (interfaces, port, modules, data directory,
 * retention, persistence) restarts it with the new value, the others (limits,
 * names, log level, subnets) reach the running daemon as SIGHUP at once.
 */

var DAYS = [ [ '1', _('Mon') ], [ '2', _('Tue') ], [ '3', _('Wed') ], [ '4', _('Thu') ], [ '5', _('Fri') ], [ '6', _('Sat') ], [ '7', _('Sun') ] ];

/*
 * The daemon's own rules (bandix/schedule.py parse_time, parse_slot, parse_rate;
 * bandix/settings.py parse_hostname), so that the form refuses what the daemon would.
 */
var MAX_RATE = 12500000000;

function minutes(value, end) {
	var m = /^(\d{2}):(\d{2})$/.exec(value || '');
	if (m && +m[1] < 24 && +m[2] < 60)
		return +m[1] * 60 + +m[2];
	return (end && value === '24:00') ? 1440 : null;
}

function validStart(section_id, value) {
	return minutes(value, false) != null ? true : _('Expecting a time HH:MM from 00:00 to 23:59');
}

function validEnd(section_id, value) {
	var end = minutes(value, true);
	if (end == null)
		return _('Expecting a time HH:MM from 00:00 to 24:00');
	if (end === minutes(this.section.formvalue(section_id, 'start'), false))
		return _('Must differ from the start (00:00 to 24:00 is a whole day)');
	return true;
}

function validRate(section_id, value) {
	return (/^\d+$/.test(value) && +value <= MAX_RATE) ? true
		: _('Expecting bytes per second from 0 (no limit) to %d').format(MAX_RATE);
}

function validHostname(section_id, value) {
	if (value !== value.trim())
		return _('Must not start or end with spaces');
	if (value.length > 64)
		return _('At most 64 characters');
	/* Python's \w is any letter or digit: outside ASCII, only spacing characters are refused here. */
	if (/[^\S ]/.test(value) || !/^(?:[A-Za-z0-9_ .'()&+@#-]|[\u0080-\uffff])+$/.test(value))
		return _('May hold letters, digits, spaces and . \' ( ) & + @ # - _ only');
	return true;
}

return view.extend({
	load: function() {
		return uci.load('bandix');
	},

	render: function() {
		var m, s, o;

		m = new form.Map('bandix', _('Bandix: settings'),
			_('Per-device traffic monitoring and rate limits. Save & Apply: limits, names and the log level take effect at once; interfaces, port, modules and storage restart bandix.'));

		s = m.section(form.NamedSection, 'config', 'bandix', _('Daemon'));
		s.addremove = false;
		s.tab('general', _('General'));
		s.tab('modules', _('Modules'));
		s.tab('storage', _('Retention and persistence'));

		o = s.taboption('general', form.Flag, 'enabled', _('Enabled'), _('Start bandix at boot and keep it running.'));
		o.default = o.enabled;
		o.rmempty = false;

		o = s.taboption('general', widgets.DeviceSelect, 'iface', _('Interfaces'),
			_('The LAN bridges whose devices are counted.'));
		o.multiple = true;
		o.noaliases = true;
		o.rmempty = false;

		o = s.taboption('general', form.Value, 'port', _('API port'),
			_('The daemon listens on 127.0.0.1 at this port; LuCI reaches it through rpcd.'));
		o.datatype = 'port';
		o.placeholder = '8686';

		o = s.taboption('general', form.DynamicList, 'additional_subnets', _('Additional LAN subnets'),
			_('Prefixes counted as LAN rather than WAN, e.g. a VPN.'));
		o.datatype = 'cidr';

		o = s.taboption('general', form.ListValue, 'log_level', _('Log level'));
		[ 'trace', 'debug', 'info', 'warn', 'error' ].forEach(function(l) { o.value(l); });
		o.default = 'info';

		o = s.taboption('modules', form.Flag, 'traffic_enabled', _('Traffic'), _('Rates and totals per device, and rate limits.'));
		o.default = o.enabled;
		o.rmempty = false;

		o = s.taboption('modules', form.Value, 'offline_timeout', _('Offline after (s)'),
			_('A device that sent nothing and that the neighbour table did not confirm for this long is shown offline.'));
		o.datatype = 'range(1,2592000)';
		o.placeholder = '300';
		o.depends('traffic_enabled', '1');

		o = s.taboption('modules', form.Flag, 'connection_enabled', _('Connections'), _('Connection counts from conntrack.'));
		o = s.taboption('modules', form.Value, 'connection_interval_seconds', _('Connection interval (s)'));
		o.datatype = 'range(1,3600)';
		o.placeholder = '5';
		o.depends('connection_enabled', '1');

		o = s.taboption('modules', form.Flag, 'dns_enabled', _('DNS'), _('Queries and responses of the devices.'));
		o = s.taboption('modules', form.Value, 'dns_max_records', _('DNS records kept'));
		o.datatype = 'range(1,10000000)';
		o.placeholder = '10000';
		o.depends('dns_enabled', '1');

		o = s.taboption('modules', form.Flag, 'flows_enabled', _('Flows and domains'), _('Where the traffic goes, by domain; kept in the data directory.'));

		o = s.taboption('storage', form.Value, 'traffic_retention_seconds', _('Realtime retention (s)'),
			_('Seconds of one-second samples kept in memory per device.'));
		o.datatype = 'range(1,86400)';
		o.placeholder = '600';

		o = s.taboption('storage', form.Flag, 'traffic_persist_history', _('Keep history across restarts'),
			_('Writes the history to the data directory; on flash this wears it.'));

		o = s.taboption('storage', form.Value, 'traffic_flush_interval_seconds', _('Write interval (s)'));
		o.datatype = 'range(1,86400)';
		o.placeholder = '600';
		o.depends('traffic_persist_history', '1');

		o = s.taboption('storage', form.Value, 'data_dir', _('Data directory'),
			_('/tmp/bandix is in RAM and lost at reboot; a directory on flash or USB keeps the data.'));
		o.placeholder = '/tmp/bandix';

		o = s.taboption('storage', form.Value, 'flow_retention_days', _('Flow retention (days)'),
			_('Domains, hosts and DNS per minute and per hour.'));
		o.datatype = 'range(1,3650)';
		o.placeholder = '7';
		o.depends('flows_enabled', '1');

		o = s.taboption('storage', form.Value, 'flow_detail_hours', _('Connection detail (hours)'),
			_('Every connection per minute; the largest table.'));
		o.datatype = 'range(1,87600)';
		o.placeholder = '24';
		o.depends('flows_enabled', '1');

		s = m.section(form.GridSection, 'limit', _('Rate limit schedules'),
			_('WAN limits per device in a weekly time slot, in the router\'s time zone, in bytes per second (0: none). Where rules overlap, the lowest limit wins.'));
		s.anonymous = true;
		s.addremove = true;
		s.sortable = true;
		s.nodescriptions = true;

		o = s.option(form.Value, 'mac', _('MAC address'));
		o.datatype = 'macaddr';
		o.rmempty = false;

		o = s.option(form.MultiValue, 'days', _('Days'));
		DAYS.forEach(function(d) { o.value(d[0], d[1]); });
		o.default = [ '1', '2', '3', '4', '5', '6', '7' ];
		o.rmempty = false;

		o = s.option(form.Value, 'start', _('From'));
		o.placeholder = '00:00';
		o.rmempty = false;
		o.validate = validStart;

		o = s.option(form.Value, 'end', _('To'));
		o.placeholder = '24:00';
		o.rmempty = false;
		o.validate = validEnd;

		o = s.option(form.Value, 'wan_rx_rate_limit', _('Download limit (B/s)'));
		o.placeholder = '0';
		o.validate = validRate;

		o = s.option(form.Value, 'wan_tx_rate_limit', _('Upload limit (B/s)'));
		o.placeholder = '0';
		o.validate = validRate;

		s = m.section(form.NamedSection, 'default_limit', 'default_limit', _('Default limit'),
			_('While in force, every device not on the whitelist is held to these WAN limits (bytes per second, 0: none) from its first packet, new devices included; where a schedule applies too, the lower limit wins.'));
		s.addremove = true;

		o = s.option(form.Flag, 'enabled', _('In force'));

		o = s.option(form.Value, 'wan_rx_rate_limit', _('Download limit (B/s)'));
		o.datatype = 'uinteger';
		o.placeholder = '0';

		o = s.option(form.Value, 'wan_tx_rate_limit', _('Upload limit (B/s)'));
		o.datatype = 'uinteger';
		o.placeholder = '0';

		o = s.option(form.DynamicList, 'whitelist', _('Whitelist'),
			_('Devices exempt from the default limit and the default quota.'));
		o.datatype = 'macaddr';

		s = m.section(form.GridSection, 'quota', _('Data quotas'),
			_('WAN bytes per day, week or month, counted from the reset day and hour in the router\'s time zone. Used up, the device is blocked (it still reaches this router) or throttled until the next period. MAC * is the quota of every device without its own and not on the whitelist.'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;

		o = s.option(form.Value, 'mac', _('MAC address'));
		o.rmempty = false;
		o.validate = function(section_id, value) {
			return value === '*' || /^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$/.test(value || '')
				? true : _('Expecting a MAC address, or * for every other device');
		};

		o = s.option(form.ListValue, 'period', _('Period'));
		o.value('day', _('Day'));
		o.value('week', _('Week'));
		o.value('month', _('Month'));
		o.default = 'month';

		o = s.option(form.Value, 'bytes', _('Bytes per period'));
		o.datatype = 'min(1)';
		o.rmempty = false;

		o = s.option(form.ListValue, 'direction', _('Counts'));
		o.value('both', _('Download and upload'));
		o.value('rx', _('Download'));
		o.value('tx', _('Upload'));

		o = s.option(form.ListValue, 'action', _('When used up'));
		o.value('block', _('Block WAN'));
		o.value('throttle', _('Throttle'));

		o = s.option(form.Value, 'throttle_rx_rate', _('Throttled download (B/s)'));
		o.datatype = 'uinteger';
		o.placeholder = '0';

		o = s.option(form.Value, 'throttle_tx_rate', _('Throttled upload (B/s)'));
		o.datatype = 'uinteger';
		o.placeholder = '0';

		o = s.option(form.Value, 'reset_day', _('Reset day'));
		o.placeholder = '1';
		o.validate = function(section_id, value) {
			var max = this.section.formvalue(section_id, 'period') === 'week' ? 7 : 28;
			return value === '' || (/^\d+$/.test(value) && +value >= 1 && +value <= max)
				? true : _('Expecting a weekday 1-7 (Monday = 1) for a week, a day 1-28 for a month');
		};

		o = s.option(form.Value, 'reset_hour', _('Reset hour'));
		o.datatype = 'range(0,23)';
		o.placeholder = '0';

		s = m.section(form.GridSection, 'binding', _('Hostname bindings'),
			_('Names shown for devices instead of the DHCP host name.'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;

		o = s.option(form.Value, 'mac', _('MAC address'));
		o.datatype = 'macaddr';
		o.rmempty = false;

		o = s.option(form.Value, 'hostname', _('Name'));
		o.rmempty = false;
		o.validate = validHostname;

		return m.render();
	}
});
