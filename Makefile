# kstretch — a thin orchestrator over meson/ninja, pytest and the installers.
# `make test` and `make demo` are enough on a fresh Debian 12 machine: each
# target runs the steps it needs, installing what is missing.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_FUZZ  ?= build-fuzz
CACHE       ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kstretch
NODE_DIR    := $(CACHE)/node
NODE_MODULES := $(NODE_DIR)/node_modules
RDKAFKA_MODERN := $(NODE_MODULES)/node-rdkafka/build/deps
# Apache Kafka from Maven Central (tests/kafka/pom.xml): brokers, tools, Java client.
KAFKA_VERSION := 4.4.0
KAFKA_LIBS  := $(CACHE)/kafka-$(KAFKA_VERSION)/libs
# Debian's python3 (pytest, kafka-python, confluent-kafka), not a pyenv shim.
PYTHON      ?= /usr/bin/python3
FUZZ_SECONDS ?= 60
MESON_OPTS  ?= $(if $(CI),-Dwerror=true)

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Debian packages: build, unit tests, the modern librdkafka build (node-gyp),
# the fuzz build, the real clients the integration tests drive, the
# reliability checks (valgrind, cppcheck, clang-tidy), and what checks deploy/
# (PyYAML for the manifests, systemd-analyze for the unit, groff for the man
# page: tests/integration/test_deploy.py).
APT_PACKAGES := build-essential pkg-config meson ninja-build clang libclang-rt-14-dev \
	libevent-dev libssl-dev openssl libxxhash-dev libcriterion-dev \
	zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev \
	python3 python3-pytest python3-kafka python3-confluent-kafka kcat haproxy \
	nginx libnginx-mod-stream gnuplot-nox \
	valgrind cppcheck clang-tidy \
	python3-yaml systemd groff-base

export KSTRETCH_BUILD := $(abspath $(BUILD))
export KSTRETCH_RDKAFKA_MODERN := $(RDKAFKA_MODERN)
export KSTRETCH_NODE_MODULES := $(NODE_MODULES)
export KSTRETCH_KAFKA_LIBS := $(KAFKA_LIBS)
export KSTRETCH_CACHE := $(CACHE)

.PHONY: deps deps-apt deps-npm deps-kafka build test test-unit test-asan test-integration test-kafka test-faults test-hostile \
	test-integration-asan lint fuzz demo demo-kafka bench bench-deps bench-codec bench-mapped soak clean \
	deps-kroxylicious bench-kafka bench-regional

deps: deps-apt deps-npm deps-kafka deps-go deps-pip

# $(call apt_install,WHO,PACKAGES,EXTRA): installs the packages that are not
# installed yet (EXTRA: shell that may add to $$missing).
define apt_install
	@missing=""; \
	for p in $(2); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	$(3) \
	if [ -n "$$missing" ]; then \
		echo "$(1): installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-apt:
	$(call apt_install,deps,$(APT_PACKAGES),if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing="$$missing nodejs npm libnode-dev"; fi;)

# node-rdkafka's install compiles librdkafka 2.12 (the simulator's broker and
# the modern client); installed once, redone only when tests/package.json changes.
deps-npm: deps-apt
	@mkdir -p "$(NODE_DIR)"
	@if ! cmp -s tests/package.json "$(NODE_DIR)/package.json" || [ ! -e "$(RDKAFKA_MODERN)/librdkafka.so.1" ]; then \
		echo "deps: npm install into $(NODE_DIR) (builds librdkafka 2.12; a few minutes)"; \
		cp tests/package.json "$(NODE_DIR)/package.json"; \
		nodedir=""; [ -e /usr/include/node/node.h ] && nodedir="--nodedir=/usr"; \
		(cd "$(NODE_DIR)" && npm install --no-audit --no-fund --no-save --loglevel=error $$nodedir); \
	fi
	@test -e "$(RDKAFKA_MODERN)/include/librdkafka/rdkafka_mock.h" || \
		{ echo "deps: $(RDKAFKA_MODERN) has no rdkafka_mock.h: node-rdkafka's build failed"; exit 1; }

