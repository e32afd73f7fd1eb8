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

.PHONY: run build test test-short test-faults bench fuzz lint vet fmt clean

run: build
	./$(BIN) serve

# `walletauth version` prints VERSION and COMMIT. Go records the VCS
# revision itself too (debug.ReadBuildInfo), but not with -buildvcs=false
# or outside a checkout, hence both are passed.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN) ./cmd/walletauth

# Tests on SQLite and the in-process store everywhere; on PostgreSQL and
# Redis too when WALLETAUTH_TEST_DATABASE_URL / WALLETAUTH_TEST_REDIS_URL are
# set (required when CI=true).
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	cd $(LOADTEST) && $(GO) vet ./... && $(GO) test -race -count=1 ./...

test-short:
	$(GO) test -count=1 $(PKGS)

# Fault tests: throwaway PostgreSQL and Redis servers stopped and restarted.
test-faults:
	$(GO) test -race -count=1 -timeout 10m -tags faults -run 'Fault' ./faults/...

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Bounded fuzzing of the parsers and the login body (not part of CI): a failing
# input is written to testdata/fuzz/NAME/ and is committed with its fix; the seed
# corpus there runs in every go test.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessage$$' -fuzztime $(FUZZTIME) ./wallet/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSignature$$' -fuzztime $(FUZZTIME) ./wallet/
	$(GO) test -run '^$$' -fuzz '^FuzzRecover$$' -fuzztime $(FUZZTIME) ./wallet/
	$(GO) test -run '^$$' -fuzz '^FuzzWalletLoginBody$$' -fuzztime $(FUZZTIME) ./auth/

# The linters of .golangci.yml (STYLE.md's baseline), fault tests included.
lint: vet
	$(GOLANGCI_LINT) run --build-tags faults $(PKGS)
	cd $(LOADTEST) && $(GOLANGCI_LINT) run --config ../../.golangci.yml ./...

vet:
	$(GO) vet $(PKGS)
	cd $(LOADTEST) && $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin walletauth.db walletauth.db-wal walletauth.db-shm
