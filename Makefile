# Local-dev targets for the kind parity lane. Each is one line calling cargo xtask.
# Pass flags with ARGS, e.g. `make kind-parity-up ARGS="--name mine"`.
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help kind-parity-up kind-parity-status kind-parity-validate kind-parity-down kind-parity-reset kind-parity-render test bench

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

kind-parity-up: ## Create and bootstrap the environment
	$(CARGO) xtask parity-up $(ARGS)

kind-parity-status: ## Show the environment's state and endpoints
	$(CARGO) xtask parity-status $(ARGS)

kind-parity-validate: ## Run the fail-closed parity suite
	$(CARGO) xtask parity-validate $(ARGS)

kind-parity-down: ## Delete the environment and what was created for it
	$(CARGO) xtask parity-down $(ARGS)

kind-parity-reset: ## Rebuild the environment from zero
	$(CARGO) xtask parity-reset $(ARGS)

kind-parity-render: ## Render the kind config, manifests and compose env
	$(CARGO) run --quiet --package kind-parity -- render $(ARGS)

test: ## The test bed up (cached), then unit and integration tests
	$(CARGO) xtask test

bench: ## Benchmarks
	$(CARGO) xtask bench
