# dmar - top-level entry points. Each target installs what is missing (Debian), builds
# with CMake, and runs. See README.md.
BUILD      ?= build
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
PREFIX     ?= /usr/local

.PHONY: all deps build check demo bench bench-qemu fuzz qemu-check install clean

all: build

deps:
	@sh scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

check: deps
	@bash scripts/check.sh

demo: deps build
	@bash scripts/demo.sh $(BUILD)

bench: deps
	@cmake -S . -B $(BUILD)-bench -DCMAKE_BUILD_TYPE=Release -DDMAR_KERNEL=OFF >/dev/null
	@cmake --build $(BUILD)-bench -j $(JOBS)
	@bash scripts/bench.sh $(BUILD)-bench

# Installs under $(PREFIX) (default /usr/local), staged under $(DESTDIR) when set.
install: build
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

bench-qemu: deps build
	@bash scripts/bench-qemu.sh $(BUILD)

fuzz: deps
	@CC=clang cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDMAR_FUZZ=ON >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS)
	@bash scripts/fuzz.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

qemu-check: deps build
	@bash scripts/qemu-matrix.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-*
