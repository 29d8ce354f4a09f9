#!/bin/sh
# make install: tools/install.sh DEST PREFIX
# Copies the header(s) to DEST/include and writes DEST/lib/pkgconfig/
# tensorfuse.pc and DEST/lib/cmake/tensorfuse/tensorfuseConfig{,Version}.cmake.
# DEST is DESTDIR + PREFIX; the .pc file names PREFIX. The version comes from
# the TFU_VERSION_* macros of tensorfuse.h.
set -eu
dest=$1; prefix=$2
version=$(sh tools/version.sh tensorfuse.h)
major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
mkdir -p "$dest/include" "$dest/lib/pkgconfig" "$dest/lib/cmake/tensorfuse"
for h in tensorfuse.h tensorfuse_vk.h; do
    if [ -f "$h" ]; then cp "$h" "$dest/include/$h"; fi
done
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" tensorfuse.pc.in > "$dest/lib/pkgconfig/tensorfuse.pc"
cp cmake/tensorfuseConfig.cmake "$dest/lib/cmake/tensorfuse/tensorfuseConfig.cmake"
sed -e "s|@VERSION@|$version|g" -e "s|@VERSION_MAJOR@|$major|g" -e "s|@VERSION_MINOR@|$minor|g" \
    cmake/tensorfuseConfigVersion.cmake.in > "$dest/lib/cmake/tensorfuse/tensorfuseConfigVersion.cmake"
echo "installed tensorfuse $version under $dest"
