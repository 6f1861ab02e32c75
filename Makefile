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
# the virtual router's tools, real clients and servers, and a browser for the dashboard.
APT_PACKAGES := clang llvm libbpf-dev libbpf1 bpftool iproute2 nftables iperf3 tcpdump \
	iputils-ping bind9-dnsutils dnsperf dnsmasq-base curl openssl python3 python3-venv util-linux procps \
	chromium fonts-dejavu-core

.PHONY: setup deps venv bpf test demo bench lint clean

setup: deps venv bpf

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
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

test: setup
	$(PY) -m pytest -q

demo: setup
	$(PY) -m tests.demo

bench: setup
	$(PY) -m bench

lint: venv
	$(VENV)/bin/ruff check bandix tests bench

clean:
	rm -f bpf/*.o bpf/*.tmp bench/*.o bench/*.tmp
	rm -rf $(VENV) .pytest_cache
