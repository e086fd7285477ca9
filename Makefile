# Portico — the two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
# OUT receives the portico binary and, in OUT/plugins, the bundled plugins
# it registers at start (`make build OUT=/tmp/x` builds elsewhere).
OUT     ?= bin
BIN     := $(OUT)/portico
export PATH := /usr/local/go/bin:$(PATH)
# gin's msgpack binding (and its codec library, one of the slowest
# packages to compile) is never used: leave it out of every build.
export GOFLAGS ?= -tags=nomsgpack

.PHONY: build plugins run test vet bench bench-blueprints bench-scorecards bench-aggregate bench-automations bench-temporal fuzz clean FORCE

# The plugins bundled with the portal, built the way a third-party author
# builds them. Each is built once its directory under plugins/ exists.
WASM_PLUGINS   := pagerduty github
NATIVE_PLUGINS := kubernetes
bundled     = $(patsubst plugins/%,%,$(wildcard $(addprefix plugins/,$(1))))
WASM_BUILT   := $(call bundled,$(WASM_PLUGINS))
NATIVE_BUILT := $(call bundled,$(NATIVE_PLUGINS))
WASM_OUT     := $(WASM_BUILT:%=$(OUT)/plugins/%.wasm)
NATIVE_OUT   := $(NATIVE_BUILT:%=$(OUT)/plugins/%)

## build: bin/portico and the bundled plugins in bin/plugins
build: $(BIN) $(WASM_OUT) $(NATIVE_OUT)
	@mkdir -p $(OUT)/plugins

## plugins: only the bundled plugins, in bin/plugins
plugins: $(WASM_OUT) $(NATIVE_OUT)

# Always handed to go build, whose cache knows what changed.
$(BIN): FORCE
	$(GO) build -o $@ ./cmd/portico

# Plugins are built without VCS stamps: their bytes change with their code,
# not with every commit (a registered name@version refuses other bytes, and
# compiled Wasm is cached by its bytes).
$(WASM_OUT): $(OUT)/plugins/%.wasm: FORCE
	@mkdir -p $(@D)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildvcs=false -buildmode=c-shared -o $@ ./plugins/$*

$(NATIVE_OUT): $(OUT)/plugins/%: FORCE
	@mkdir -p $(@D)
	$(GO) build -buildvcs=false -o $@ ./plugins/$*

## run: the whole portal with embedded defaults on http://127.0.0.1:7070
run: build
	$(BIN) dev

# Packages linking the embedded Temporal server: their race build alone
# takes ~10 minutes cold on 2 cores, so they are tested without -race
# (the workflows themselves are race-tested in ./workflows with the SDK's
# test suite).
# The Kubernetes plugin and its stand-in link client-go (~300 packages):
# the Temporal server and the bundled plugin binary compile it without
# -race anyway, and a race build of it too costs ~150 s of compile CPU
# on a cold cache (over a minute of a 2-core cold run), so they join the
# list; the price is that the plugin's change queue and informer handlers
# run under the race detector nowhere.
NORACE  := ./cmd/portico ./workflows/devserver ./integration-tests \
           ./plugins/kubernetes ./plugins/kubernetes/standin

## test: every test, race detector on (needs redis-server on PATH: .ci/run installs it)
# Test builds carry no DWARF (-dwarf=false, -w): nobody attaches a debugger
# to them, stack traces and race reports come from the symbol table, and
# leaving it out cuts ~18% of the compile and link CPU of a cold build.
# GOFLAGS reaches every go command of the target, the plugin builds the
# tests run included, so they all share one build cache configuration.
test vet: GOFLAGS += -gcflags=all=-dwarf=false -ldflags=-w
# The compiler and linker are Go programs: with the collector running 4×
# less often they need ~16% less CPU on a cold build (memory is plentiful:
# a compile peaks at a few hundred MiB). The tests run with it too; none
# depends on how often the collector runs.
test vet: export GOGC := 400
# Code that only the Temporal-linked binaries carry (the Temporal server
# and what it drags in: cloud SDKs, client-go, envoy's protos; ~1,100
# packages, 70% of the compile without -race) is compiled for the tests
# without optimizations or inlining: ~20% less compile CPU, and these
# tests wait on Temporal's timers, not on its speed. SQLite (modernc) stays
# optimized. `make build`, `make run` and `make bench` are not affected.
UNOPTIMIZED := go.temporal.io/server/... github.com/aws/... k8s.io/... \
               github.com/envoyproxy/... cloud.google.com/go/... \
               github.com/olivere/... github.com/jackc/... github.com/gocql/...
