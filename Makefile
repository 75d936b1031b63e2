# edgeprune: every install goes through constraints.txt (torch stays at the local 2.13.0 CPU wheel).
PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip install -q -c constraints.txt
EXTRAS ?= onnx,coreml,server,ray,dev

.PHONY: install install-tf demo test test-slow lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(PIP) torch==2.13.0
	$(PIP) -e ".[$(EXTRAS)]"
	# the official TFLite Metadata reader the tests use; --no-deps: its own pins would downgrade protobuf
	$(PIP) --no-deps tflite-support==0.4.4
	# torchvision for the zoo's mobilenetv3_small/shufflenetv2 and torchvision:NAME; PyPI has only the CUDA build,
	# whose torch pin would replace the CPU torch: --no-deps (edgeprune/models/_torchvision.py makes it importable)
	$(PIP) --no-deps torchvision==0.28.0
	touch $@

# Optional second TFLite backend (ONNX -> onnx2tf on tensorflow-cpu, ~1.4 GB).
install-tf: install
	bash scripts/install_tf_extra.sh $(VENV)

# The main job on the embedded default: the synthetic fundus set (drawn once by calib_data's generator into
# ~/.cache/edgeprune, ~20 s), ResNet-20 at 32 px. No budget flag: the build searches (4 trials here, to stay
# within 5 minutes) for the fastest model that meets the accuracy contract on the validation split.
# Exit code 3 means the accuracy gate rejected an artifact: the demo still finished and shows why.
demo: install
	$(VENV)/bin/edgeprune build --out runs/demo --trials 4 || { rc=$$?; [ $$rc -eq 3 ] && echo "demo finished; the gate rejected an artifact or no trial met the contract (see above)"; [ $$rc -eq 3 ]; }

test: install
	$(VENV)/bin/pytest -q

test-slow: install
	EDGEPRUNE_SLOW=1 $(VENV)/bin/pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check edgeprune tests

clean:
	rm -rf runs .pytest_cache