# Apache Kafka $(KAFKA_VERSION) and its dependencies, resolved by Maven itself
# from Maven Central into $(KAFKA_LIBS) once; redone when tests/kafka/pom.xml
# changes. A JDK and Maven come from Debian when the machine has none.
deps-kafka:
	@if ! command -v java >/dev/null || ! command -v javac >/dev/null || ! command -v mvn >/dev/null; then \
		echo "deps: installing a JDK and Maven from Debian"; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven; \
	fi
	@if ! cmp -s tests/kafka/pom.xml "$(KAFKA_LIBS)/../pom.xml" || [ ! -e "$(KAFKA_LIBS)/kafka_2.13-$(KAFKA_VERSION).jar" ]; then \
		echo "deps: resolving Apache Kafka $(KAFKA_VERSION) from Maven Central into $(KAFKA_LIBS)"; \
		rm -rf "$(KAFKA_LIBS).tmp"; mkdir -p "$(KAFKA_LIBS).tmp"; \
		mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$(KAFKA_LIBS).tmp"; \
		rm -rf "$(KAFKA_LIBS)"; mv "$(KAFKA_LIBS).tmp" "$(KAFKA_LIBS)"; \
		cp tests/kafka/pom.xml "$(KAFKA_LIBS)/../pom.xml"; \
	fi

# The Go client of the tests (tests/kafka/clients/franz: franz-go, from the Go
# module proxy as go.sum pins it) into $(FRANZ_BIN); rebuilt when its sources
# or the Go release change. Go comes with the machine: Debian 12's golang-go
# (1.19) is too old for franz-go.
FRANZ_DIR := tests/kafka/clients/franz
# The machines' Go lives in /usr/local/go/bin, which a non-login shell (CI's)
# may not have on PATH.
GO := $(or $(shell command -v go 2>/dev/null),$(wildcard /usr/local/go/bin/go),go)
FRANZ_BIN := $(CACHE)/bin/kstretch-franz
export KSTRETCH_FRANZ := $(FRANZ_BIN)

