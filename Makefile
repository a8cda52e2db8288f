# joyai-embodied: `make demo` runs the main job, `make test` runs the test suite.
# Both create .venv (Python 3.11+) and install what is missing first.

PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; override on a GPU host, e.g. `make test TORCH_SPEC='torch==2.14.1'`.
TORCH_SPEC ?= torch==2.13.0
# Debian packages: EGL/OSMesa for headless MuJoCo rendering, libusb for Open3D; the venv module, Python headers,
# CMake and a compiler to build the ROS 2 interface wheel (ros_nodes/build_interfaces.sh) on a fresh machine.
APT_PACKAGES := libegl1 libegl-mesa0 libgbm1 libgl1-mesa-dri libopengl0 libglvnd0 libosmesa6 libusb-1.0-0 libgomp1 \
                python3-venv python3-dev cmake build-essential iproute2 util-linux

BIN := $(VENV)/bin
STAMP := $(VENV)/.joyai-installed

export MUJOCO_GL ?= egl
# ROS 2 discovery stays on this machine; tests pick their own ROS_DOMAIN_ID (tests/conftest.py).
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST

.PHONY: demo test setup system-deps bench-small clean

demo: $(STAMP)
	$(BIN)/joyai-embodied demo

test: $(STAMP)
	$(BIN)/python -m pytest tests -q

setup: $(STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "Install the equivalents of:$$missing"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	else \
	  echo "Missing Debian packages; run: sudo apt-get install -y$$missing"; exit 1; \
	fi

INTERFACE_SOURCES := $(wildcard ros_nodes/joyai_interfaces/msg/*.msg ros_nodes/joyai_interfaces/srv/*.srv \
                                 ros_nodes/joyai_interfaces/action/*.action ros_nodes/joyai_interfaces/CMakeLists.txt)

$(STAMP): setup.py Makefile ros_nodes/build_interfaces.sh $(INTERFACE_SOURCES)
	@$(MAKE) --no-print-directory system-deps
	@test -x $(BIN)/python || { $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "$(PYTHON) is older than Python 3.11; run: make $(MAKECMDGOALS) PYTHON=python3.11"; exit 1; }; \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[all,dev]"
	bash ros_nodes/build_interfaces.sh $(VENV)
	@touch $(STAMP)

# Every benchmark at small size: quick figures and a check that the scripts run (CI runs this too).
BENCHMARKS := sim_bench speed image_size eval_spatial eval_imagination eval_planner remote_bench ros_bench sim_bridge_bench \
              replay_bench record_bench soak eval_libero libero_perception ray_bench ray_bench_libero
bench-small: $(STAMP)
	@for b in $(BENCHMARKS); do echo "== benchmarks/$$b.py --small"; $(BIN)/python benchmarks/$$b.py --small || exit 1; done
	$(BIN)/python benchmarks/gpu_smoke.py --tiny --small

clean:
	rm -rf $(VENV) build *.egg-info out
