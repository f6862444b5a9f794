# Convenience targets; dev.sh does the work (and installs what is missing).
.PHONY: all run test clean
all:
	./dev.sh build
run:
	./dev.sh run
test:
	./dev.sh test
clean:
	rm -rf build
