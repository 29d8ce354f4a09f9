# Prints every line of the header that uses a GNU extension outside a block
# selected by __GNUC__ / __clang__ (or the GCC atomics path, TFU_X_ATOMICS 1):
# MSVC and plain C compilers must never see one.
function gnu_ok(   i) {
    for (i = 1; i <= depth; i++) if (ok[i]) return 1
    return 0
}
/^[ \t]*#[ \t]*if/ {
    depth++
    cond[depth] = $0
    ok[depth] = ($0 ~ /__GNUC__|__clang__|TFU_X_ATOMICS == 1/) && ($0 !~ /!defined\(__GNUC__\)/)
    next
}
/^[ \t]*#[ \t]*elif/ {
    ok[depth] = ($0 ~ /__GNUC__|__clang__|TFU_X_ATOMICS == 1/)
    next
}
/^[ \t]*#[ \t]*else/ { ok[depth] = 0; next }
/^[ \t]*#[ \t]*endif/ { depth--; next }
/__attribute__|__builtin_|__atomic_|__ATOMIC_|__typeof|typeof\(|__asm|[^_a-z]asm\(|__extension__|__int128/ {
    if (!gnu_ok()) { print FILENAME ":" FNR ": GNU extension outside #if __GNUC__: " $0; bad = 1 }
}
END { exit bad }
