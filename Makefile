# sidecache: each target first installs the system packages it needs (scripts/deps.sh).
#
#   make demo       build, start a sample API and sidecache in front of it, show a MISS then a HIT
#   make test       build and run every test (unit and end-to-end, with real redis-server),
#                   then fuzz the HTTP/1 parser for a minute (scripts/fuzz.sh, FUZZ_SECONDS=...)
#   make build      debug build
#   make release    optimised build: .build/release/sidecache
#   make install    install the release binary, the config and the systemd unit (PREFIX=/usr/local)
#   make bench      the load benchmark (bench/run; SCENARIOS=..., DURATION=...)

SWIFT     ?= swift
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
CONFDIR   ?= /etc/sidecache
UNITDIR   ?= /etc/systemd/system
DESTDIR   ?=

.PHONY: demo test build release install bench clean

demo:
	@scripts/deps.sh build
	$(SWIFT) run sidecache demo

# The browser test and the warming end-to-end suite run after the rest: Chromium's start and a
# dozen more sidecaches would otherwise compete with the timing-sensitive tests for two cores.
LATE_TESTS = DashboardBrowserTests|WarmingEndToEndTests
test:
	@scripts/deps.sh test
	$(SWIFT) test --skip "$(LATE_TESTS)"
	$(SWIFT) test --skip-build --filter "$(LATE_TESTS)"
	scripts/fuzz.sh $${FUZZ_SECONDS:-60}

build:
	@scripts/deps.sh build
	$(SWIFT) build

release:
	@scripts/deps.sh build
	$(SWIFT) build -c release --product sidecache

# The config is installed only where none exists (an edited one is never overwritten); the unit
# names the binary and config where this install put them.
install:
	@[ -x .build/release/sidecache ] || $(MAKE) release
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(UNITDIR)
	install -m 755 .build/release/sidecache $(DESTDIR)$(BINDIR)/sidecache
	@if [ -e $(DESTDIR)$(CONFDIR)/sidecache.yaml ]; then \
		echo "kept the existing $(CONFDIR)/sidecache.yaml (the shipped example is conf/sidecache.yaml)"; \
	else \
		echo "install -m 644 conf/sidecache.yaml $(DESTDIR)$(CONFDIR)/sidecache.yaml"; \
		install -m 644 conf/sidecache.yaml $(DESTDIR)$(CONFDIR)/sidecache.yaml; \
	fi
	sed -e 's|/usr/local/bin/sidecache|$(BINDIR)/sidecache|g' -e 's|/etc/sidecache|$(CONFDIR)|g' \
		systemd/sidecache.service > $(DESTDIR)$(UNITDIR)/sidecache.service
	chmod 644 $(DESTDIR)$(UNITDIR)/sidecache.service
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo
	@echo "Installed. What remains (as root):"
	@echo "  id sidecache > /dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin sidecache"
	@echo "  systemctl enable --now sidecache"

bench:
	@scripts/deps.sh bench
	bench/run

clean:
	$(SWIFT) package clean
