#!/bin/sh
# embed_spirv.sh HEADER: compiles shaders/*.comp with glslc (then spirv-opt
# drops dead functions and debug names) and writes the SPIR-V words into
# HEADER between the markers "BEGIN GENERATED SPIR-V" and "END GENERATED
# SPIR-V". `make shaders` runs it on tensorfuse_vk.h; `make shaders-check`
# on a copy, and fails if the header is stale. Needs glslc and spirv-opt
# (Debian: glslc, spirv-tools); users of the header need neither.
set -eu
hdr=${1:-tensorfuse_vk.h}
dir=$(dirname "$0")/../shaders
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GLSLC=${GLSLC:-glslc}
SPIRV_OPT=${SPIRV_OPT:-spirv-opt}
FLAGS="--target-env=vulkan1.0 -O0"
OPT="--eliminate-dead-functions --eliminate-dead-code-aggressive --strip-debug --strip-reflect"

# name source extra-flags
build() {
    $GLSLC $FLAGS $3 -I "$dir" -c "$dir/$2" -o "$tmp/$1.raw.spv"
    $SPIRV_OPT $OPT "$tmp/$1.raw.spv" -o "$tmp/$1.spv"
    {
        echo "static const uint32_t tfvk_x_spv_$1[] = {"
        od -An -v -tx4 "$tmp/$1.spv" | sed -e 's/^ *//' -e 's/  */ /g' -e 's/\([0-9a-f]\{8\}\)/0x\1,/g'
        echo "};"
    } >> "$tmp/words.h"
}

{
    echo "/* BEGIN GENERATED SPIR-V: made by tools/embed_spirv.sh from shaders/"
    echo "   ($($GLSLC --version | head -n 1); glslc $FLAGS; spirv-opt $OPT)."
    echo "   Generated, do not edit: change shaders/ and run make shaders. */"
} > "$tmp/words.h"
build eltwise eltwise.comp ""
build row row.comp ""
build matmul matmul.comp ""
# subgroup operations are SPIR-V 1.3: the runtime creates this module only
# on devices with subgroup arithmetic in compute shaders (Vulkan 1.1)
build matvec matvec.comp "--target-env=vulkan1.1"
# row.comp with subgroup reductions, for the same devices
build row_sg row.comp "--target-env=vulkan1.1 -DTFVK_SUBGROUP"
build other other.comp ""
build rope rope.comp ""
build rope64 rope.comp "-DTFVK_F64"
build copy copy.comp ""
echo "/* END GENERATED SPIR-V */" >> "$tmp/words.h"

# splice: everything before the first marker, the words, everything after the second
awk -v words="$tmp/words.h" '
    /BEGIN GENERATED SPIR-V/ { while ((getline line < words) > 0) print line; skip = 1; next }
    /END GENERATED SPIR-V/ { skip = 0; next }
    !skip { print }
' "$hdr" > "$tmp/out.h"
if ! grep -q "BEGIN GENERATED SPIR-V" "$tmp/out.h"; then
    echo "embed_spirv.sh: no marker in $hdr" >&2
    exit 1
fi
cat "$tmp/out.h" > "$hdr"
