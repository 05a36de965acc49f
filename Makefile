# Every target is a script in scripts/, so a machine without make runs the
# same thing. Run as root.
.PHONY: demo demo-down test build fuzz bench clean

demo:
	./scripts/demo

demo-down:
	./scripts/demo down

test:
	./scripts/test

build:
	CGO_ENABLED=0 go build -trimpath -o bin/moat ./cmd/moat

fuzz:
	./scripts/fuzz

bench:
	./scripts/bench

clean:
	rm -rf bin
