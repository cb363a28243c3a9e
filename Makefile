# zos: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Pure-Go DNS and user lookups: the binary is linked statically (it also runs
# as PID 1 inside containers without a C library), so it must not need glibc's
# NSS modules at run time.
export GOFLAGS := $(GOFLAGS) -tags=netgo,osusergo
# The race detector runs on every package; drop it with `make test RACE=`.
RACE ?= -race
RUN_DIR ?= $(CURDIR)/.run

.PHONY: all deps build test unit e2e run bench fmt vet clean

all: build

deps:
	@scripts/deps.sh

# zos-ledger is the ledger's chain engine, which `zos ledger init|start|testnet`
# runs from beside bin/zos; zos-init is the containers' supervisor, which the
# container runtime mounts from beside bin/zos (see cmd/zos-ledger and
# cmd/zos-init for why they are apart).
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/zos ./cmd/zos
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/zos-ledger ./cmd/zos-ledger
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/zos-init ./cmd/zos-init

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'd: $$out"; exit 1; fi

unit:
	$(GO) test $(RACE) -count=1 -timeout 20m ./...

e2e: build
	ZOS_BIN=$(CURDIR)/bin/zos $(GO) test -tags e2e,netgo,osusergo -count=1 -timeout 20m ./e2e/...

test: deps vet unit e2e

# The main job: the most complete service that exists, on loopback.
run: deps build
	@mkdir -p $(RUN_DIR)
	@echo "zdb listening on 127.0.0.1:9900 (data in $(RUN_DIR)/zdb); try: redis-cli -p 9900 SET hello world"
	bin/zos zdb --listen 127.0.0.1 --port 9900 --data $(RUN_DIR)/zdb/data --index $(RUN_DIR)/zdb/index

bench: deps build
	@scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin $(RUN_DIR)
