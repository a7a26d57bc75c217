//go:build !linux

package huge

// Make returns a zeroed slice of n elements.
func Make[T any](n int) []T { return make([]T, n) }
