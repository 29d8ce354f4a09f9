#!/bin/sh
# Runs every test program and prints one line "N passed, N failed, N skipped"
# summed over the programs' own summary lines. A program that crashes or
# prints no summary counts as a failure. After the programs: the header's
# self-test and the README example (pass = exit 0), and test_ops again with
# the SIMD kernels switched off.
# Environment: RUN, a command that runs a program (e.g. "qemu-arm -L /usr/arm-
# linux-gnueabihf", or wine), word-split on purpose; GRAPHS, test_random's
# --graphs (its own default when unset); VK_GRAPHS, test_vk's; EXE, the
# programs' suffix (.exe).
b=$1; shift
RUN=${RUN:-}
passed=0; failed=0; skipped=0
run() {  # run LABEL CMD...: a program with a summary line
    label=$1; shift
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" | tail -n 15 | sed "s|^|[$label] |"
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then echo "[$label] no summary line (exit $rc)"; failed=$((failed+1)); return; fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
    passed=$((passed+p)); failed=$((failed+f)); skipped=$((skipped+${s:-0}))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then echo "[$label] exit $rc"; failed=$((failed+1)); fi
}
run_rc() {  # run_rc LABEL CMD...: pass = exit status 0
    label=$1; shift
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out" | tail -n 3 | sed "s|^|[$label] |"
    if [ $rc -eq 0 ]; then passed=$((passed+1)); else echo "[$label] exit $rc"; failed=$((failed+1)); fi
}
for t in "$@"; do
    case $t in
    *test_random*) run "$(basename "$t")" $RUN "$t" ${GRAPHS:+--graphs "$GRAPHS"} ;;
    *test_vk*) run "$(basename "$t")" $RUN "$t" ${VK_GRAPHS:+--graphs "$VK_GRAPHS"} ;;
    *) run "$(basename "$t")" $RUN "$t" ;;
    esac
done
run_rc selftest $RUN "$b/selftest${EXE:-}"
run_rc readme_example $RUN "$b/readme_example${EXE:-}"
run "test_ops TFU_NO_SIMD=1" env TFU_NO_SIMD=1 $RUN "$b/test_ops${EXE:-}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
