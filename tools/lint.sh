#!/bin/sh
# Builds the header (API only, with the implementation and self-test, and the
# embedded configuration with TFU_NO_FENV too) with
# every warning as an error, as C99, C11 and C++, with and without NDEBUG;
# then the C11-atomics build and the check for GNU-only code.
CC=${1:-cc}; CXX=${2:-c++}
W="-Wall -Wextra -Wpedantic -Werror -Wshadow"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '#include "tensorfuse.h"\n#include "tensorfuse.h"\nint tfu_api_only;\n' > "$tmp/api.c"
printf '#define TFU_IMPLEMENTATION\n#define TFU_SELFTEST\n#include "tensorfuse.h"\n' > "$tmp/impl.c"
printf '#define TFU_IMPLEMENTATION\n#define TFU_NO_THREADS\n#define TFU_NO_MALLOC\n#define TFU_NO_STDIO\n#define TFU_NO_SIMD\n#define TFU_NO_FENV\n#include "tensorfuse.h"\n' > "$tmp/embedded.c"
fail=0
for f in api impl embedded; do
  for nd in "" "-DNDEBUG"; do
    for std in c99 c11; do
      $CC -std=$std $W $nd -O2 -I. -c "$tmp/$f.c" -o "$tmp/o.o" || { echo "lint: $f $std $nd failed"; fail=1; }
    done
    cp "$tmp/$f.c" "$tmp/$f.cpp"
    $CXX -std=c++11 $W -Wno-old-style-cast $nd -O2 -I. -c "$tmp/$f.cpp" -o "$tmp/o.o" || { echo "lint: $f c++ $nd failed"; fail=1; }
  done
done
# the SIMD kernels (the flags above select none of them on x86-64): AVX2+FMA
# and AVX-512 builds of the implementation as C11 and C++
case $($CC -dumpmachine 2>/dev/null) in
x86_64*|amd64*)
  for m in haswell skylake-avx512 icelake-server alderlake; do   # the last two: AVX512-VNNI, AVX-VNNI
    $CC -std=c11 $W -march=$m -O2 -I. -c "$tmp/impl.c" -o "$tmp/o.o" || { echo "lint: impl c11 -march=$m failed"; fail=1; }
    $CXX -std=c++11 $W -Wno-old-style-cast -march=$m -O2 -I. -c "$tmp/impl.cpp" -o "$tmp/o.o" || { echo "lint: impl c++ -march=$m failed"; fail=1; }
  done
  simd="; AVX2, AVX-512 and VNNI kernels as C11 and C++" ;;
*) simd="" ;;
esac
# tensorfuse_vk.h (where the Vulkan headers are): API only and with the
# implementation, C99, C11 and C++
if printf '#include <vulkan/vulkan_core.h>\n' | $CC -E -x c - >/dev/null 2>&1; then
  printf '#include "tensorfuse_vk.h"\n#include "tensorfuse_vk.h"\nint tfvk_api_only;\n' > "$tmp/vkapi.c"
  printf '#define TFU_IMPLEMENTATION\n#define TFVK_IMPLEMENTATION\n#include "tensorfuse.h"\n#include "tensorfuse_vk.h"\n' > "$tmp/vkimpl.c"
  for f in vkapi vkimpl; do
    for nd in "" "-DNDEBUG"; do
      for std in c99 c11; do
        $CC -std=$std $W $nd -O2 -I. -c "$tmp/$f.c" -o "$tmp/o.o" || { echo "lint: $f $std $nd failed"; fail=1; }
      done
      cp "$tmp/$f.c" "$tmp/$f.cpp"
      $CXX -std=c++11 $W -Wno-old-style-cast $nd -O2 -I. -c "$tmp/$f.cpp" -o "$tmp/o.o" || { echo "lint: $f c++ $nd failed"; fail=1; }
    done
  done
  vk="; tensorfuse_vk.h too"
else
  echo "lint: no <vulkan/vulkan_core.h>: tensorfuse_vk.h not checked (Debian: libvulkan-dev)"
  vk=""
fi
# the C11 <stdatomic.h> path, which GCC would not take by itself
$CC -std=c11 $W -DTFU_X_ATOMICS=3 -O2 -I. -c "$tmp/impl.c" -o "$tmp/o.o" || { echo "lint: impl c11 atomics failed"; fail=1; }
# GNU extensions only where __GNUC__ selects them (MSVC and plain C compilers)
awk -f tools/gnu_check.awk tensorfuse.h || { echo "lint: GNU extensions outside #if __GNUC__"; fail=1; }
[ $fail -eq 0 ] && echo "lint: clean (C99, C11, C++11; with and without NDEBUG; C11 atomics; no GNU-only code outside __GNUC__$simd$vk)"
exit $fail
