#!/bin/sh
# Runs every test program, then prints one line "N passed, N failed" summed
# over the "N passed, N failed" lines the programs print. A program that
# crashes or prints no summary counts as one failure.
b=$1; shift
passed=0; failed=0; skipped=0
for t in "$@" "$b/selftest"; do
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | tail -n 20
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ "$t" = "$b/selftest" ]; then
        if [ $rc -eq 0 ]; then passed=$((passed+1)); else failed=$((failed+1)); fi
        continue
    fi
    if [ -z "$line" ]; then
        echo "$t: no summary line (exit $rc)"; failed=$((failed+1)); continue
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
    passed=$((passed+p)); failed=$((failed+f)); skipped=$((skipped+${s:-0}))
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then echo "$t: exit $rc"; failed=$((failed+1)); fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
