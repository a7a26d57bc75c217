package natsstore_test

import (
	"fmt"
	"testing"

	"github.com/batpak-go/batpak/natsstore/embedded"
)

// BenchmarkAtomicBatch measures the latency of one request (one Append,
// with the expected version) of n events to one stream: n = 1 is a plain
// publish, n > 1 a JetStream atomic batch. Servers: one in-process
// nats-server with file storage, with sync_always (embedded's default) and
// with the default 2-minute sync; a 3-node in-process cluster on loopback
// with the default sync (replicas 3). The figure the package documentation
// quotes is ms/request.
//
//	go test -run '^$' -bench AtomicBatch -benchtime 200x ./natsstore/
func BenchmarkAtomicBatch(b *testing.B) {
	servers := []struct {
		name string
		open func(b *testing.B) benchStore
	}{
		{"R1-file-sync_always", func(b *testing.B) benchStore {
			ns, err := embedded.Start(embedded.Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(ns.Shutdown)
			return openBench(b, ns.ClientURL(), 1)
		}},
		{"R1-file-default_sync", func(b *testing.B) benchStore {
			ns, err := embedded.Start(embedded.Options{Dir: b.TempDir(), RelaxedSync: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(ns.Shutdown)
			return openBench(b, ns.ClientURL(), 1)
		}},
		{"R3-file-default_sync", func(b *testing.B) benchStore {
			return openBench(b, startCluster(b, 3).urls(), 3)
		}},
	}
	for _, srv := range servers {
		for _, n := range []int{1, 2, 10, 100} {
			b.Run(fmt.Sprintf("%s/events=%d", srv.name, n), func(b *testing.B) {
				s := srv.open(b)
				defer s.Close()
				v := mustAppend(b, s, "batch", 0, benchEvents(0, n))
				b.ResetTimer()
				for i := range b.N {
					v = mustAppend(b, s, "batch", v, benchEvents(i, n))
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/request")
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
