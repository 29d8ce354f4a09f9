# tensorfuse - the one build entry point.
#   make            examples and tests
#   make demo       run the llama-style demo (CPU only)
#   make demo-vk    the same model on Vulkan (tensorfuse_vk.h): fused, unfused, CPU
#   make deps       (Debian, root) the packages the Vulkan part needs
#   make shaders    recompile shaders/ into tensorfuse_vk.h (glslc, spirv-opt)
#   make shaders-check  fail if tensorfuse_vk.h is stale against shaders/
#   make test       every test program; last line "N passed, N failed"
#   make lint       headers with -Wall -Wextra -Wpedantic -Werror as C99, C11, C++
#   make sanitize   the tests under ASan + UBSan
#   make tsan       the threaded tests under ThreadSanitizer
#   make bench      benchmarks, table on stdout and build/bench.csv
#   make bench-vk   Vulkan benchmarks, table and build/bench-vk.csv
#   make fuzz       libFuzzer (clang) for FUZZ_SECONDS (default 60); fails on a finding
#   make cross      the tests on aarch64, armhf and riscv64 under qemu-user
#   make windows    the tests built with mingw-w64, run under wine
#   make test-atomics  test_threads and test_decode on the C11 atomics under ThreadSanitizer
#   make size       the embedded build's stripped size and the compile time
#   make install    tensorfuse.h, pkg-config and CMake files under PREFIX
#   make test-install  examples/mlp.c built against an install (pkg-config,
#                   CMake find_package) and through add_subdirectory

CC      ?= cc
CXX     ?= c++
OPT     ?= -O2 -g
ARCH    ?= -march=native
WARN    := -Wall -Wextra -Wpedantic -Werror
CFLAGS  += -std=c99 $(OPT) $(ARCH) $(WARN) -I.
LDLIBS  += -lm -lpthread
# dlopen lives in libc from glibc 2.34 on; older systems need -ldl
LDL     ?= $(shell printf 'int main(void){return 0;}' | $(CC) -x c - -ldl -o /dev/null 2>/dev/null && echo -ldl)
B       := build
EXE     :=
# RUN runs a test program (qemu, wine); GRAPHS is test_random's --graphs,
# VK_GRAPHS test_vk's
RUN     :=
GRAPHS  :=
VK_GRAPHS :=
PREFIX  ?= /usr/local

