# tpctl build entry points. `make` builds bin/tpctl.
SHELL := /bin/bash
GO ?= go
PKG := github.com/tpctl/tpctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell git log -1 --format=%cI 2>/dev/null)
LDFLAGS := -s -w -buildid= \
	-X $(PKG)/internal/buildinfo.Version=$(VERSION) \
	-X $(PKG)/internal/buildinfo.Commit=$(COMMIT) \
	-X $(PKG)/internal/buildinfo.Date=$(DATE)
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'

.PHONY: build generate test test-integration test-e2e bench release lint check clean

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o bin/tpctl ./cmd/tpctl

# Regenerate deepcopy code and CRD manifests from api/ (needs the Go module proxy
# once, to fetch the pinned controller-gen).
generate:
	scripts/generate

# Unit tests: fast, no cluster. Network-namespace tests run when root.
test:
	$(GO) test ./...

# Tests against a real kube-apiserver (test/cluster ControlPlane).
test-integration:
	scripts/test-deps
	$(GO) test -tags integration -count=1 ./...

# Tests on a full node and a booted systemd host.
test-e2e:
	scripts/test-deps
	$(GO) test -tags e2e -count=1 -p 1 -timeout 40m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Fetch pinned artifacts where the network allows, then build the full binary.
release:
	scripts/release

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags e2e ./...

# Everything CI runs.
check:
	scripts/test-all

clean:
	rm -rf bin
