# bandix developer entry points. Every target installs what it needs (Debian
# packages and a .venv), idempotently, so a fresh machine needs only `make`.
SHELL := /bin/bash
.DEFAULT_GOAL := setup

VENV := .venv
PY := $(VENV)/bin/python
ARCH_INCLUDE := /usr/include/$(shell uname -m)-linux-gnu
BPF_CFLAGS := -O2 -g -Wall -Wextra -Werror -I$(ARCH_INCLUDE)
BPF_OBJECTS := bpf/bandix.bpfel.o bpf/bandix.bpfeb.o

# Build: clang, libbpf headers. Run: libbpf1, iproute2. Tests, demo and bench:
# the virtual router's tools (dnsmasq and udhcpc for its DHCP), real clients and servers, tmux
# (bandix top in a real terminal), a browser for the dashboard, and the
# fleet tools the tests feed: Prometheus (and promtool), nfdump's IPFIX collector nfcapd.
APT_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 nftables iperf3 tcpdump \
	iputils-ping bind9-dnsutils dnsperf dnsmasq-base udhcpc tmux curl openssl python3 python3-venv util-linux procps \
	chromium fonts-dejavu-core prometheus nfdump
# Debian starts these at install (Prometheus on every address); the tests run their own, so
# when `deps` installs them it also stops and disables them (a user's own are left alone).
TEST_ONLY_SERVICES := prometheus nfdump

.PHONY: setup deps venv bpf test test-arch demo bench lint clean ipk

setup: deps venv bpf

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
		installed=" $$(echo $$missing) "; \
		for s in $(TEST_ONLY_SERVICES); do case "$$installed" in *" $$s "*) \
			[ ! -d /run/systemd/system ] || systemctl disable --now $$s 2>/dev/null || true;; esac; done; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml | deps
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Always rebuilt (it takes a second): the big-endian object is compiled on
# every run, so it cannot rot unnoticed on a little-endian machine.
# Each object is written beside its final name and renamed into place, so a
# daemon or test loading it never reads half a file.
bpf: deps
	clang $(BPF_CFLAGS) -target bpfel -c bpf/bandix.bpf.c -o bpf/bandix.bpfel.o.tmp
	clang $(BPF_CFLAGS) -target bpfeb -c bpf/bandix.bpf.c -o bpf/bandix.bpfeb.o.tmp
	clang $(BPF_CFLAGS) -target bpfel -c bench/empty.bpf.c -o bench/empty.bpfel.o.tmp
	mv bpf/bandix.bpfel.o.tmp bpf/bandix.bpfel.o
	mv bpf/bandix.bpfeb.o.tmp bpf/bandix.bpfeb.o
	mv bench/empty.bpfel.o.tmp bench/empty.bpfel.o

# JS: every script of the dashboard and the LuCI app, with eslint from npm in
# .eslint/ (git-ignored; installed once, again only when the pinned version changes).
ESLINT_DIR := .eslint
ESLINT_VERSION := 9.39.5
ESLINT := $(ESLINT_DIR)/node_modules/.bin/eslint
ESLINT_STAMP := $(ESLINT_DIR)/.installed-$(ESLINT_VERSION)
JS_FILES = bandix/web/*.js $(shell find luci-app-bandix/htdocs -name '*.js')

# Debian's nodejs and npm, unless a node with its own npm is already installed.
NODE_APT_PACKAGES := nodejs npm

$(ESLINT_STAMP): | deps
	command -v node >/dev/null && command -v npm >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(NODE_APT_PACKAGES); }
	npm install --prefix $(ESLINT_DIR) --no-audit --no-fund --no-save --silent eslint@$(ESLINT_VERSION) globals@15
	touch $@

test: setup $(ESLINT_STAMP)
	$(PY) -m pytest -q

# The BPF object and the daemon on other architectures' real kernels, in qemu VMs:
# s390x (64-bit big-endian) and armhf (32-bit little-endian), images of Debian 12
# built by mmdebstrap into .cache/arch/ (git-ignored; rebuilt when their recipe in
# tests/arch/images.py changes). See tests/arch/__init__.py.
ARCH_APT_PACKAGES := qemu-system-misc qemu-system-arm qemu-user-static binfmt-support mmdebstrap arch-test e2fsprogs

test-arch: setup
	@missing=$$(for p in $(ARCH_APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	fi
	$(PY) -m tests.arch

demo: setup
	$(PY) -m tests.demo

bench: setup
	$(PY) -m bench

# Installable .ipk files (bandix for x86_64 and mips_24kc, luci-app-bandix) in
# dist/ipk/, without the OpenWrt SDK; the .pyc files need this Python 3.11.
ipk: venv bpf
	$(PY) openwrt/ipk.py --out dist/ipk

lint: venv $(ESLINT_STAMP)
	$(VENV)/bin/ruff check bandix tests bench luci-app-bandix openwrt
	$(ESLINT) --config luci-app-bandix/eslint.config.mjs $(JS_FILES)

clean:
	rm -f bpf/*.o bpf/*.tmp bench/*.o bench/*.tmp
	rm -rf $(VENV) .pytest_cache $(ESLINT_DIR) dist .cache/arch
