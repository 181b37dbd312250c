# vde-ipn: `make run` starts a switch, `make test` sets up and runs every test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
# Debian packages the tests use as real peers and guests
DEBS   := vde2 vdeplug libvdeplug-vlan libvdeplug-agno libvdeplug-pcap qemu-system-x86 user-mode-linux iproute2 tcpdump \
          busybox-static gcc libc6-dev procps linux-image-amd64 util-linux openssh-server openssh-client socat \
          vde2-cryptcab python3 python3-dev libslirp0 libvdeplug-slirp passt
ARGS   ?=

.PHONY: setup debs run test check test-parallel bench clean

setup: debs $(VENV)/.installed

debs:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then echo "as root, install: $$missing" >&2; exit 1; fi; \
	    echo "installing:" $$missing; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(VENV)/.installed: setup.cfg setup.py pyproject.toml vde_ipn/io/switch/_fastpath.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run:
	./compat/vde_switch $(ARGS)

# the whole suite over JOBS pytest-xdist workers (JOBS=0: in one process, file by
# file).  Much of a test's time is spent waiting on guests and other processes, so
# the default is twice the cores, at least 4.  A file whose tests share a module
# fixture (guests, namespaces, a compiled helper) runs on one worker, other tests
# one by one (see tests/conftest.py).
JOBS   ?= $(shell n=$$(nproc); [ $$n -lt 2 ] && n=2; echo $$((n * 2)))
test: setup
	$(PY) -m pytest -n $(JOBS) --dist loadgroup --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# the sans-IO core, codecs and the IPN emulation: seconds, for every edit
CHECK_JOBS ?= 4
check: setup
	$(PY) -m pytest -q -n $(CHECK_JOBS) --dist loadgroup --no-loadscope-reorder tests/unit tests/ipn $(PYTEST_ARGS)

# (the old name of the parallel suite, now `make test`)
test-parallel: test

bench: setup
	$(PY) benchmarks/switch_forwarding.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
