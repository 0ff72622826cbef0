package channel

import (
	"testing"

	"go.uber.org/goleak"
)

// rueidis's cluster client leaves two kinds of timers behind when it is closed during a
// failover: a delayed topology refresh and a delayed retry. Each sleeps a few seconds and ends
// by itself, touching nothing of ours; every goroutine this package starts is still checked.
var rueidisTimers = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"),
	goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*call).DelayDo.func1"),
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, rueidisTimers...)
}
