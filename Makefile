# berth — build, test and demo targets.
#
#   make            build bin/berth (static: it also runs inside containers as --init)
#   make test       install what the tests need (Debian packages, as root),
#                   then gofmt, go vet and go test -race ./...
#   make demo       install what the demo needs, then run scripts/demo.sh
#   make install    copy bin/berth to $(PREFIX)/bin (and berth-restart.service
#                   to /etc/systemd/system when that directory exists)

GO        ?= go
PREFIX    ?= /usr/local
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
# seccomp: libcontainer applies syscall filters (libseccomp, linked statically).
TAGS      ?= netgo osusergo seccomp
LDFLAGS   := -extldflags -static -X github.com/berthsh/berth/internal/cli.version=$(VERSION) -X github.com/berthsh/berth/internal/cli.commit=$(COMMIT)
GOTESTFLAGS ?= -race -timeout 25m -tags seccomp

.PHONY: all build install deps test vet fmt-check unit demo bench clean

all: build

build:
	CGO_ENABLED=1 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/berth ./cmd/berth

install: build
	install -D -m 0755 bin/berth $(DESTDIR)$(PREFIX)/bin/berth
	@# The boot-time restart unit, where systemd is (not enabled).
	@if [ -d $(DESTDIR)/etc/systemd/system ]; then \
		sed 's|/usr/local/bin/berth|$(PREFIX)/bin/berth|' contrib/systemd/berth-restart.service > $(DESTDIR)/etc/systemd/system/berth-restart.service && \
		chmod 0644 $(DESTDIR)/etc/systemd/system/berth-restart.service && \
		echo "installed $(DESTDIR)/etc/systemd/system/berth-restart.service; enable it with: systemctl enable berth-restart.service"; \
	fi

# deps installs the Debian packages builds, tests and the demo use (only
# when running as root; otherwise it says what is missing).
deps:
	@scripts/deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet -tags seccomp ./...

unit:
	$(GO) test $(GOTESTFLAGS) ./...

test: deps fmt-check vet build unit

demo: deps build
	scripts/demo.sh

bench: deps build
	bench/registry.sh

clean:
	rm -rf bin
