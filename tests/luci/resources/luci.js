/*
 * Stand-in for LuCI's luci.js (luci-base): the parts the bandix views use.
 * L.require compiles a module as LuCI does: its leading 'require x [as y]'
 * directives name the dependencies, the source becomes the body of
 * function(window, document, L, deps...), the factory must return a class,
 * and the module is that class's instance. E() follows LuCI's dom.create:
 * a bare string child is HTML, strings inside an array are text.
 */
(function(window) {
	'use strict';

	function Class() {}
	Class.extend = function(proto) {
		var parent = this;
		var C = function() {
			if (typeof this.__init__ === 'function')
				this.__init__.apply(this, arguments);
		};
		C.prototype = Object.create(parent.prototype);
		Object.keys(proto || {}).forEach(function(k) { C.prototype[k] = proto[k]; });
		C.prototype.constructor = C;
		C.extend = Class.extend;
		C.isSubclass = Class.isSubclass;
		return C;
	};
	Class.isSubclass = function(c) { return typeof c === 'function' && (c === Class || c.prototype instanceof Class); };
	Class.singleton = function(proto) { return new (Class.extend(proto))(); };

	String.prototype.format = function() {
		var args = arguments, i = 0;
		return this.replace(/%([sdh%])/g, function(m, t) {
			if (t === '%') return '%';
			var v = args[i++];
			if (t === 'd') return String(Math.floor(+v));
			if (t === 'h') return String(v).replace(/[<>&"']/g, function(c) { return '&#' + c.charCodeAt(0) + ';'; });
			return String(v);
		});
	};

	var DOM = {
		elem: function(e) { return e != null && typeof e === 'object' && 'nodeType' in e; },
		append: function(node, children) {
			if (Array.isArray(children)) {
				for (var i = 0; i < children.length; i++)
					if (this.elem(children[i])) node.appendChild(children[i]);
					else if (children[i] !== null && children[i] !== undefined) node.appendChild(document.createTextNode('' + children[i]));
				return node.lastChild;
			}
			if (typeof children === 'function') return this.append(node, children(node));
			if (this.elem(children)) return node.appendChild(children);
			if (children !== null && children !== undefined) { node.innerHTML = '' + children; return node.lastChild; }
			return null;
		},
		content: function(node, children) {
			while (node.firstChild) node.removeChild(node.firstChild);
			return this.append(node, children);
		},
		create: function(html, attr, data) {
			var elem = this.elem(html) ? html : document.createElement(html);
			if (data === undefined && (this.elem(attr) || Array.isArray(attr) || typeof attr !== 'object')) {
				data = attr;
				attr = null;
			}
			Object.keys(attr || {}).forEach(function(k) {
				var v = attr[k];
				if (v === null || v === undefined) return;
				if (typeof v === 'function') elem.addEventListener(k, v);
				else if (typeof v === 'object') elem.setAttribute(k, JSON.stringify(v));
				else elem.setAttribute(k, v);
			});
			this.append(elem, data);
			return elem;
		}
	};

	var View = Class.extend({
		__init__: function() {
			var vp = document.getElementById('view');
			DOM.content(vp, DOM.create('div', { 'class': 'spinning' }, 'Loading view…'));
			return Promise.resolve(this.load()).then(L.bind(this.render, this)).then(L.bind(function(nodes) {
				DOM.content(vp, nodes);
				DOM.append(vp, this.addFooter());
			}, this)).catch(L.error);
		},
		load: function() {},
		render: function() {},
		/* view.js: Save saves every form map of the page, Save & Apply then applies (ui.changes.apply). */
		handleSave: function() {
			var maps = document.querySelectorAll('#maincontent .cbi-map');
			return Promise.all(Array.prototype.map.call(maps, function(m) { return m.__map ? m.__map.save() : null; }));
		},
		handleSaveApply: function(ev) {
			return this.handleSave(ev).then(function() {
				return L.require('ui').then(function(ui) { return ui.changes.apply(true); });
			});
		},
		handleReset: function() { window.location.reload(); },
		addFooter: function() {
			var buttons = [], self = this;
			/* ui.createHandlerFn: the button is busy while the handler runs; a failed save was shown already. */
			function button(cls, label, fn) {
				return DOM.create('button', { 'class': 'cbi-button ' + cls, 'click': function(ev) {
					ev.target.disabled = true;
					return Promise.resolve().then(function() { return fn.call(self, ev); })
						.catch(function() {}).then(function() { ev.target.disabled = false; });
				} }, [ label ]);
			}
			if (this.handleSaveApply) buttons.push(button('cbi-button-apply', 'Save & Apply', this.handleSaveApply));
			if (this.handleSave) buttons.push(button('cbi-button-save', 'Save', this.handleSave));
			if (this.handleReset) buttons.push(button('cbi-button-reset', 'Reset', this.handleReset));
			return DOM.create('div', { 'class': 'cbi-page-actions' }, buttons);
		}
	});

	var Poll = Class.singleton({
		add: function(fn, interval) {
			var e = { running: false };
			e.timer = setInterval(function() {
				if (e.running) return;
				e.running = true;
				Promise.resolve().then(fn).catch(L.error).then(function() { e.running = false; });
			}, (interval || 5) * 1000);
			return true;
		},
		start: function() { return true; },
		stop: function() { return true; },
		active: function() { return true; }
	});

	var classes = { baseclass: Class, dom: DOM, poll: Poll, view: View };

	function compile(name, url, source) {
		var deps = [], aliases = [], rest = source, m;
		var directive = /^\s*(['"])([^'"]*)\1\s*;?/;
		while ((m = directive.exec(rest)) !== null) {
			rest = rest.slice(m[0].length);
			var r = /^require\s+(\S+)(?:\s+as\s+(\w+))?$/.exec(m[2]);
			if (m[2] === 'use strict') continue;
			if (!r) break;
			deps.push(L.require(r[1]));
			aliases.push(r[2] || r[1].replace(/[^a-zA-Z0-9_]/g, '_'));
		}
		return Promise.all(deps).then(function(instances) {
			var factory = eval('(function(window, document, L' + aliases.map(function(a) { return ', ' + a; }).join('') +
				') { ' + source + '\n})\n//# sourceURL=' + url);
			var cls = factory.apply(factory, [ window, document, L ].concat(instances));
			if (!Class.isSubclass(cls))
				throw new TypeError('"' + name + '" factory yields invalid constructor');
			return (classes[name] = new cls());
		});
	}

	var L = window.L = {
		env: { sessionid: '00000000000000000000000000000000', pollinterval: 5, requestpath: [], apply_rollback: 90, apply_holdoff: 4 },
		Class: Class,
		dom: DOM,
		bind: function(fn, self) {
			var args = Array.prototype.slice.call(arguments, 2);
			return function() { return fn.apply(self, args.concat(Array.prototype.slice.call(arguments))); };
		},
		isObject: function(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); },
		toArray: function(v) {
			if (v == null) return [];
			if (Array.isArray(v)) return v;
			return String(v).trim() ? String(v).trim().split(/\s+/) : [];
		},
		resolveDefault: function(p, d) { return Promise.resolve(p).catch(function() { return d; }); },
		raise: function(type, fmt) {
			var e = new Error(String(fmt).format.apply(String(fmt), Array.prototype.slice.call(arguments, 2)));
			e.name = type;
			throw e;
		},
		error: function(e) {
			console.error('LuCI error: ' + (e && e.stack ? e.stack : e));
			throw e;
		},
		resource: function(path) { return '/luci-static/resources/' + path; },
		url: function() { return '/cgi-bin/luci/' + Array.prototype.join.call(arguments, '/'); },
		require: function(name) {
			if (classes[name])
				return Promise.resolve(classes[name]);
			var url = L.resource(name.replace(/\./g, '/') + '.js');
			classes[name] = fetch(url).then(function(res) {
				if (!res.ok) throw new Error('HTTP error ' + res.status + ' while loading class file "' + url + '"');
				return res.text();
			}).then(function(source) { return compile(name, url, source); });
			return classes[name];
		}
	};

	window.E = function() { return DOM.create.apply(DOM, arguments); };
	window._ = function(s) { return s; };
	window.N_ = function(n, s, p) { return n === 1 ? s : p; };
})(window);
