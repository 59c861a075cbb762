# geca: `make run` starts the app, `make test` runs every test. Both first
# install the Debian packages they need (scripts/deps.sh; nothing when all
# are present).

GO       ?= go
TAGS     ?= openblas
BIN      ?= bin/geca
ARGS     ?=
# Packages whose tests run a second time in pure Go (no cgo, gonum BLAS), to
# keep the engine free of cgo and its numbers right without OpenBLAS.
PUREGO   ?= ./engine/...
TIMEOUT  ?= 30m
BENCH    ?= .
BENCHTIME ?= 3x
BENCHPKG ?= ./...
PYTHON   ?= /usr/bin/python3

.PHONY: all run build test test-go test-purego bench perf golden deps deps-build deps-test deps-golden fmt vet ci clean help

all: build

help:
	@echo "make run      build and start geca (the viewer on the embedded default model); ARGS=... passes flags"
	@echo "make test     every test, with OpenBLAS and again in pure Go for the engine"
	@echo "make build    build $(BIN) with -tags $(TAGS)"
	@echo "make bench    short benchmarks (BENCH=regexp BENCHTIME=3x BENCHPKG=./engine/...)"
	@echo "make perf     the README's performance table: geca and PyTorch timed in the same run (scripts/perf.sh)"
	@echo "make golden   regenerate test fixtures with the PyTorch scripts in */testdata/*.py"
	@echo "make ci       what CI runs (.ci/run)"

deps-build:
	@scripts/deps.sh build run

deps-test:
	@scripts/deps.sh build run test

deps-golden:
	@scripts/deps.sh golden

deps: deps-test

build: deps-build
	$(GO) build -tags '$(TAGS)' -o $(BIN) ./cmd/geca

# Without a command geca opens the viewer, on the embedded default model
# unless ARGS names a checkpoint (ARGS="--ckpt FILE").
run: build
	./$(BIN) view $(ARGS)

# GUI tests render with Mesa's software renderer without any display:
# EGL_PLATFORM=surfaceless picks Mesa's display-less EGL platform.
test: deps-test
	$(MAKE) --no-print-directory test-go test-purego

test-go:
	EGL_PLATFORM=surfaceless $(GO) test -tags '$(TAGS)' -timeout $(TIMEOUT) ./...

test-purego:
	CGO_ENABLED=0 $(GO) test -timeout $(TIMEOUT) $(PUREGO)

bench: deps-build
	$(GO) test -tags '$(TAGS)' -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem $(BENCHPKG)

# The README's performance table, geca and PyTorch in the same run.
perf: deps-build deps-golden
	scripts/perf.sh

# Each script runs from its own testdata folder and writes its fixtures there.
# Not run: helpers imported by the others (_*.py) and benchmarks (bench*.py).
golden: deps-golden
	@set -e; found=0; \
	for f in $$(find . -path ./.git -prune -o -path '*/testdata/*.py' -type f -print | sort); do \
		case "$$(basename $$f)" in _* | bench*) continue;; esac; \
		found=1; echo "== $$f"; \
		(cd "$$(dirname $$f)" && OPENBLAS_NUM_THREADS=1 $(PYTHON) "$$(basename $$f)"); \
	done; \
	if [ $$found = 0 ]; then echo "golden: no */testdata/*.py scripts found"; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...
	$(GO) vet -tags '$(TAGS)' ./...

ci:
	bash .ci/run

clean:
	rm -rf bin