TEST_SRC := $(wildcard tests/test_*.c)
# test_vk needs <vulkan/vulkan_core.h> (Debian: libvulkan-dev) for this
# compiler; without it a stub reports the Vulkan tests skipped
VK_HDR   := $(shell printf '\043include <vulkan/vulkan_core.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
# test_embedded builds a second time without SIMD
TESTS    := $(TEST_SRC:tests/%.c=$(B)/%$(EXE)) $(B)/test_embedded_nosimd$(EXE)
# the fuzz harness built without libFuzzer: replays tests/fuzz_corpus in make test
TESTS    += $(B)/fuzz_replay$(EXE)
ifeq ($(VK_HDR),1)
TESTS    += $(B)/fuzz_replay_vk$(EXE)
endif
EX_SRC   := $(wildcard examples/*.c)
ifneq ($(VK_HDR),1)
EX_SRC   := $(filter-out examples/demo_vk.c,$(EX_SRC))
endif
EXAMPLES := $(EX_SRC:examples/%.c=$(B)/%$(EXE))
HDR      := tensorfuse.h

.PHONY: all demo demo-vk deps shaders shaders-check test lint sanitize tsan bench bench-vk clean selftest test-arm fuzz \
        cross cross-aarch64 cross-armhf cross-riscv64 windows test-atomics size install test-install
all: $(EXAMPLES) $(TESTS) $(B)/selftest$(EXE) $(B)/readme_example$(EXE) $(B)/llama2_gen$(EXE)

$(B):
	@mkdir -p $(B)

$(B)/%$(EXE): tests/%.c $(HDR) tests/*.h | $(B)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# test_seam runs test_fusion's cases (it includes test_fusion.c)
$(B)/test_seam$(EXE): tests/test_fusion.c examples/llama.h

# the Vulkan tests (skipped, with the reason, where there are no headers)
ifeq ($(VK_HDR),1)
$(B)/test_vk$(EXE): tests/test_vk.c tests/test_fusion.c tensorfuse_vk.h $(HDR) tests/*.h | $(B)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS) $(LDL)
else
$(B)/test_vk$(EXE): | $(B)
	printf '#include <stdio.h>\nint main(void){puts("vk: skipped: no <vulkan/vulkan_core.h> for this compiler (Debian: libvulkan-dev)");puts("0 passed, 0 failed, 1 skipped");return 0;}\n' > $(B)/test_vk_stub.c
	$(CC) -o $@ $(B)/test_vk_stub.c
endif

$(B)/test_embedded_nosimd$(EXE): tests/test_embedded.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -DTFU_NO_SIMD -o $@ $< $(LDLIBS)

$(B)/%$(EXE): examples/%.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# the self-test builds from the header alone
$(B)/selftest$(EXE): $(HDR) | $(B)
	printf '#define TFU_IMPLEMENTATION\n#define TFU_SELFTEST\n#include "tensorfuse.h"\n#include <stdio.h>\nint main(void){int f=tfu_selftest();printf("selftest: %%d failed\\n",f);return f!=0;}\n' > $(B)/selftest.c
	$(CC) $(CFLAGS) -o $@ $(B)/selftest.c $(LDLIBS)

# the README's example, extracted and compiled as written
$(B)/readme_example$(EXE): README.md $(HDR) tools/readme_example.sh | $(B)
	sh tools/readme_example.sh $(B)/readme_example.c
	$(CC) $(CFLAGS) -o $@ $(B)/readme_example.c $(LDLIBS)

# test_llama2 runs examples/llama2.c in-process; llama2_gen writes random checkpoints.
# Where the Vulkan headers are, both take --backend vulkan (LLAMA2_VULKAN).
ifeq ($(VK_HDR),1)
$(B)/test_llama2$(EXE): tests/test_llama2.c examples/llama2.c tensorfuse_vk.h $(HDR) tests/*.h | $(B)
	$(CC) $(CFLAGS) -DLLAMA2_VULKAN -o $@ $< $(LDLIBS) $(LDL)
$(B)/llama2$(EXE): examples/llama2.c tensorfuse_vk.h $(HDR) | $(B)
	$(CC) $(CFLAGS) -DLLAMA2_VULKAN -o $@ $< $(LDLIBS) $(LDL)
endif
$(B)/test_llama2$(EXE): examples/llama2.c
$(B)/llama2_gen$(EXE): tools/llama2_gen.c tests/llama2_gen.h | $(B)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

$(B)/fuzz_replay$(EXE): tests/fuzz_tfu.c $(HDR) | $(B)
	$(CC) $(CFLAGS) -DFUZZ_REPLAY -o $@ $< $(LDLIBS)
# the same inputs also on Vulkan (a third twin, judged alike)
$(B)/fuzz_replay_vk$(EXE): tests/fuzz_tfu.c tensorfuse_vk.h $(HDR) | $(B)
	$(CC) $(CFLAGS) -DFUZZ_REPLAY -DFUZZ_VK -o $@ $< $(LDLIBS) $(LDL)

# libFuzzer: clang with libclang-rt-14-dev (Debian). New inputs go to
# $(B)/fuzz_work (the seed corpus stays as committed); a finding is written to
# $(B)/fuzz_findings/ and its path printed.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS   ?= -max_len=512 -timeout=30 -rss_limit_mb=2048
$(B)/fuzz_tfu: tests/fuzz_tfu.c tests/fuzz_coverage_ignore.txt $(HDR) | $(B)
	$(FUZZ_CC) -std=c99 -O1 -g $(ARCH) -Wall -Wextra -Werror -I. -fsanitize=fuzzer,address,undefined -fsanitize-coverage-ignorelist=tests/fuzz_coverage_ignore.txt \
	    -fno-sanitize-recover=undefined -o $@ $< $(LDLIBS)

fuzz: $(B)/fuzz_tfu
	@mkdir -p $(B)/fuzz_work $(B)/fuzz_findings
	./$(B)/fuzz_tfu $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz_findings/ $(B)/fuzz_work tests/fuzz_corpus \
	    || { echo "fuzz: finding in $(B)/fuzz_findings/ (replay: $(B)/fuzz_replay FILE)"; ls $(B)/fuzz_findings; exit 1; }

demo: $(B)/demo
	./$(B)/demo

$(B)/demo_vk$(EXE): examples/demo_vk.c examples/llama.h tensorfuse_vk.h $(HDR) | $(B)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS) $(LDL)

# a smaller model than demo's: lavapipe (Vulkan on the CPU) is slow
DEMO_VK_ARGS ?= --layers 2 --tokens 16 --reps 2
demo-vk: $(B)/demo_vk$(EXE)
	./$(B)/demo_vk $(DEMO_VK_ARGS)

# what the Vulkan part needs on Debian: headers, a driver on the CPU, the
# validation layer; glslc and spirv-opt only to change shaders/
VK_DEBS := libvulkan-dev mesa-vulkan-drivers vulkan-validationlayers glslc spirv-tools
deps:
	apt-get install -y --no-install-recommends $(VK_DEBS)

shaders:
	sh tools/embed_spirv.sh tensorfuse_vk.h

shaders-check: | $(B)
	cp tensorfuse_vk.h $(B)/tensorfuse_vk.check.h
	sh tools/embed_spirv.sh $(B)/tensorfuse_vk.check.h
	@cmp -s tensorfuse_vk.h $(B)/tensorfuse_vk.check.h || { echo "shaders-check: tensorfuse_vk.h is stale: run make shaders"; exit 1; }
	@echo "shaders-check: tensorfuse_vk.h matches shaders/"

test: $(TESTS) $(B)/selftest$(EXE) $(B)/readme_example$(EXE)
	@RUN="$(RUN)" GRAPHS="$(GRAPHS)" VK_GRAPHS="$(VK_GRAPHS)" EXE="$(EXE)" sh tools/run_tests.sh $(B) $(TESTS)

lint: | $(B)
	@sh tools/lint.sh "$(CC)" "$(CXX)"

sanitize:
	$(MAKE) B=$(B)/asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" VK_GRAPHS=6 test

tsan:
	$(MAKE) B=$(B)/tsan OPT="-O1 -g -fsanitize=thread" $(B)/tsan/test_threads $(B)/tsan/test_random $(B)/tsan/test_decode $(B)/tsan/test_attn
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/tsan/test_threads
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/tsan/test_attn
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/tsan/test_decode
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/tsan/test_random --graphs 200

bench: $(B)/bench
	./$(B)/bench $(BENCH_ARGS)

$(B)/bench: bench/bench.c $(HDR) | $(B)
	$(CC) -std=c99 -O3 $(ARCH) $(WARN) -I. -o $@ $< $(LDLIBS)

# Vulkan benchmarks (issue 10): table on stdout and build/bench-vk.csv;
# BENCH_VK_ARGS=--small for sizes that run in seconds on lavapipe
bench-vk: $(B)/bench_vk
	./$(B)/bench_vk $(BENCH_VK_ARGS)

$(B)/bench_vk: bench/bench_vk.c tensorfuse_vk.h $(HDR) examples/llama.h | $(B)
	$(CC) -std=c99 -O2 $(ARCH) $(WARN) -I. -o $@ $< $(LDLIBS) $(LDL)

# The whole suite with Debian's cross compilers under qemu-user: aarch64 (the
# NEON kernels), armhf (32-bit size_t and pointers), riscv64 (scalar kernels).
# Debian: gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-riscv64-linux-gnu
# qemu-user, and libc6-dev-{arm64,armhf,riscv64}-cross.
CROSS_GRAPHS ?= 2000
CROSS = TFVK_REQUIRE= $(MAKE) --no-print-directory OPT=-O2 ARCH= GRAPHS=$(CROSS_GRAPHS)
cross: cross-aarch64 cross-armhf cross-riscv64
cross-aarch64:
	$(CROSS) B=$(B)/aarch64 CC=aarch64-linux-gnu-gcc RUN="qemu-aarch64 -L /usr/aarch64-linux-gnu" test
cross-armhf:
	$(CROSS) B=$(B)/armhf CC=arm-linux-gnueabihf-gcc RUN="qemu-arm -L /usr/arm-linux-gnueabihf" test
cross-riscv64:
	$(CROSS) B=$(B)/riscv64 CC=riscv64-linux-gnu-gcc RUN="qemu-riscv64 -L /usr/riscv64-linux-gnu" test
test-arm: cross-aarch64

# The suite for Windows with mingw-w64, run under wine in a fresh prefix with
# no display (Debian: gcc-mingw-w64-x86-64 wine64). The pool runs on Win32
# threads; the tests' own threads on winpthreads, linked statically. GCC does
# not align the Win64 stack for AVX spills (GCC bug 54412): unaligned moves.
# WIN_ATOMICS=2 builds the MSVC (Interlocked) atomics path instead of GCC's.
WINE ?= $(firstword $(shell command -v wine64 wine 2>/dev/null) /usr/lib/wine/wine64)
WIN_ATOMICS ?=
WIN_ENV = WINEDEBUG=-all WINEPREFIX=$(abspath $(B))/windows/wineprefix WINEDLLOVERRIDES="mscoree,mshtml="
windows:
	rm -rf $(B)/windows/wineprefix
	@mkdir -p $(B)/windows
	$(WIN_ENV) $(WINE) wineboot --init > $(B)/windows/wineboot.log 2>&1
	$(WIN_ENV) $(MAKE) --no-print-directory B=$(B)/windows CC=x86_64-w64-mingw32-gcc EXE=.exe OPT=-O2 \
	    ARCH="$(ARCH) -Wa,-muse-unaligned-vector-move $(if $(WIN_ATOMICS),-DTFU_X_ATOMICS=$(WIN_ATOMICS))" \
	    LDLIBS="-static -lm -lpthread" GRAPHS=$(CROSS_GRAPHS) RUN="$(WINE)" test

# the C11 <stdatomic.h> atomics (a compiler that is neither GCC nor MSVC)
# under ThreadSanitizer
test-atomics:
	$(MAKE) --no-print-directory B=$(B)/c11 OPT="-O1 -g -std=c11 -DTFU_X_ATOMICS=3 -fsanitize=thread" $(B)/c11/test_threads $(B)/c11/test_decode
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/c11/test_threads --iters 4
	TSAN_OPTIONS=halt_on_error=1 ./$(B)/c11/test_decode

# stripped size of the embedded build and compile time of the implementation
size:
	@sh tools/size.sh

# headers, pkg-config and CMake package files; version from tensorfuse.h
install:
	sh tools/install.sh "$(DESTDIR)$(PREFIX)" "$(PREFIX)"

test-install:
	sh tests/test_install.sh

clean:
	rm -rf $(B)
