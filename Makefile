.PHONY: test lint build demo bench robustness

test:
	go test -race -count=1 ./...

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...

build:
	go build -o redisync ./cmd/redisync

demo:
	go run ./cmd/redisync demo

bench:
	go run ./cmd/redisync bench --plot docs/latency.png

robustness:
	REDISYNC_ROBUST_DURATION=10m go test ./robustness -run TestRobustness -v -timeout 40m
