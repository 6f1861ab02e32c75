'use strict';
'require baseclass';
'require uci';
'require ui';

/*
 * Stand-in for LuCI's form.js (luci-base htdocs/luci-static/resources/form.js), our own code
 * modelling what the bandix settings view relies on:
 * - ids as LuCI names them: widget.cbid.<config>.<section>.<option>, cbi-<config>-<section>;
 * - AbstractValue.parse: an inactive option (depends not met) is removed; an invalid one
 *   rejects the save with 'Option "<title>" contains an invalid input value. <error>'; a
 *   non-empty value different from the config is written (uci.set); an empty one is removed
 *   when rmempty (the default) or refused ('must not be empty') when not;
 * - isValid: the datatype (luci-base validation.js: port, uinteger, range(a,b), macaddr, cidr)
 *   then the option's validate(section_id, value) function, true or an error message;
 *   AbstractSection.formvalue(section_id, option) lets one option's check read another's;
 * - Map.save: parse every section, then uci.save() and a new render; an error is shown and
 *   nothing is saved;
 * - GridSection: existing rows as text (as LuCI's grid shows them), the Add button's new
 *   section with its options as widgets (what LuCI's add modal holds), parsed on save.
 */

var DATATYPES = {
	port: function(v) { return /^\d+$/.test(v) && +v <= 65535 ? true : 'Expecting: valid port value'; },
	uinteger: function(v) { return /^\d+$/.test(v) ? true : 'Expecting: positive integer value'; },
	macaddr: function(v) { return /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(v) ? true : 'Expecting: valid MAC address'; },
	cidr: function(v) {
		var m = /^([0-9.]+|[0-9a-fA-F:]+)\/(\d{1,3})$/.exec(v);
		return m && +m[2] <= (m[1].indexOf(':') >= 0 ? 128 : 32) ? true : 'Expecting: valid IPv4 or IPv6 CIDR';
	},
	range: function(v, min, max) {
		return /^-?\d+(\.\d+)?$/.test(v) && +v >= +min && +v <= +max ? true : 'Expecting: value between %s and %s'.format(min, max);
	}
};

function checkDatatype(type, value) {
	var m = /^(\w+)(?:\((.*)\))?$/.exec(type || '');
	if (!m || !DATATYPES[m[1]]) return true;
	return DATATYPES[m[1]].apply(null, [ value ].concat(m[2] ? m[2].split(/\s*,\s*/) : []));
}

function isEqual(a, b) { return JSON.stringify(a == null ? null : a) === JSON.stringify(b == null ? null : b); }