.PHONY: deps-go deps-pip
deps-go:
	@command -v $(GO) >/dev/null || { echo "deps-go: no \`go\` on PATH nor in /usr/local/go/bin: install Go 1.26 or later (franz-go needs it; Debian 12's golang-go is too old)"; exit 1; }
	@sum=$$( { $(GO) version; cat $(FRANZ_DIR)/go.mod $(FRANZ_DIR)/go.sum $(FRANZ_DIR)/*.go; } | sha256sum); \
	if [ ! -x "$(FRANZ_BIN)" ] || [ "$$sum" != "$$(cat "$(FRANZ_BIN).sum" 2>/dev/null)" ]; then \
		echo "deps: go build $(FRANZ_DIR) -> $(FRANZ_BIN)"; \
		mkdir -p "$(dir $(FRANZ_BIN))"; rm -f "$(FRANZ_BIN).sum"; \
		(cd $(FRANZ_DIR) && GOFLAGS="-mod=readonly -buildvcs=false" $(GO) build -trimpath -o "$(FRANZ_BIN).tmp" .); \
		mv "$(FRANZ_BIN).tmp" "$(FRANZ_BIN)"; \
		echo "$$sum" > "$(FRANZ_BIN).sum"; \
	fi

# The latest confluent-kafka and kafka-python from PyPI, pinned in
# tests/kafka/requirements.txt, in a virtualenv beside Debian's (which keeps
# the old ones); made again when that file changes. Made aside and moved in
# whole, so a failed or concurrent install never leaves a half one in place
# (the tests run its bin/python, which a move does not break).
VENV := $(CACHE)/venv
export KSTRETCH_VENV := $(VENV)

deps-pip:
	$(call apt_install,deps-pip,python3-venv,)
	@if ! cmp -s tests/kafka/requirements.txt "$(VENV)/requirements.txt" || [ ! -x "$(VENV)/bin/python" ]; then \
		echo "deps: pip install -r tests/kafka/requirements.txt into $(VENV)"; \
		tmp="$(VENV).tmp.$$$$"; rm -rf "$$tmp"; \
		/usr/bin/python3 -m venv "$$tmp"; \
		"$$tmp/bin/python" -m pip install -q --disable-pip-version-check -r tests/kafka/requirements.txt \
			|| { rm -rf "$$tmp"; exit 1; }; \
		cp tests/kafka/requirements.txt "$$tmp/requirements.txt"; \
		rm -rf "$(VENV)"; mv "$$tmp" "$(VENV)"; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Drdkafka_modern=$(RDKAFKA_MODERN) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	meson configure $(BUILD) -Drdkafka_modern=$(RDKAFKA_MODERN)
	ninja -C $(BUILD)

# Fails when a suite fails or runs no test.
test: build
	$(MAKE) --no-print-directory test-unit test-asan test-integration
	$(MAKE) --no-print-directory test-kafka
	$(MAKE) --no-print-directory test-faults test-hostile test-integration-asan lint
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30
	@echo "make test: all suites passed"

test-unit:
	@test -n "$$(meson test -C $(BUILD) --list 2>/dev/null)" || { echo "no unit tests defined"; exit 1; }
	meson test -C $(BUILD) --print-errorlogs

# The unit tests and corpus replays again under AddressSanitizer + UBSan.
test-asan:
	@[ -e $(BUILD_ASAN)/build.ninja ] || meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)
	ninja -C $(BUILD_ASAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(BUILD_ASAN) --print-errorlogs

test-integration:
	$(PYTHON) -m pytest -v -p no:cacheprovider tests/integration

# The real-Kafka suite: real clients through kstretch against Apache Kafka
# $(KAFKA_VERSION) brokers (tests/cluster/kafkacluster.py starts and stops them).
test-kafka: deps-kafka
	$(PYTHON) -m pytest -v -p no:cacheprovider tests/kafka

# Reliability (README "Reliability"): faults a stretched cluster has, with real
# clients through kstretch (table: $(BUILD)/faults-results.md), and hostile
# input: network fuzzers on both sides, resource exhaustion, valgrind
# memcheck (figures: $(BUILD)/hostile-results.md).
test-faults:
	$(PYTHON) -m pytest -v -p no:cacheprovider tests/faults

test-hostile:
	$(PYTHON) -m pytest -v -p no:cacheprovider tests/hostile

# A subset of the integration suite again, against kstretch built with ASan +
# UBSan: the mapped-mode tests (config, bootstrap, topology, workers, sessions,
# rewrites, admin), the CLI, TLS (handshakes, mTLS, SNI, reload), the hostile-input suite (fewer fuzz cases) and the
# connection-kill and restart faults. A sanitizer report aborts kstretch, and a
# kstretch that does not exit 0 on SIGTERM fails its test; memory bounds are
# reported, not asserted (KSTRETCH_SANITIZED=1: ASan multiplies RSS).
ASAN_INTEGRATION := tests/integration/test_proxy_mapped.py tests/integration/test_kstretch_cli.py \
	tests/integration/test_tls.py tests/integration/test_regional.py tests/integration/test_upgrade.py tests/integration/test_reload.py \
	tests/hostile \
	tests/faults/test_faults.py::test_6_a_thousand_client_connections_killed_mid_request_leak_no_fd_and_no_memory \
	tests/faults/test_faults.py::test_7_kstretch_restarted_under_load_loses_nothing_acknowledged

test-integration-asan:
	@[ -e $(BUILD_ASAN)/build.ninja ] || meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false $(MESON_OPTS)
	ninja -C $(BUILD_ASAN) proxy/kstretch
	KSTRETCH_BIN=$(abspath $(BUILD_ASAN))/proxy/kstretch KSTRETCH_SANITIZED=1 KSTRETCH_RESULTS_DIR=$(abspath $(BUILD_ASAN)) \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	KSTRETCH_FUZZ_CASES=3000 KSTRETCH_UPSTREAM_CASES=1500 KSTRETCH_TLS_FUZZ_CASES=300 \
		$(PYTHON) -m pytest -v -p no:cacheprovider $(ASAN_INTEGRATION)

# cppcheck and clang-tidy over every C file of $(BUILD), against the baselines
# in .ci/ (fails on a new finding; `.ci/lint --update` rewrites them).
lint:
	.ci/lint --build $(BUILD)

# libFuzzer (clang) on every fuzz target, FUZZ_SECONDS each, from the corpus.
fuzz: deps-apt
	@[ -e $(BUILD_FUZZ)/build.ninja ] || CC=clang meson setup $(BUILD_FUZZ) -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(BUILD_FUZZ)
	@for t in $(BUILD_FUZZ)/tests/fuzz/fuzz_*; do \
		[ -f "$$t" ] && [ -x "$$t" ] || continue; \
		name=$${t##*/fuzz_}; work=$(BUILD_FUZZ)/corpus-$$name; mkdir -p $$work; \
		echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$work tests/fuzz/corpus/$$name 2>$$work.log \
			|| { tail -40 $$work.log; exit 1; }; \
		grep -E "stat::number_of_executed_units" $$work.log; \
	done

demo: build
	$(PYTHON) tests/demo/demo.py --build $(BUILD)

# The same story on real Apache Kafka brokers (tests/cluster/kafkacluster.py).
demo-kafka: build deps-kafka
	$(PYTHON) tests/demo/demo_kafka.py --build $(BUILD)

# What `make bench` needs beyond `make deps` (and `make test` does not): the
# L4 proxies it compares kstretch with, and gnuplot for its charts.
BENCH_APT_PACKAGES := haproxy nginx libnginx-mod-stream gnuplot-nox

bench-deps:
	$(call apt_install,bench-deps,$(BENCH_APT_PACKAGES),)

# Kroxylicious (bench/kroxylicious/pom.xml), the JVM L7 proxy of `make
# bench-kafka`, resolved from Maven Central into $(KROXYLICIOUS_DIR) with its
# launcher compiled, once (redone when the pom or the launcher changes).
# Not fatal: when it does not resolve, $(KROXYLICIOUS_DIR)/status says why and
# the benchmark's results say so; kroxylicious-app.txt records whether Maven
# Central serves the application artifact (kroxylicious-app) as well.
KROXYLICIOUS_DIR := $(CACHE)/kroxylicious
export KSTRETCH_KROXYLICIOUS := $(KROXYLICIOUS_DIR)

deps-kroxylicious: deps-kafka
	@d="$(KROXYLICIOUS_DIR)"; src=bench/kroxylicious; \
	if ! cmp -s $$src/pom.xml "$$d/pom.xml" || ! cmp -s $$src/KroxyliciousLauncher.java "$$d/KroxyliciousLauncher.java" \
		|| [ ! -e "$$d/classes/KroxyliciousLauncher.class" ]; then \
		v=$$(sed -n 's:.*<kroxylicious.version>\(.*\)</kroxylicious.version>.*:\1:p' $$src/pom.xml); \
		echo "deps: resolving Kroxylicious $$v from Maven Central into $$d"; \
		rm -rf "$$d.tmp"; mkdir -p "$$d.tmp"; \
		if mvn -q -B -U -Dstyle.color=never dependency:get -Dartifact=io.kroxylicious:kroxylicious-app:$$v \
			-Dtransitive=false >"$$d.tmp/app.log" 2>&1; then \
			echo "io.kroxylicious:kroxylicious-app:$$v resolves" >"$$d.tmp/kroxylicious-app.txt"; \
		else \
			echo "io.kroxylicious:kroxylicious-app:$$v does not resolve ($$(date -u +%F), mvn dependency:get:" \
				"$$(sed 's/\x1b\[[0-9;]*m//g' "$$d.tmp/app.log" | grep -m1 -o "Couldn't download artifact.*" | cut -c1-200))" \
				>"$$d.tmp/kroxylicious-app.txt"; \
		fi; \
		if mvn -q -B -Dstyle.color=never -f $$src/pom.xml dependency:copy-dependencies -DoutputDirectory="$$d.tmp/libs" \
			>"$$d.tmp/resolve.log" 2>&1 && \
			javac -d "$$d.tmp/classes" -cp "$$d.tmp/libs/*" $$src/KroxyliciousLauncher.java >>"$$d.tmp/resolve.log" 2>&1; then \
			echo "io.kroxylicious:kroxylicious-runtime:$$v resolved" >"$$d.tmp/status"; \
			cp $$src/pom.xml $$src/KroxyliciousLauncher.java "$$d.tmp/"; \
		else \
			echo "deps: Kroxylicious $$v did not resolve or build; make bench-kafka runs without it and says so"; \
			tail -5 "$$d.tmp/resolve.log"; rm -rf "$$d.tmp/libs" "$$d.tmp/classes"; \
			echo "io.kroxylicious:kroxylicious-runtime:$$v did not resolve from Maven Central or its launcher did not" \
				"compile: $$(grep -m1 ERROR "$$d.tmp/resolve.log" | cut -c1-300)" >"$$d.tmp/status"; \
		fi; \
		rm -rf "$$d"; mv "$$d.tmp" "$$d"; \
	fi

# The side-by-side run (bench/run): direct vs kstretch vs HAProxy vs nginx on
# the simulator, interleaved, medians; writes bench/results/latest.md and the
# charts. Then its real-Kafka part (bench-kafka). BENCH_ARGS=--quick for a
# smoke run of both.
BENCH_ARGS ?=
BENCH_KAFKA_ARGS ?= $(filter --quick,$(BENCH_ARGS))
bench: build bench-deps deps-kafka deps-kroxylicious
	$(PYTHON) bench/run --build $(BUILD) $(BENCH_ARGS)
	$(PYTHON) bench/kafka_bench.py --build $(BUILD) $(BENCH_KAFKA_ARGS)
	$(PYTHON) bench/regional_bench.py --build $(BUILD) $(BENCH_KAFKA_ARGS)

# Regional mode (bench/regional_bench.py): direct vs kstretch mapped vs
# kstretch regional, on the simulator (eu:2,us:2,ap:2) and on three real
# Apache Kafka brokers (eu, us, ap): one producer (kafka-producer-perf-test on
# Kafka), one consumer (kstretch-consumer-perf --assign), 20 producers at
# once; throughput, proxy CPU per GB, connections to the brokers; medians of
# 5 (about 20 minutes); writes bench/results/regional-latest.md and .json.
bench-regional: build deps-kafka
	$(PYTHON) bench/regional_bench.py --build $(BUILD) $(BENCH_KAFKA_ARGS)

# The real-Kafka part (bench/kafka_bench.py): Apache Kafka's own
# kafka-producer-perf-test and kafka-consumer-perf-test against one real
# broker, direct vs kstretch vs HAProxy (plain, splice) vs nginx stream vs
# Kroxylicious, interleaved, medians of 5 (20-40 minutes); writes
# bench/results/kafka-latest.md, kafka-latest.json and kafka_*.png.
bench-kafka: build bench-deps deps-kafka deps-kroxylicious
	$(PYTHON) bench/kafka_bench.py --build $(BUILD) $(BENCH_KAFKA_ARGS)

# Producer throughput to one broker: direct vs kstretch vs HAProxy (tcp), interleaved.
bench-mapped: build
	$(PYTHON) bench/mapped_vs_l4.py --build $(BUILD)

# The soak (bench/soak/soak.py, not in `make test`): mixed load, a leader moved
# every minute, RSS and descriptors plotted in bench/soak/results/.
SOAK_MINUTES ?= 30
soak: build bench-deps
	$(PYTHON) bench/soak/soak.py --build $(BUILD) --minutes $(SOAK_MINUTES)

# The codec microbenchmark (bench/codec.c): Metadata rewrite and Produce walk costs.
bench-codec: build
	$(BUILD)/bench/kstretch-bench-codec

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
