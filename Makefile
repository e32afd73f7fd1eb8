# walletauth — `make run` starts the service on its embedded defaults
# (SQLite file, in-process store); `make test` runs the tests.
GO       ?= go
BIN      ?= bin/walletauth
PKGS     ?= ./...
FUZZTIME ?= 30s
# The load tool of scripts/bench.sh, a module of its own: vetted, tested and
# linted from its directory.
LOADTEST ?= tools/loadtest
# golangci-lint, pinned, built through the module proxy on first use.
GOLANGCI_LINT ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

.PHONY: run build test test-js test-short test-faults bench bench-smoke fuzz lint vet fmt clean

# The demo sign-in page is on for make run (WALLETAUTH_DEMO_PAGE=false turns it off).
run: build
	WALLETAUTH_DEMO_PAGE=$${WALLETAUTH_DEMO_PAGE:-true} ./$(BIN) serve

# `walletauth version` prints VERSION and COMMIT. Go records the VCS
# revision itself too (debug.ReadBuildInfo), but not with -buildvcs=false
# or outside a checkout, hence both are passed.
# nomsgpack: gin without its MessagePack binding (unused: the API is JSON),
# 9 MB less binary and ~5 MiB less resident memory (BENCHMARKS.md).
TAGS    ?= nomsgpack
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
build:
	$(GO) build -tags "$(TAGS)" -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN) ./cmd/walletauth

# Tests on SQLite and the in-process store everywhere; on PostgreSQL and
# Redis too when WALLETAUTH_TEST_DATABASE_URL / WALLETAUTH_TEST_REDIS_URL are
# set (required when CI=true).
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	cd $(LOADTEST) && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	@$(MAKE) --no-print-directory test-js

# The JavaScript SDK's tests: Node's test runner against a server built from
# this tree (a viem key as the wallet), the Node example, and the demo page in
# headless Chromium (Debian's; puppeteer-core never downloads one). Without
# node/npm, or without Chromium for the browser tests, they are skipped and
# this says so; with CI=true they are required (.ci/run installs them).
CHROMIUM ?= /usr/bin/chromium
test-js: build
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$CI" = true ]; then echo "test-js: node and npm are required in CI"; exit 1; fi; \
	  echo "test-js: SKIPPED the JavaScript SDK, example and browser tests: node/npm not installed (apt-get install -y nodejs npm)"; exit 0; \
	fi; \
	if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$CI" = true ]; then echo "test-js: Chromium is required in CI (apt-get install -y chromium)"; exit 1; fi; \
	  echo "test-js: SKIPPING the browser tests: no Chromium at $(CHROMIUM) (apt-get install -y chromium)"; \
	fi; \
	for d in clients/js examples/node; do \
	  [ "$$d/node_modules/.package-lock.json" -nt "$$d/package-lock.json" ] || (cd $$d && npm ci --no-audit --no-fund) || exit 1; \
	done; \
	cd clients/js && WALLETAUTH_BIN=$(abspath $(BIN)) CHROMIUM_PATH=$(CHROMIUM) node --test test/*.test.js

test-short:
	$(GO) test -count=1 $(PKGS)

# Fault tests: throwaway PostgreSQL and Redis servers stopped and restarted.
test-faults:
	$(GO) test -race -count=1 -timeout 10m -tags faults -run 'Fault' ./faults/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# The load benchmarks' smoke (scripts/bench.sh SMOKE=1: 2 s per scenario on
# SQLite and on PostgreSQL + Redis, loopback; well under a minute): the ratios
# in the log, not a gate. .ci/run runs it after make lint. The full run is
# scripts/bench.sh itself (its settings are at its top).
bench-smoke:
	SMOKE=1 scripts/bench.sh

# Bounded fuzzing of the parsers and the login body (not part of CI): a failing
# input is written to testdata/fuzz/NAME/ and is committed with its fix; the seed
# corpus there runs in every go test.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessage$$' -fuzztime $(FUZZTIME) ./wallet/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSignature$$' -fuzztime $(FUZZTIME) ./wallet/
	$(GO) test -run '^$$' -fuzz '^FuzzRecover$$' -fuzztime $(FUZZTIME) ./wallet/
	$(GO) test -run '^$$' -fuzz '^FuzzWalletLoginBody$$' -fuzztime $(FUZZTIME) ./auth/

# The linters of .golangci.yml (STYLE.md's baseline), fault tests included.
# --allow-parallel-runners: another checkout's lint on the same machine (CI
# runs beside the session's work) runs beside it instead of failing.
lint: vet
	$(GOLANGCI_LINT) run --allow-parallel-runners --build-tags faults $(PKGS)
	cd $(LOADTEST) && $(GOLANGCI_LINT) run --allow-parallel-runners --config ../../.golangci.yml ./...

vet:
	$(GO) vet $(PKGS)
	cd $(LOADTEST) && $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin walletauth.db walletauth.db-wal walletauth.db-shm
