#!/bin/sh
# make size: the figures BENCHMARKS.md keeps for the embedded build.
#  - the implementation alone (TFU_IMPLEMENTATION, the embedded configuration
#    TFU_NO_MALLOC TFU_NO_THREADS TFU_NO_STDIO) compiled at -O2: its code
#    size (text, from `size`) for x86-64, x86-64 with AVX2 and armhf;
#  - tests/test_embedded.c linked and stripped, for the same targets;
#  - the compile time of the implementation (default configuration) at -O2
#    on x86-64, best of 3 runs;
#  - that the embedded program imports no malloc, stdio or pthread symbol.
# A cross compiler that is missing gives "-". Usage: sh tools/size.sh
set -u
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
EMB="-DTFU_NO_MALLOC -DTFU_NO_THREADS -DTFU_NO_STDIO"
printf '#define TFU_IMPLEMENTATION\n#include "tensorfuse.h"\n' > "$tmp/impl.c"
row() {  # row LABEL CC STRIP FLAGS...
    label=$1; cc=$2; strip=$3; shift 3
    if ! command -v "$cc" >/dev/null 2>&1; then printf '%-28s %10s %12s\n' "$label" - -; return; fi
    "$cc" -std=c99 -O2 "$@" $EMB -I. -c "$tmp/impl.c" -o "$tmp/impl.o" || return
    text=$(size "$tmp/impl.o" | awk 'NR == 2 { print $1 }')
    "$cc" -std=c99 -O2 "$@" -I. tests/test_embedded.c -o "$tmp/emb" -lm || return
    "$strip" "$tmp/emb"
    bytes=$(wc -c < "$tmp/emb" | tr -d ' ')
    printf '%-28s %10s %12s\n' "$label" "$text" "$bytes"
}
echo "tensorfuse $(sh tools/version.sh), $(cc --version | head -n 1)"
printf '%-28s %10s %12s\n' "target (-O2)" "impl text" "test_embedded"
row "x86-64" cc strip
row "x86-64 -mavx2 -mfma -mf16c" cc strip -mavx2 -mfma -mf16c
row "armhf" arm-linux-gnueabihf-gcc arm-linux-gnueabihf-strip
best=
for i in 1 2 3; do
    t0=$(date +%s.%N)
    cc -std=c99 -O2 -I. -c "$tmp/impl.c" -o "$tmp/impl.o" || exit 1
    t1=$(date +%s.%N)
    best=$(echo "$t0 $t1 ${best:-1e9}" | awk '{ d = $2 - $1; print (d < $3 ? d : $3) }')
done
printf 'compile time, cc -std=c99 -O2 -c (implementation, default configuration): %.2f s (best of 3)\n' "$best"
cc -std=c99 -O2 -I. tests/test_embedded.c -o "$tmp/emb" -lm || exit 1
bad=$(nm -u "$tmp/emb" | grep -E ' (malloc|calloc|realloc|free|printf|fprintf|puts|fwrite|fopen|pthread_[a-z_]*)(@|$)' | awk '{ print $2 }' | tr '\n' ' ')
if [ -n "$bad" ]; then echo "test_embedded imports: $bad"; exit 1; fi
echo "test_embedded imports no malloc, stdio or pthread symbol"
