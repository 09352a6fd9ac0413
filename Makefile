# clinit: build, test, demo, install.
GO       ?= go
BIN      ?= bin/clinit
PREFIX   ?= /usr/local
FUZZTIME ?= 20s

.PHONY: build test fuzz soak demo install clean bench man

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

# Static (no cgo: no dynamic loader and C library to map at each start),
# without symbol tables and build paths: every `clinit GROUP LEVEL` starts
# this binary before it can talk to the daemon.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/clinit/clinit/cli.version=$(VERSION)" -o $(BIN) ./cmd/clinit

# Formatting, vet, and every test (unit and t/ end to end) under the race
# detector. t/ runs every end-to-end scenario, about ten minutes on two
# cores: more than go test's default limit of 10 minutes a package leaves
# room for on a loaded machine.
test:
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

# Every fuzz target, each for FUZZTIME. Go before 1.27 can end a run of
# -fuzztime with "context deadline exceeded" though it found nothing: its
# coordinator races its own deadline on a loaded machine (golang/go#75804).
# A run that fails so, with no failing input written, is made once more;
# any other failure, or that one twice, fails.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    for try in 1 2; do \
	      echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	      out=$$($(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1); rc=$$?; \
	      echo "$$out"; \
	      [ $$rc -eq 0 ] && break; \
	      if [ $$try -eq 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q 'Failing input written'; then \
	        echo "fuzz $$f: stopped at its deadline with nothing found (golang/go#75804): once more"; \
	        continue; \
	      fi; \
	      exit 1; \
	    done; \
	  done; \
	done

# The HA simulation (cluster/sim_test.go) over SIM_SEEDS random seeds
# (1000 by default): prints the seed of any failure. SIM_SEED=N replays
# one seed in every scenario, with its trace.
SIM_SEEDS ?= 1000
soak:
	SIM_SEEDS=$(if $(SIM_SEED),,$(SIM_SEEDS)) SIM_SEED=$(SIM_SEED) $(GO) test -count=1 -timeout 0 -run '^TestHASimSoak$$' -v ./cluster/

# The example cltab on a daemon of your own, no root needed.
demo: build
	./examples/demo.sh $(BIN)
	./examples/demo-cluster.sh $(BIN)

# The performance figures of SPEC 8 on this machine, measured on the real
# binary: prints a table and writes bench-results.json. BENCHFLAGS=--quick
# for a short run while developing.
bench: build
	$(GO) run ./bench --bin $(BIN) $(BENCHFLAGS)

# The manual pages, rendered from man/*.md by go-md2man (a tool of the
# module: go.mod pins it).
MANPAGES = bin/man/clinit.8 bin/man/cltab.5 bin/man/hactl.5
man: $(MANPAGES)
bin/man/%: man/%.md
	@mkdir -p bin/man
	$(GO) tool go-md2man -in $< -out $@

install: build man
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/clinit
	install -D -m 0644 bin/man/clinit.8 $(DESTDIR)$(PREFIX)/share/man/man8/clinit.8
	install -D -m 0644 bin/man/cltab.5 $(DESTDIR)$(PREFIX)/share/man/man5/cltab.5
	install -D -m 0644 bin/man/hactl.5 $(DESTDIR)$(PREFIX)/share/man/man5/hactl.5
	install -d -m 0755 $(DESTDIR)/var/lib/clinit

clean:
	rm -rf bin demo-run
