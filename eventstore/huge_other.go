//go:build !linux

package eventstore

// makeHuge returns a zeroed slice of n elements.
func makeHuge[T any](n int) []T { return make([]T, n) }
