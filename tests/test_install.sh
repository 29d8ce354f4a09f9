#!/bin/sh
# make test-install: installs into a temporary prefix, then builds and runs
# examples/mlp.c (a copy, away from the source tree) through pkg-config,
# through CMake find_package and through add_subdirectory of this checkout,
# and the checkout as a top-level CMake project; checks that the versions
# agree with tensorfuse.h and that find_package refuses an incompatible one.
# Needs cc, make, pkg-config and cmake. Ends with "N passed, N failed".
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
ok()   { passed=$((passed+1)); echo "ok: $1"; }
fail() { failed=$((failed+1)); echo "FAIL test_install: $1"; }
log()  { sed 's/^/    /' "$tmp/log"; }
prefix=$tmp/prefix
version=$(sh "$src/tools/version.sh" "$src/tensorfuse.h")
mkdir -p "$tmp/app"
cp "$src/examples/mlp.c" "$tmp/app/mlp.c"

if make -C "$src" --no-print-directory install PREFIX="$prefix" > "$tmp/log" 2>&1 \
   && [ -f "$prefix/include/tensorfuse.h" ] && [ -f "$prefix/lib/pkgconfig/tensorfuse.pc" ] \
   && [ -f "$prefix/lib/cmake/tensorfuse/tensorfuseConfig.cmake" ] \
   && [ -f "$prefix/lib/cmake/tensorfuse/tensorfuseConfigVersion.cmake" ]; then
    ok "make install PREFIX=$prefix"
else
    fail "make install"; log
fi

# DESTDIR stages the same files under another root, naming PREFIX inside
if make -C "$src" --no-print-directory install DESTDIR="$tmp/stage" PREFIX=/opt/tfu > "$tmp/log" 2>&1 \
   && [ -f "$tmp/stage/opt/tfu/include/tensorfuse.h" ] \
   && grep -q '^prefix=/opt/tfu$' "$tmp/stage/opt/tfu/lib/pkgconfig/tensorfuse.pc"; then
    ok "make install DESTDIR=... PREFIX=/opt/tfu"
else
    fail "make install with DESTDIR"; log
fi

# pkg-config
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pcv=$(pkg-config --modversion tensorfuse 2>/dev/null)
if [ "$pcv" = "$version" ]; then ok "pkg-config --modversion $pcv"; else fail "pkg-config version '$pcv', header $version"; fi
flags=$(pkg-config --cflags --libs tensorfuse 2>/dev/null)
# shellcheck disable=SC2086
if ${CC:-cc} -O2 -o "$tmp/app/mlp_pc" "$tmp/app/mlp.c" $flags > "$tmp/log" 2>&1 && "$tmp/app/mlp_pc" > "$tmp/log" 2>&1; then
    ok "mlp.c through pkg-config ($flags)"
else
    fail "mlp.c through pkg-config ($flags)"; log
fi

# CMake: find_package after make install, and add_subdirectory of the source
cmake_app() {  # cmake_app NAME BODY: a project that builds mlp.c, built and run
    mkdir -p "$tmp/$1"
    printf 'cmake_minimum_required(VERSION 3.14)\nproject(%s C)\n%s\nadd_executable(mlp "%s/app/mlp.c")\ntarget_link_libraries(mlp PRIVATE tensorfuse::tensorfuse)\n' \
        "$1" "$2" "$tmp" > "$tmp/$1/CMakeLists.txt"
    cmake -S "$tmp/$1" -B "$tmp/$1/build" -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/log" 2>&1 \
        && cmake --build "$tmp/$1/build" >> "$tmp/log" 2>&1 \
        && "$tmp/$1/build/mlp" >> "$tmp/log" 2>&1
}
major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
if cmake_app find_pkg "find_package(tensorfuse $major.$minor REQUIRED)
if(NOT tensorfuse_VERSION STREQUAL \"$version\")
  message(FATAL_ERROR \"tensorfuse_VERSION \${tensorfuse_VERSION}, header $version\")
endif()"; then
    ok "mlp.c through find_package(tensorfuse $major.$minor)"
else
    fail "mlp.c through find_package"; log
fi
if cmake_app find_bad "find_package(tensorfuse $((major + 1)).0 REQUIRED)"; then
    fail "find_package(tensorfuse $((major + 1)).0) accepted version $version"
else
    ok "find_package(tensorfuse $((major + 1)).0) refused"
fi
if cmake_app sub "add_subdirectory(\"$src\" tensorfuse)
if(NOT tensorfuse_VERSION STREQUAL \"$version\")
  message(FATAL_ERROR \"tensorfuse_VERSION \${tensorfuse_VERSION}, header $version\")
endif()"; then
    ok "mlp.c through add_subdirectory"
else
    fail "mlp.c through add_subdirectory"; log
fi

# this checkout as the top-level CMake project (builds examples/mlp.c)
if cmake -S "$src" -B "$tmp/top" > "$tmp/log" 2>&1 && cmake --build "$tmp/top" >> "$tmp/log" 2>&1 \
   && "$tmp/top/mlp" >> "$tmp/log" 2>&1; then
    ok "the checkout as a top-level CMake project"
else
    fail "the checkout as a top-level CMake project"; log
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
