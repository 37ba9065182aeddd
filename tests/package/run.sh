#!/usr/bin/env bash
# Packaging tests: builds and runs a tiny consumer of parley, offline, in
# one of the ways a project can use it.
#
#   tests/package/run.sh <source-dir> <work-dir> <which>
#
# <which> is fetchcontent, add_subdirectory, find_package (also checks the
# pkg-config file) or meson_subproject. Everything is written under
# <work-dir>/<which>, which is emptied first. Honours CXX (the compiler) and
# PARLEY_CMAKE (the cmake binary, default: cmake). Exits 77, which ctest
# reports as skipped, when a tool the chosen test needs is missing.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 <source-dir> <work-dir> fetchcontent|add_subdirectory|find_package|meson_subproject" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
mkdir -p "$2"
work=$(cd "$2" && pwd)
which=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmake=${PARLEY_CMAKE:-cmake}
dir=$work/$which

case $which in
  fetchcontent|add_subdirectory|find_package|meson_subproject) ;;
  *) echo "run.sh: unknown test '$which'" >&2; exit 2 ;;
esac
if [ "$dir" = "$src" ] || [ "$dir" = / ]; then
  echo "run.sh: refusing to use $dir as a work directory" >&2
  exit 2
fi
rm -rf -- "$dir"
mkdir -p "$dir"

skip() { echo "SKIPPED: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"; }
step() { printf '\n=== %s: %s\n' "$which" "$*"; }
need ninja

# The consumers never download anything: parley must not fetch Asio or
# doctest, and FetchContent must use what it is given.
offline=(-DPARLEY_FETCH_DEPS=OFF -DFETCHCONTENT_FULLY_DISCONNECTED=ON)

# Configures, builds and runs one CMake consumer project.
#   cmake_consumer <project-dir> <build-dir> [cmake args...]
cmake_consumer() {
  local project=$1 build=$2
  shift 2
  step "configure $(basename "$project") in $build"
  "$cmake" -S "$project" -B "$build" -G Ninja "$@"
  step "build"
  "$cmake" --build "$build"
  step "run"
  "$build/consumer"
}

# Writes a .tar.gz of the source tree as it would be committed: tracked and
# untracked-but-not-ignored files of a git checkout (so no build dirs), all
# under a top directory parley/, like a release archive.
make_archive() {
  local out=$1 list
  list=$(mktemp)
  if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$src" ]; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard) |
      while IFS= read -r -d '' f; do
        # Skip files deleted in the work tree but still in the index.
        [ -e "$src/$f" ] && printf '%s\0' "$f"
      done >"$list"
    tar -C "$src" --null -T "$list" --transform 's,^,parley/,' -czf "$out"
  else
    tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./_build \
      --transform 's,^\.,parley,' -czf "$out" .
  fi
  rm -f "$list"
}

case $which in
fetchcontent)
  cmake_consumer "$here/fetchcontent" "$dir/source-dir" "${offline[@]}" \
    -DPARLEY_SOURCE="$src"
  # As from a release archive. Not FULLY_DISCONNECTED: the "download" is a
  # local file:// copy, and it has to happen.
  make_archive "$dir/parley.tar.gz"
  cmake_consumer "$here/fetchcontent" "$dir/url" -DPARLEY_FETCH_DEPS=OFF \
    -DPARLEY_URL="file://$dir/parley.tar.gz"
  ;;

add_subdirectory)
  cmake_consumer "$here/add_subdirectory" "$dir/build" "${offline[@]}" \
    -DPARLEY_SOURCE="$src"
  ;;

find_package)
  step "install parley into $dir/prefix"
  "$cmake" -S "$src" -B "$dir/parley-build" -G Ninja "${offline[@]}" \
    -DPARLEY_BUILD_TESTS=OFF -DPARLEY_BUILD_EXAMPLES=OFF -DPARLEY_BUILD_BENCH=OFF \
    -DCMAKE_INSTALL_PREFIX="$dir/prefix"
  "$cmake" --build "$dir/parley-build"
  "$cmake" --install "$dir/parley-build"
  # Then move it: the CMake package and the .pc file must be relocatable.
  mv "$dir/prefix" "$dir/moved-prefix"
  prefix=$dir/moved-prefix
  for f in include/parley/parley.hpp include/parley/version.hpp \
           share/cmake/parley/parleyConfig.cmake share/cmake/parley/parleyConfigVersion.cmake \
           share/cmake/parley/parleyTargets.cmake share/cmake/parley/Findasio.cmake \
           share/pkgconfig/parley.pc share/pkgconfig/parley-tls.pc; do
    [ -f "$prefix/$f" ] || { echo "FAILED: $f was not installed" >&2; exit 1; }
  done

  cmake_consumer "$here/find_package" "$dir/build" -DCMAKE_PREFIX_PATH="$prefix"

  command -v pkg-config >/dev/null 2>&1 || skip "pkg-config is not installed (the CMake part passed)"
  step "pkg-config"
  export PKG_CONFIG_PATH=$prefix/share/pkgconfig
  version=$(sed -n 's/^#define PARLEY_VERSION "\(.*\)"$/\1/p' "$src/include/parley/version.hpp")
  pc_version=$(pkg-config --modversion parley)
  cflags=$(pkg-config --cflags parley)
  libs=$(pkg-config --libs parley)
  echo "version: $pc_version  cflags: $cflags  libs: $libs"
  [ "$pc_version" = "$version" ] || { echo "FAILED: parley.pc says $pc_version, version.hpp $version" >&2; exit 1; }
  case " $cflags " in *" -DASIO_STANDALONE "*) ;; *) echo "FAILED: no -DASIO_STANDALONE in cflags" >&2; exit 1 ;; esac
  # shellcheck disable=SC2086 # word splitting of pkg-config output is intended
  "${CXX:-c++}" -std=c++20 $cflags "$here/common/main.cpp" -o "$dir/consumer-pkg-config" $libs
  "$dir/consumer-pkg-config"
  if pkg-config --exists openssl; then
    step "pkg-config parley-tls"
    # shellcheck disable=SC2046 # word splitting of pkg-config output is intended
    "${CXX:-c++}" -std=c++20 $(pkg-config --cflags parley-tls) "$here/common/tls_main.cpp" \
      -o "$dir/consumer-tls-pkg-config" $(pkg-config --libs parley-tls)
    "$dir/consumer-tls-pkg-config"
  fi
  ;;

meson_subproject)
  need meson
  # A scratch copy of the consumer, with parley's tree (as it would be
  # committed) unpacked at subprojects/parley. Copied rather than symlinked:
  # the work dir may sit inside the source tree, and a link back up to the
  # source root would make a directory loop.
  mkdir -p "$dir/src"
  cp -R "$here/meson_subproject" "$here/common" "$dir/src/"
  mkdir -p "$dir/src/meson_subproject/subprojects"
  make_archive "$dir/parley.tar.gz"
  tar -C "$dir/src/meson_subproject/subprojects" -xzf "$dir/parley.tar.gz"
  step "meson setup"
  meson setup "$dir/build" "$dir/src/meson_subproject" --wrap-mode=nodownload
  step "meson compile"
  meson compile -C "$dir/build"
  step "meson test"
  meson test -C "$dir/build" --print-errorlogs
  "$dir/build/consumer"
  ;;
esac

printf '\n=== %s: OK\n' "$which"
