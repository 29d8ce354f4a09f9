#!/bin/sh
# Prints the version of tensorfuse.h ($1, default ./tensorfuse.h) as
# MAJOR.MINOR.PATCH, from its TFU_VERSION_* macros: the one place it is written.
h=${1:-tensorfuse.h}
v() { sed -n "s/^#define TFU_VERSION_$1 *\([0-9][0-9]*\).*/\1/p" "$h"; }
major=$(v MAJOR); minor=$(v MINOR); patch=$(v PATCH)
[ -n "$major" ] && [ -n "$minor" ] && [ -n "$patch" ] || { echo "version.sh: no TFU_VERSION_* in $h" >&2; exit 1; }
echo "$major.$minor.$patch"
