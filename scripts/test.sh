#!/usr/bin/env bash
# Builds parley and runs every test, as CI does: for each CMake preset
# (default, clang, asan, tsan) configure, build and run ctest, then the same
# tests through meson. Prints a summary; exits nonzero if anything failed.
#
#   scripts/test.sh                      # everything
#   scripts/test.sh default asan         # only these steps
#   PARLEY_JOBS=4 scripts/test.sh        # build parallelism (default: nproc)
#
# For each step it prints one line "== <step>: N passed, M failed (T s, C cpu-s)",
# taken from ctest's (or meson's) own count; a step that fails to configure
# or build counts as one failure. .ci/run adds these lines up (the indented
# copies in the final summary are not counted again).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

scripts/install-deps.sh || exit 1

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(default clang asan tsan meson)
jobs=${PARLEY_JOBS:-$(nproc 2>/dev/null || echo 2)}
mkdir -p build
summary=()
failed_steps=0

# CPU seconds (user + system) used so far by finished child processes:
# with other builds on the machine, wall time alone says little.
tick=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_seconds() { awk -v t="$tick" '{printf "%d", ($16 + $17) / t}' /proc/$$/stat 2>/dev/null || echo 0; }
cpu_mark=$(cpu_seconds)

# report <step> <passed> <failed> <seconds> [note]
report() {
  local cpu_now
  cpu_now=$(cpu_seconds)
  local line="== $1: $2 passed, $3 failed ($4 s, $((cpu_now - cpu_mark)) cpu-s)${5:+ $5}"
  cpu_mark=$cpu_now
  echo "$line"
  summary+=("$line")
  [ "$3" -eq 0 ] || failed_steps=$((failed_steps + 1))
}

run_preset() {
  local preset=$1 start=$SECONDS log="build/$1.ctest.log"
  echo; echo "==== $preset: configure and build"
  if ! cmake --preset "$preset" || ! cmake --build --preset "$preset" --parallel "$jobs"; then
    report "$preset" 0 1 $((SECONDS - start)) "(configure or build failed)"
    return
  fi
  echo; echo "==== $preset: ctest"
  ctest --preset "$preset" 2>&1 | tee "$log"
  # ctest ends with "NN% tests passed, F tests failed out of T".
  local counts
  counts=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$log" | tail -n 1)
  if [ -z "$counts" ]; then
    report "$preset" 0 1 $((SECONDS - start)) "(ctest printed no result)"
    return
  fi
  local failed=${counts% *} total=${counts#* }
  report "$preset" $((total - failed)) "$failed" $((SECONDS - start))
}

run_meson() {
  local start=$SECONDS dir=build/meson log=build/meson.test.log
  echo; echo "==== meson: setup and compile"
  local setup=(meson setup "$dir" --werror)
  [ -f "$dir/build.ninja" ] && setup=(meson setup --reconfigure "$dir" --werror)
  if ! "${setup[@]}" || ! meson compile -C "$dir" -j "$jobs"; then
    report meson 0 1 $((SECONDS - start)) "(setup or compile failed)"
    return
  fi
  echo; echo "==== meson: test"
  meson test -C "$dir" --print-errorlogs 2>&1 | tee "$log"
  # meson's summary: "Ok: N", "Fail: N", "Timeout: N", "Unexpected Pass: N".
  local ok bad
  ok=$(awk '/^Ok:/ {print $2}' "$log" | tail -n 1)
  bad=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {n += $NF} END {print n + 0}' "$log")
  if [ -z "$ok" ]; then
    report meson 0 1 $((SECONDS - start)) "(meson test printed no result)"
    return
  fi
  report meson "$ok" "$bad" $((SECONDS - start))
}

total_start=$SECONDS
for step in "${steps[@]}"; do
  case $step in
    meson) run_meson ;;
    *) run_preset "$step" ;;
  esac
done

echo
echo "==== summary ($((SECONDS - total_start)) s)"
# Indented, so that .ci/run counts each step's line once.
printf '  %s\n' "${summary[@]}"
[ "$failed_steps" -eq 0 ]
