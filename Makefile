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

.PHONY: build generate test test-integration test-e2e bench release release-nopayload lint check clean

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
	$(GO) test -tags e2e -count=1 -p 1 -timeout 60m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# dist/: tpctl-linux-{amd64,arm64} with their payload, install.sh, SHA256SUMS
# (reproducible; see scripts/release). The pinned K3s is fetched unless
# RELEASE_ARTIFACTS_DIR names a directory holding its release files.
release:
	scripts/release

# The same dist/ layout WITHOUT the K3s payload (charts and operator image
# only); the output and `tpctl version` say so.
release-nopayload:
	scripts/release --no-payload

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
