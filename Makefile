# tensorfuse - the one build entry point.
#   make            examples and tests
#   make demo       run the llama-style demo (CPU only)
#   make test       every test program; last line "N passed, N failed"
#   make lint       headers with -Wall -Wextra -Wpedantic -Werror as C99, C11, C++
#   make sanitize   the tests under ASan + UBSan
#   make tsan       the threaded tests under ThreadSanitizer
#   make bench      benchmarks, table on stdout and build/bench.csv
#   make test-arm   test_ops on AArch64 (NEON) under qemu-user
#   make fuzz       libFuzzer (clang) for FUZZ_SECONDS (default 60); fails on a finding

CC      ?= cc
CXX     ?= c++
OPT     ?= -O2 -g
ARCH    ?= -march=native
WARN    := -Wall -Wextra -Wpedantic -Werror
CFLAGS  += -std=c99 $(OPT) $(ARCH) $(WARN) -I.
LDLIBS  += -lm -lpthread
B       := build

TEST_SRC := $(wildcard tests/test_*.c)
TESTS    := $(TEST_SRC:tests/%.c=$(B)/%)
# the fuzz harness built without libFuzzer: replays tests/fuzz_corpus in make test
TESTS    += $(B)/fuzz_replay
EX_SRC   := $(wildcard examples/*.c)
EXAMPLES := $(EX_SRC:examples/%.c=$(B)/%)
HDR      := tensorfuse.h

.PHONY: all demo test lint sanitize tsan bench clean selftest test-arm fuzz
all: $(EXAMPLES) $(TESTS) $(B)/selftest $(B)/readme_example

$(B):
	@mkdir -p $(B)

$(B)/%: tests/%.c $(HDR) tests/*.h | $(B)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# test_seam runs test_fusion's cases (it includes test_fusion.c)
$(B)/test_seam: tests/test_fusion.c examples/llama.h

$(B)/%: examples/%.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# the self-test builds from the header alone
$(B)/selftest: $(HDR) | $(B)
	printf '#define TFU_IMPLEMENTATION\n#define TFU_SELFTEST\n#include "tensorfuse.h"\n#include <stdio.h>\nint main(void){int f=tfu_selftest();printf("selftest: %%d failed\\n",f);return f!=0;}\n' > $(B)/selftest.c
	$(CC) $(CFLAGS) -o $@ $(B)/selftest.c $(LDLIBS)

# the README's example, extracted and compiled as written
$(B)/readme_example: README.md $(HDR) tools/readme_example.sh | $(B)
	sh tools/readme_example.sh $(B)/readme_example.c
	$(CC) $(CFLAGS) -o $@ $(B)/readme_example.c $(LDLIBS)

$(B)/fuzz_replay: tests/fuzz_tfu.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -DFUZZ_REPLAY -o $@ $< $(LDLIBS)

# libFuzzer: clang with libclang-rt-14-dev (Debian). New inputs go to
# $(B)/fuzz_work (the seed corpus stays as committed); a finding is written to
# $(B)/fuzz_findings/ and its path printed.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS   ?= -max_len=512 -timeout=10 -rss_limit_mb=2048
$(B)/fuzz_tfu: tests/fuzz_tfu.c $(HDR) | $(B)
	$(FUZZ_CC) -std=c99 -O1 -g $(ARCH) -Wall -Wextra -Werror -I. -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o $@ $< $(LDLIBS)

fuzz: $(B)/fuzz_tfu
	@mkdir -p $(B)/fuzz_work $(B)/fuzz_findings
	./$(B)/fuzz_tfu $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz_findings/ $(B)/fuzz_work tests/fuzz_corpus \
	    || { echo "fuzz: finding in $(B)/fuzz_findings/ (replay: $(B)/fuzz_replay FILE)"; ls $(B)/fuzz_findings; exit 1; }

demo: $(B)/demo
	./$(B)/demo

test: $(TESTS) $(B)/selftest $(B)/readme_example
	@sh tools/run_tests.sh $(B) $(TESTS)

lint: | $(B)
	@sh tools/lint.sh "$(CC)" "$(CXX)"

sanitize:
	$(MAKE) B=$(B)/asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

tsan:
	$(MAKE) B=$(B)/tsan OPT="-O1 -g -fsanitize=thread" $(B)/tsan/test_threads $(B)/tsan/test_random
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/tsan/test_threads
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/tsan/test_random --graphs 200

bench: $(B)/bench
	./$(B)/bench $(BENCH_ARGS)

$(B)/bench: bench/bench.c $(HDR) | $(B)
	$(CC) -std=c99 -O3 $(ARCH) $(WARN) -I. -o $@ $< $(LDLIBS)

# the NEON path on AArch64 under qemu (Debian: gcc-aarch64-linux-gnu qemu-user)
test-arm: | $(B)
	aarch64-linux-gnu-gcc -std=c99 -O2 $(WARN) -I. -o $(B)/test_ops_arm tests/test_ops.c -lm -lpthread
	QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 $(B)/test_ops_arm

clean:
	rm -rf $(B)
