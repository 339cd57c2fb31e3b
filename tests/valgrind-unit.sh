#!/usr/bin/env bash
# Run the unit test programs under valgrind (memcheck): any error or leak fails.
# Usage: tests/valgrind-unit.sh BUILD_DIR
set -euo pipefail
build=${1:?build dir}
fail=0
for t in "$build"/tests/unit/check_*; do
    [ -x "$t" ] || continue
    case "$t" in *.o|*.log|*.trs) continue ;; esac
    if CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        "$t" >"$t.valgrind.log" 2>&1; then
        echo "valgrind clean: $(basename "$t")"
    else
        rc=$?
        if [ "$rc" -eq 77 ]; then echo "skipped: $(basename "$t")"; continue; fi
        echo "valgrind FAILED: $(basename "$t") (exit $rc)"; tail -40 "$t.valgrind.log"; fail=1
    fi
done
exit $fail
