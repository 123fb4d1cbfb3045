# Two set-up commands: `make install` then `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: install test test-fast train clean

install:
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned, so that pip takes the CPU build that lies on disk
	$(PIP) install torch==2.13.0
	# the test extra brings OpenCV's GUI + contrib build (siamcli[gui]): windows for drawing the first
	# box and `siamcli webcam`, and the CSRT/KCF baselines of `eval --compare`
	$(PIP) install -c constraints.txt -e '.[test]'
	$(PIP) check
	# Xvfb and xdotool let the window tests run without a screen (Debian, as root; skipped otherwise)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && ! command -v Xvfb >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xdotool >/dev/null \
		|| echo "could not install xvfb/xdotool: the window tests will be skipped"; fi
	$(BIN)/siamcli --version

# the import contracts of pyproject.toml (layers, no cycles) first: they take a second
test:
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -rs

test-fast:
	$(BIN)/python -m pytest -q -m "not shared_data"

# retrain the bundled weights from ../shared/data/train (one SiamRPN and one SiamBAN head, distilled from NanoTrack v2; about half an hour on 2 cores; see weights/README.md)
train:
	$(BIN)/python -m tools.train_default

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
