'use strict';
'require baseclass';
'require uci';

/*
 * Stand-in for LuCI's form.js: Map, NamedSection, TypedSection, GridSection and the
 * option classes the bandix settings view uses, rendered read-only from uci (ids as
 * LuCI names them: cbid.<config>.<section>.<option>, cbi-<config>-<section>).
 */

var AbstractValue = baseclass.extend({
	__init__: function(map, section, option, title, description) {
		this.map = map;
		this.section = section;
		this.option = option;
		this.title = title;
		this.description = description;
		this.choices = [];
		this.deps = [];
	},
	value: function(key, label) { this.choices.push([ String(key), label != null ? label : String(key) ]); },
	depends: function(field, value) { this.deps.push([ field, value ]); },
	cfgvalue: function(sid) { return uci.get(this.map.config, sid, this.option); },
	textvalue: function(sid) {
		var v = this.cfgvalue(sid);
		if (v == null) v = this.default;
		return Array.isArray(v) ? v.join(' ') : (v == null ? '' : String(v));
	},
	cbid: function(sid) { return 'cbid.' + this.map.config + '.' + sid + '.' + this.option; },
	renderWidget: function(sid) {
		return E('input', { 'id': 'widget.' + this.cbid(sid), 'type': 'text', 'value': this.textvalue(sid), 'placeholder': this.placeholder || null });
	}
});

var Value = AbstractValue.extend({});
var DummyValue = AbstractValue.extend({});
var TextValue = AbstractValue.extend({});
var DynamicList = AbstractValue.extend({
	renderWidget: function(sid) {
		return E('div', { 'id': 'widget.' + this.cbid(sid) }, L.toArray(this.cfgvalue(sid)).map(function(v) {
			return E('input', { 'type': 'text', 'value': v });
		}));
	}
});
var Flag = AbstractValue.extend({
	enabled: '1',
	disabled: '0',
	renderWidget: function(sid) {
		var v = this.cfgvalue(sid);
		if (v == null) v = this.default;
		return E('input', { 'id': 'widget.' + this.cbid(sid), 'type': 'checkbox', 'checked': v === this.enabled ? '' : null });
	}
});
var ListValue = AbstractValue.extend({
	renderWidget: function(sid) {
		var v = this.textvalue(sid);
		return E('select', { 'id': 'widget.' + this.cbid(sid) }, this.choices.map(function(c) {
			return E('option', { 'value': c[0], 'selected': c[0] === v ? '' : null }, [ c[1] ]);
		}));
	}
});
var MultiValue = ListValue.extend({
	textvalue: function(sid) {
		var v = L.toArray(this.cfgvalue(sid) != null ? this.cfgvalue(sid) : this.default);
		var labels = {};
		this.choices.forEach(function(c) { labels[c[0]] = c[1]; });
		return v.map(function(x) { return labels[x] || x; }).join(', ');
	}
});

var AbstractSection = baseclass.extend({
	__init__: function(map, sectiontype, title, description) {
		this.map = map;
		this.sectiontype = sectiontype;
		this.title = title;
		this.description = description;
		this.children = [];
		this.tabs = {};
	},
	tab: function(name, title) { this.tabs[name] = title; },
	option: function(cls) {
		if (!baseclass.isSubclass(cls)) throw new TypeError('option class expected');
		var o = new cls(this.map, this, arguments[1], arguments[2], arguments[3]);
		this.children.push(o);
		return o;
	},
	taboption: function(tab) {
		if (!(tab in this.tabs)) throw new Error('unknown tab ' + tab);
		var o = this.option.apply(this, Array.prototype.slice.call(arguments, 1));
		o.tab = tab;
		return o;
	},
	header: function() {
		return [ this.title ? E('h3', {}, [ this.title ]) : '', this.description ? E('div', { 'class': 'cbi-section-descr' }, [ this.description ]) : '' ];
	}
});

var NamedSection = AbstractSection.extend({
	__init__: function(map, name, sectiontype, title, description) {
		AbstractSection.prototype.__init__.call(this, map, sectiontype, title, description);
		this.name = name;
	},
	render: function() {
		var sid = this.name;
		return Promise.all(this.children.map(function(o) { return o.renderWidget(sid); })).then(L.bind(function(widgets) {
			return E('fieldset', { 'class': 'cbi-section', 'id': 'cbi-' + this.map.config + '-' + sid }, this.header().concat(
				this.children.map(function(o, i) {
					return E('div', { 'class': 'cbi-value', 'data-tab': o.tab || null }, [
						E('label', { 'class': 'cbi-value-title', 'for': 'widget.' + o.cbid(sid) }, [ o.title || '' ]),
						E('div', { 'class': 'cbi-value-field' }, [ widgets[i] ])
					]);
				})));
		}, this));
	}
});

var TypedSection = AbstractSection.extend({
	render: function() {
		var config = this.map.config, children = this.children;
		var rows = uci.sections(config, this.sectiontype).map(function(s) {
			var sid = s['.name'];
			return E('tr', { 'class': 'tr cbi-section-table-row', 'id': 'cbi-' + config + '-' + sid }, children.map(function(o) {
				return E('td', { 'class': 'td', 'data-name': o.option }, [ o.textvalue(sid) ]);
			}));
		});
		return E('div', { 'class': 'cbi-section', 'id': 'cbi-' + config + '-' + this.sectiontype }, this.header().concat([
			E('table', { 'class': 'table cbi-section-table' }, [
				E('tr', { 'class': 'tr cbi-section-table-titles' }, children.map(function(o) { return E('th', { 'class': 'th' }, [ o.title || '' ]); }))
			].concat(rows)),
			this.addremove ? E('button', { 'class': 'cbi-button cbi-button-add' }, [ 'Add' ]) : ''
		]));
	}
});

var GridSection = TypedSection.extend({});
var TableSection = TypedSection.extend({});

var Map = baseclass.extend({
	__init__: function(config, title, description) {
		this.config = config;
		this.title = title;
		this.description = description;
		this.children = [];
	},
	section: function(cls) {
		if (!baseclass.isSubclass(cls)) throw new TypeError('section class expected');
		var args = [ this ].concat(Array.prototype.slice.call(arguments, 1));
		var s = new (Function.prototype.bind.apply(cls, [ null ].concat(args)))();
		this.children.push(s);
		return s;
	},
	render: function() {
		return uci.load(this.config).then(L.bind(function() {
			return Promise.all(this.children.map(function(s) { return s.render(); }));
		}, this)).then(L.bind(function(nodes) {
			return E('div', { 'class': 'cbi-map', 'id': 'cbi-' + this.config }, [
				E('h2', {}, [ this.title || '' ]), E('div', { 'class': 'cbi-map-descr' }, [ this.description || '' ])
			].concat(nodes));
		}, this));
	}
});

return baseclass.extend({
	Map: Map,
	NamedSection: NamedSection,
	TypedSection: TypedSection,
	GridSection: GridSection,
	TableSection: TableSection,
	AbstractValue: AbstractValue,
	Value: Value,
	DummyValue: DummyValue,
	TextValue: TextValue,
	DynamicList: DynamicList,
	Flag: Flag,
	ListValue: ListValue,
	MultiValue: MultiValue
});
