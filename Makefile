# Shortcuts; the scripts are the real thing (they also work without make).
.PHONY: all demo test build asan bench clean
all: build
build:
	cmake --preset dev >/dev/null && cmake --build build/dev
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
bench:
	bash bench/run.sh
clean:
	rm -rf build
