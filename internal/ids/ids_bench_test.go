package ids_test

import (
	"testing"
	"time"

	"github.com/batpak-go/batpak/internal/ids"
)

// BenchmarkNext: the cost of one id, its random bits read ahead.
func BenchmarkNext(b *testing.B) {
	var g ids.Generator
	now := time.Now()
	for b.Loop() {
		g.Next(now)
	}
}
