# The two commands (README.md): `make run` and `make test`.
.PHONY: run test bench check

PYTEST_ARGS ?= -n 2

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh $(PYTEST_ARGS)

bench:
	bash bench/run.sh

check:
	.venv/bin/python manage.py check
