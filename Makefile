# Shortcuts; the README's two commands are scripts/quickstart.sh and scripts/test.sh.
.PHONY: quickstart test test-fast lint bench
quickstart:
	scripts/quickstart.sh
test:
	scripts/test.sh -q
test-fast:
	scripts/test.sh -q --fast
lint:
	.venv/bin/ruff check .
bench:
	.venv/bin/fmb bench cad --json
	.venv/bin/fmb bench sim --json
	.venv/bin/fmb bench policy --json
