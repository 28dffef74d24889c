# SPDX-License-Identifier: Apache-2.0
# bridle: build the BPF programs and skeleton, the bridle binary, tests,
# fuzzers and benchmarks. `make test` is what CI runs.

BUILD   ?= build
CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool
ARCH    := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

WARN    := -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-format-truncation
CFLAGS  ?= -O2 -g
CPPFLAGS_ALL := -std=gnu11 -D_GNU_SOURCE -Iinclude -I$(BUILD) $(WARN)
LDLIBS  := -lbpf -lelf -lz -lssl -lcrypto -ljansson -lpg_query -lhs -lpthread -lcurl -lmicrohttpd
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BPF_SRCS := bpf/redirect.bpf.c
BPF_HDRS := $(wildcard bpf/lib/*.h) include/bridle/bpf_shared.h
HDRS     := $(wildcard include/bridle/*.h user/*.h)
USER_SRCS := $(wildcard user/*.c user/proto/*.c)
LIB_SRCS := $(filter-out user/main.c,$(USER_SRCS))

OBJS      := $(patsubst user/%.c,$(BUILD)/obj/%.o,$(USER_SRCS))
ASAN_OBJS := $(patsubst user/%.c,$(BUILD)/asan/%.o,$(LIB_SRCS))
TSAN_OBJS := $(patsubst user/%.c,$(BUILD)/tsan/%.o,$(USER_SRCS))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB   := user/jsonv.c user/policy.c user/policy_eval.c user/config.c user/iobuf.c user/keys.c user/log.c user/pg_wire.c user/sql.c user/scram.c user/mask.c user/jwt.c user/identity.c user/jwks.c user/record.c
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOL_BINS  := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))

.PHONY: all deps test unit fuzz-seeds e2e e2e-tsan doc-test demo bench check format clean

all: $(BUILD)/bridle $(TOOL_BINS)

deps:
	@./scripts/install-deps.sh

$(BUILD)/redirect.bpf.o: $(BPF_SRCS) $(BPF_HDRS) vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I. -Iinclude -Ibpf \
		-Wall -Werror -c $< -o $@

$(BUILD)/redirect.skel.h: $(BUILD)/redirect.bpf.o
	$(BPFTOOL) gen skeleton $< name redirect_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: user/%.c $(HDRS) $(BUILD)/redirect.skel.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: user/%.c $(HDRS) $(BUILD)/redirect.skel.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) -O1 -g $(SAN) -c $< -o $@

$(BUILD)/tsan/%.o: user/%.c $(HDRS) $(BUILD)/redirect.skel.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) -O1 -g -fsanitize=thread -c $< -o $@

# The enforcer under ThreadSanitizer, for the worker threads.
$(BUILD)/tsan/bridle: $(TSAN_OBJS)
	$(CC) -fsanitize=thread -o $@ $^ $(LDLIBS)

$(BUILD)/bridle: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c $(ASAN_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) -O1 -g $(SAN) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS_ALL) -O2 -g -o $@ $< -lpthread -lm

# libFuzzer needs clang; the parsers are compiled again with coverage.
# The PostgreSQL module's target brings its own stand-in session core.
$(BUILD)/fuzz/fuzz_pgproto: FUZZ_EXTRA := user/proto/pg.c user/tls.c user/review.c user/webhook.c
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(HDRS) $(BUILD)/redirect.skel.h
	@mkdir -p $(@D)
	$(CLANG) $(CPPFLAGS_ALL) -Wno-unused-command-line-argument \
		-Wno-unknown-warning-option -O1 -g \
		-fsanitize=fuzzer,address,undefined -o $@ $< \
		$(FUZZ_LIB) $(FUZZ_EXTRA) $(LDLIBS)

# Every test binary runs even when an earlier one fails; the exit says all.
unit: $(UNIT_BINS)
	@fail=""; for t in $(UNIT_BINS); do echo "== $$t"; $$t || fail="$$fail $${t##*/}"; done; \
	if [ -n "$$fail" ]; then echo "unit: FAILED:$$fail"; exit 1; fi

# Run every fuzz target once over its seed corpus (no fuzzing, no time limit).
fuzz-seeds: $(FUZZ_BINS)
	@fail=""; for f in $(FUZZ_BINS); do \
		n=$${f##*/fuzz_}; echo "== $$f (tests/fuzz/corpus/$$n)"; \
		if $$f -runs=0 -artifact_prefix=$(BUILD)/fuzz/$$n- tests/fuzz/corpus/$$n \
			>/dev/null 2>$(BUILD)/fuzz/$$n.log </dev/null; then \
			grep -E 'Done|INFO: seed corpus' $(BUILD)/fuzz/$$n.log | tail -1; \
		else tail -30 $(BUILD)/fuzz/$$n.log; fail="$$fail $$n"; fi; \
	done; if [ -n "$$fail" ]; then echo "fuzz-seeds: FAILED:$$fail"; exit 1; fi

e2e: all
	@./tests/e2e/run.sh

# The examples of docs/policy.md, loaded and explained: they cannot rot.
# Then the commands that need no enforcer (tests/cli).
doc-test: all
	@python3 tests/docs/test_policy_doc.py $(BUILD)/bridle docs/policy.md
	@for t in tests/cli/test_*.sh; do $$t $(BUILD)/bridle || exit 1; done

# The end-to-end suite again with bridle built with ThreadSanitizer: the
# first data race aborts bridle, and the case that ran it fails.
e2e-tsan: all $(BUILD)/tsan/bridle
	@BRIDLE=$(CURDIR)/$(BUILD)/tsan/bridle E2E_OUT=$(CURDIR)/$(BUILD)/e2e-tsan \
		TSAN_OPTIONS="halt_on_error=1 abort_on_error=1" ./tests/e2e/run.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory doc-test
	@$(MAKE) --no-print-directory fuzz-seeds
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory e2e-tsan

demo: deps
	@$(MAKE) --no-print-directory all
	@./scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@./scripts/bench.sh

check: all
	clang-format --dry-run --Werror $(USER_SRCS) $(HDRS) bpf/*.c bpf/lib/*.h

format:
	clang-format -i $(USER_SRCS) $(HDRS) bpf/*.c bpf/lib/*.h

clean:
	rm -rf $(BUILD)