var AbstractValue = baseclass.extend({
	__init__: function(map, section, option, title, description) {
		this.map = map;
		this.section = section;
		this.option = option;
		this.title = title;
		this.description = description;
		this.choices = [];
		this.deps = [];
		this.rmempty = true;
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
	widget: function(sid) { return document.getElementById('widget.' + this.cbid(sid)); },
	renderWidget: function(sid) {
		return E('input', { 'id': 'widget.' + this.cbid(sid), 'type': 'text', 'value': this.textvalue(sid), 'placeholder': this.placeholder || null });
	},
	formvalue: function(sid) {
		var w = this.widget(sid);
		return w ? w.value.trim() : null;
	},
	isActive: function(sid) {
		var section = this.section;
		return !this.deps.length || this.deps.some(function(d) { return section.formvalue(sid, d[0]) === d[1]; });
	},
	validationError: function(sid, value) {
		if (value === '' || value == null)
			return true;
		var ok = checkDatatype(this.datatype, value);
		if (ok === true && typeof this.validate === 'function')
			ok = this.validate(sid, value);
		return ok;
	},
	parse: function(sid) {
		if (!this.widget(sid))
			return Promise.resolve();
		var active = this.isActive(sid), fval = active ? this.formvalue(sid) : null, title = this.title || this.option;
		if (active) {
			var error = this.validationError(sid, fval);
			if (error !== true)
				return Promise.reject(new TypeError('Option "%s" contains an invalid input value.'.format(title) + ' ' + error));
		}
		if (fval !== '' && fval != null && !(Array.isArray(fval) && !fval.length)) {
			if (!isEqual(this.cfgvalue(sid), fval))
				uci.set(this.map.config, sid, this.option, fval);
		}
		else if (!active || this.rmempty)
			uci.unset(this.map.config, sid, this.option);
		else
			return Promise.reject(new TypeError('Option "%s" must not be empty.'.format(title)));
		return Promise.resolve();
	}
});

var Value = AbstractValue.extend({});
var DummyValue = AbstractValue.extend({ parse: function() { return Promise.resolve(); } });
var TextValue = AbstractValue.extend({});
var DynamicList = AbstractValue.extend({
	renderWidget: function(sid) {
		return E('div', { 'id': 'widget.' + this.cbid(sid) }, L.toArray(this.cfgvalue(sid)).concat([ '' ]).map(function(v) {
			return E('input', { 'type': 'text', 'value': v });
		}));
	},
	formvalue: function(sid) {
		var w = this.widget(sid);
		return w ? Array.prototype.map.call(w.querySelectorAll('input'), function(i) { return i.value.trim(); })
			.filter(function(v) { return v !== ''; }) : null;
	},
	validationError: function(sid, values) {
		for (var i = 0; i < (values || []).length; i++) {
			var ok = AbstractValue.prototype.validationError.call(this, sid, values[i]);
			if (ok !== true) return ok;
		}
		return true;
	}
});
var Flag = AbstractValue.extend({
	enabled: '1',
	disabled: '0',
	renderWidget: function(sid) {
		var v = this.cfgvalue(sid);
		if (v == null) v = this.default;
		return E('input', { 'id': 'widget.' + this.cbid(sid), 'type': 'checkbox', 'checked': v === this.enabled ? '' : null });
	},
	formvalue: function(sid) {
		var w = this.widget(sid);
		return w ? (w.checked ? this.enabled : this.disabled) : null;
	},
	cfgvalue: function(sid) {
		var v = uci.get(this.map.config, sid, this.option);
		return v == null ? (this.default != null ? this.default : this.disabled) : v;
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
	},
	renderWidget: function(sid) {
		var v = L.toArray(this.cfgvalue(sid) != null ? this.cfgvalue(sid) : this.default);
		return E('select', { 'id': 'widget.' + this.cbid(sid), 'multiple': '' }, this.choices.map(function(c) {
			return E('option', { 'value': c[0], 'selected': v.indexOf(c[0]) >= 0 ? '' : null }, [ c[1] ]);
		}));
	},
	formvalue: function(sid) {
		var w = this.widget(sid);
		return w ? Array.prototype.map.call(w.selectedOptions, function(o) { return o.value; }) : null;
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
	formvalue: function(sid, option) {
		var o = this.children.filter(function(c) { return c.option === option; })[0];
		if (!o) return null;
		var v = o.formvalue(sid);
		return v == null ? o.cfgvalue(sid) : v;
	},
	parse: function() {
		var children = this.children;
		return this.cfgsections().reduce(function(p, sid) {
			return children.reduce(function(q, o) { return q.then(function() { return o.parse(sid); }); }, p);
		}, Promise.resolve());
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
	cfgsections: function() { return [ this.name ]; },
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
	cfgsections: function() {
		return uci.sections(this.map.config, this.sectiontype).map(function(s) { return s['.name']; });
	},
	render: function() {
		var config = this.map.config, children = this.children, self = this;
		var rows = uci.sections(config, this.sectiontype).map(function(s) {
			var sid = s['.name'], fresh = s['.name'].indexOf('new') === 0;
			return Promise.all(children.map(function(o) { return fresh ? o.renderWidget(sid) : o.textvalue(sid); })).then(function(cells) {
				return E('tr', { 'class': 'tr cbi-section-table-row', 'id': 'cbi-' + config + '-' + sid }, cells.map(function(c, i) {
					return E('td', { 'class': 'td', 'data-name': children[i].option }, [ c ]);
				}));
			});
		});
		return Promise.all(rows).then(function(rows) {
			return E('div', { 'class': 'cbi-section', 'id': 'cbi-' + config + '-' + self.sectiontype }, self.header().concat([
				E('table', { 'class': 'table cbi-section-table' }, [
					E('tr', { 'class': 'tr cbi-section-table-titles' }, children.map(function(o) { return E('th', { 'class': 'th' }, [ o.title || '' ]); }))
				].concat(rows)),
				self.addremove ? E('button', { 'class': 'cbi-button cbi-button-add', 'click': function() {
					self.map.keepTyped();
					uci.add(config, self.sectiontype);
					return self.map.rerender();
				} }, [ 'Add' ]) : ''
			]));
		});
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
	renderContents: function() {
		return Promise.all(this.children.map(function(s) { return s.render(); })).then(L.bind(function(nodes) {
			var node = E('div', { 'class': 'cbi-map', 'id': 'cbi-' + this.config }, [
				E('h2', {}, [ this.title || '' ]), E('div', { 'class': 'cbi-map-descr' }, [ this.description || '' ])
			].concat(nodes));
			node.__map = this;
			return (this.root = node);
		}, this));
	},
	render: function() {
		return uci.load(this.config).then(L.bind(this.renderContents, this));
	},
	/* What was typed survives the new render of an Add (in LuCI, the add modal's own save). */
	keepTyped: function() {
		this.children.forEach(function(s) {
			s.cfgsections().forEach(function(sid) {
				s.children.forEach(function(o) {
					var v = o.widget(sid) ? o.formvalue(sid) : null;
					if (v != null && v !== '' && !isEqual(o.cfgvalue(sid), v))
						uci.set(o.map.config, sid, o.option, v);
				});
			});
		});
	},
	rerender: function() {
		var old = this.root;
		return this.renderContents().then(function(node) { old.parentNode.replaceChild(node, old); return node; });
	},
	save: function() {
		var self = this;
		return this.children.reduce(function(p, s) { return p.then(function() { return s.parse(); }); }, Promise.resolve())
			.then(function() { return uci.save(); })
			.then(function() { return self.rerender(); })
			.catch(function(e) {
				ui.addNotification('Save error', E('p', { 'class': 'bandix-save-error' }, [ e.message ]), 'error');
				return Promise.reject(e);
			});
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