test vet: GOFLAGS += $(foreach p,$(UNOPTIMIZED),'-gcflags=$(p)=-dwarf=false -N -l')
# Two streams share the two cores. First (plain) the packages linking the
# Temporal server: they compile most of a cold build, ~1,900 packages
# without -race, and their end-to-end tests mostly wait on timers and
# restarts. Beside them, at a lower CPU priority (nice 5: a quarter of
# the CPU while both want it; at nice 15 the race tests starved beside two
# spinning processes) so the plain stream's compile comes first, the
# race-tested packages build and run, and take the cores whenever the
# plain stream waits. Every test holds on a
# loaded machine (README: "Tests that hold on a busy machine").
# `go vet` is not part of `make test` (it type-checks every dependency
# again: ~90 s of CPU cold); `make vet` runs it and .ci/run runs both.
RACE = $$($(GO) list ./... | grep -vxF "$$($(GO) list $(NORACE))")
test:
	@$(GO) test -vet=off -count=1 -timeout 30m $(NORACE) & plain=$$!; \
	nice -n 5 $(GO) test -vet=off -race -count=1 -timeout 30m $(RACE); race=$$?; \
	wait $$plain; plain=$$?; \
	if [ $$plain -ne 0 ]; then echo "FAIL: the tests without -race"; fi; \
	if [ $$race -ne 0 ]; then echo "FAIL: the tests with -race"; fi; \
	[ $$race -eq 0 ] && [ $$plain -eq 0 ]

## vet: go vet ./... (every analyzer), with make test's build flags so that it
## reuses its compile; .ci/run runs it after make test
vet:
	$(GO) vet ./...

## bench: Go benchmarks, the catalog load test against real redis-server, action runs on embedded Temporal
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./core/... ./host/... ./devredis
	$(GO) run ./bench/catalog
	$(GO) test ./integration-tests -run '^$$' -bench BenchmarkRuns -benchtime 1000x -count 3
	$(GO) test ./integration-tests -run '^$$' -bench BenchmarkPending -benchtime 1x -timeout 40m
	$(GO) test ./integration-tests -run '^$$' -bench 'PagerDuty|GitHub|KubernetesInitialSync' -benchtime 1x -timeout 40m
	$(GO) test ./integration-tests -run '^$$' -bench KubernetesWatch -timeout 10m

## bench-blueprints: blueprint changes on 100,000 then 1,000,000 entities, real
## redis-server and portico serve (issue 16; ~3 GiB of Redis at the larger size)
bench-blueprints: $(BIN)
	$(GO) run ./bench/catalog -portico $(BIN) -scenario blueprint-change -entities 100000
	$(GO) run ./bench/catalog -portico $(BIN) -scenario blueprint-change -entities 1000000 -search-every 2s

## bench-scorecards: 5 scorecards of 10 rules on 100,000 services, real
## redis-server + serve: write p99 added by grading, regrading rate (issue 14)
bench-scorecards: $(BIN)
	$(GO) run ./bench/catalog -portico $(BIN) -scenario scorecards -entities 100000 -upserts 1000 -quiet 5s

## bench-aggregate: POST /entities/aggregate's catalog path over 100,000 entities on a
## real redis-server (issue 14): p50/p99 of 30 runs per aggregate, 3 times
bench-aggregate:
	$(GO) test ./core/catalog/rediscatalog -run '^$$' -bench BenchmarkAggregate -benchtime 30x -count 3

## bench-automations: event → automation's action run started, p50/p99 at
## 500 events/s for 20 s (real redis-server, embedded Temporal), 3 runs
bench-automations:
	$(GO) test ./cmd/portico -run '^$$' -bench BenchmarkAutomationLatency -benchtime 1x -count 3 -timeout 30m

## bench-temporal: the embedded Temporal server's ceiling: 3,000 empty
## workflows started by 32 clients, starts/s and completions/s, 3 runs
bench-temporal:
	$(GO) test ./workflows/devserver -run '^$$' -bench BenchmarkEmptyWorkflows -benchtime 1x -count 3 -timeout 30m

## fuzz: a short run of each decoder fuzzer (seeds live in testdata/fuzz)
fuzz:
	$(GO) test ./core/catalog -run '^$$' -fuzz FuzzDecodeEntity -fuzztime 30s
	$(GO) test ./core/catalog -run '^$$' -fuzz FuzzDecodeQuery -fuzztime 30s
	$(GO) test ./core/catalog -run '^$$' -fuzz FuzzSplitBulk -fuzztime 30s
	$(GO) test ./core/catalog -run '^$$' -fuzz FuzzJSONValid -fuzztime 30s
	$(GO) test ./core/catalog -run '^$$' -fuzz FuzzMarshalEntity -fuzztime 30s

clean:
	rm -rf bin .portico
