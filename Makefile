.PHONY: test lint build demo

test:
	go test -race -count=1 ./...

lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...

build:
	go build -o redisync ./cmd/redisync

demo:
	go run ./cmd/redisync demo
