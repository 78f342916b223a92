# kratos-orgs — the two commands a newcomer needs are `make dev` and `make test`.
SHELL := /bin/bash
GO ?= go
export GOTOOLCHAIN ?= local

KRATOS_BIN := .cache/bin/kratos
KRATOS_VERSION := v1.3.1

.PHONY: all build kratos dev test test-go chart-test lint bench bench-scale bench-kratos fuzz clean image config-docs

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/kratos-orgs .

# Kratos is an ordinary module dependency of tools/kratos (no source copied);
# the first build takes minutes, later ones come from the Go build cache.
kratos: $(KRATOS_BIN)
$(KRATOS_BIN): tools/kratos/go.mod tools/kratos/go.sum tools/kratos/main.go
	@mkdir -p $(dir $@)
	@echo "building Kratos $(KRATOS_VERSION) from the Go module proxy (first time: several minutes)..."
	cd tools/kratos && CGO_ENABLED=1 $(GO) build -tags sqlite \
		-ldflags "-X github.com/ory/kratos/driver/config.Version=$(KRATOS_VERSION)" -o ../../$(KRATOS_BIN) .

# The sidecar with a real Kratos (SQLite; KRATOS_DB=postgres for PostgreSQL,
# see the README), Redis (a local redis-server when
# installed, else an embedded one), a demo organization and mail printed here.
dev: kratos
	$(GO) run ./internal/cmd/dev

# Everything: lint, then every test with the race detector — Redis, Kratos
# and browser tests included — and the Helm chart's tests.
test: kratos lint test-go chart-test

test-go:
	$(GO) test -race -count=1 -timeout 30m ./...

# The Helm chart (charts/kratos-orgs) and the Dockerfile's static build:
# helm lint --strict, strict rendering into Kubernetes types, the values
# schema, the Kratos wiring example. Helm is a Go library in its own module
# (tools/charttest): no helm binary and no Docker engine needed.
chart-test:
	cd tools/charttest && $(GO) vet ./... && $(GO) test -count=1 -timeout 15m ./...

# The container image (needs a Docker engine or another BuildKit builder).
image:
	docker build -t ghcr.io/kratos-orgs/kratos-orgs:dev .

STATICCHECK := .cache/bin/staticcheck
STATICCHECK_VERSION := v0.8.2

$(STATICCHECK):
	GOBIN=$(abspath $(dir $@)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# gofmt, go vet, staticcheck (pinned, installed from the module proxy), a
# tidy go.mod, and no function longer than 100 lines (test helpers too;
# the tests themselves are exempt).
lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.cache/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) mod tidy -diff
	$(GO) run ./internal/cmd/funclen -max 100 .
	$(GO) run ./internal/cmd/funclen -max 100 -tests .

bench:
	$(GO) test -run=NONE -bench=. -benchtime=3s ./server/
	$(GO) test -run=NONE -bench=RegistrationPreHook/paced -benchtime=5000x ./server/

# Redis memory per pending invitation (MEMORY USAGE and used_memory, at
# 100,000 in one organization's slot), and what listing, the address
# look-up, inviting and the expiry sweep cost at 1,000 pending invitations
# and at INVITES_SCALE (one organization, and 100 per organization). A
# million takes several minutes and about 2 GiB of memory.
INVITES_SCALE ?= 1000000
bench-scale:
	$(GO) test -run=NONE -bench=OrgSlotInvitations -benchtime=100000x ./invites/
	$(GO) test -run=NONE -bench=Scale -timeout=60m ./invites/ -invites.scale=$(INVITES_SCALE)

# kratos-orgs side by side with the Kratos it stands in front of, in one
# run: Kratos' own rates (create, look-up, recovery link) and kratos-orgs'
# invitation rates, with the ratios, at c=8 for 10 s each. Kratos runs on
# PostgreSQL (a fresh database on KRATOS_PG_URL, default the local server
# at 127.0.0.1:5432, dropped afterwards; when none answers, one is started
# from Debian's postgresql binaries with its data in .cache/postgres), or
# with KRATOS_DB=sqlite on SQLite with BENCH_IDENTITIES identities present
# (default 10000). BENCH_FLAGS="-c 8 -d 10s" changes the load.
bench-kratos: kratos
	$(GO) run ./internal/cmd/benchkratos $(BENCH_FLAGS)

fuzz:
	@for target in tokens:FuzzParse invites:FuzzNormalizeEmail invites:FuzzCheckRedirect orgs:FuzzSlugify httpx:FuzzDecodeJSON; do \
		pkg=$${target%%:*}; fn=$${target##*:}; \
		$(GO) test -run=NONE -fuzz=$$fn -fuzztime=30s ./$$pkg/ || exit 1; done

clean:
	rm -rf bin .cache/dev

# The README's configuration table, regenerated from the doc tags in
# config/config.go and config.CrossKeyRules (TestReadmeConfigTable fails
# when it is stale).
config-docs:
	$(GO) test -count=1 -run TestReadmeConfigTable ./config -update
