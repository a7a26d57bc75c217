// Package ctxerr answers whether a read's context has ended, cheaply
// enough for every backend to ask before every event of a read.
package ctxerr

import "context"

// Of returns ctx's error once it has ended, and nil before. A context
// that can never end (context.Background) costs one nil check.
func Of(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}
