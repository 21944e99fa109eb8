# Two commands do all the set-up: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_DEV  := $(VENV)/.installed-dev
PYTEST_ARGS ?=
BENCH_ARGS ?=

# setuptools announces every editable install with an information-only warning ("Editable installation.",
# in any mode): it is the link tree under build/ this Makefile asks for, so the installs hide that one notice.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install

LAMBDA_ZIP ?= dist/audit-bedrock-lambda.zip
LAMBDA_PYTHON ?= 3.12
LAMBDA_ARGS ?=

.PHONY: demo test lint bench clean relink lambda-package deploy-templates

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

$(STAMP_DEMO): pyproject.toml | $(BIN)/python
	$(EDITABLE) -q -e '.[demo]' --config-settings editable_mode=strict
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(EDITABLE) -q -e '.[dev]' --config-settings editable_mode=strict
	touch $@ $(STAMP_DEMO)

# The editable install is a tree of links under build/; re-linking picks up files added since.
relink: | $(BIN)/python
	@out=$$($(EDITABLE) -q --no-deps -e . --config-settings editable_mode=strict 2>&1) \
	  || { echo "$$out"; exit 1; }

demo: $(STAMP_DEMO)
	$(MAKE) -s relink
	@# exit 1 means "findings at or above --fail-on", which the demo estate has by design
	$(BIN)/audit-bedrock --demo || [ $$? -eq 1 ]

test: $(STAMP_DEV)
	$(MAKE) -s relink
	$(BIN)/ruff check .
	$(BIN)/mypy -p audit_bedrock
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .

bench: $(STAMP_DEV)
	$(MAKE) -s relink
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The Lambda zip for deploy/scheduled-scan.yaml: the package and its runtime deps for Python $(LAMBDA_PYTHON)
# on x86_64, without boto3/botocore (the runtime's); LAMBDA_ARGS=--include-sdk bundles them.
lambda-package: | $(BIN)/python
	$(BIN)/python deploy/package_lambda.py --output $(LAMBDA_ZIP) --python-version $(LAMBDA_PYTHON) $(LAMBDA_ARGS)

# Rewrite the generated IAM action lists of the deploy/ templates from the collectors' declarations.
deploy-templates: $(STAMP_DEV)
	$(MAKE) -s relink
	$(BIN)/python -m audit_bedrock.policy write deploy/audit-role.yaml deploy/scheduled-scan.yaml

clean:
	rm -rf $(VENV) build dist *.egg-info audit-bedrock-report
