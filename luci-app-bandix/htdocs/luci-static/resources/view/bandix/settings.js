'use strict';
'require view';
'require form';
'require uci';
'require tools.widgets as widgets';

/*
 * /etc/config/bandix: the daemon's options (config bandix 'config'), the
 * rate-limit schedules (config limit) and hostname bindings (config binding).
 * Option names are the daemon's (bandix/config.py, bandix/settings.py). Save
 * & Apply makes procd send bandix SIGHUP: limits, bindings and the log level
 * change at once, the rest at the next restart.
 */

var DAYS = [ [ '1', _('Mon') ], [ '2', _('Tue') ], [ '3', _('Wed') ], [ '4', _('Thu') ], [ '5', _('Fri') ], [ '6', _('Sat') ], [ '7', _('Sun') ] ];

/* HH:MM, 00:00 to 24:00, as the daemon's schedule parser takes it. */
function validTime(section_id, value) {
	var m = /^(\d{2}):(\d{2})$/.exec(value || '');
	if (m && ((+m[1] < 24 && +m[2] < 60) || value === '24:00'))
		return true;
	return _('Expecting a time HH:MM from 00:00 to 24:00');
}

return view.extend({
	load: function() {
		return uci.load('bandix');
	},

	render: function() {
		var m, s, o;

		m = new form.Map('bandix', _('Bandix: settings'),
			_('Per-device traffic monitoring and rate limits. Interfaces, port and persistence take effect when bandix restarts; limits and names at once.'));

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
		o.validate = validTime;

		o = s.option(form.Value, 'end', _('To'));
		o.placeholder = '24:00';
		o.rmempty = false;
		o.validate = validTime;

		o = s.option(form.Value, 'wan_rx_rate_limit', _('Download limit (B/s)'));
		o.datatype = 'uinteger';
		o.placeholder = '0';

		o = s.option(form.Value, 'wan_tx_rate_limit', _('Upload limit (B/s)'));
		o.datatype = 'uinteger';
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
		o.validate = function(section_id, value) {
			return /^[^\s](.{0,62}[^\s])?$/.test(value || '') ? true : _('1 to 64 characters, no spaces at either end');
		};

		return m.render();
	}
});
