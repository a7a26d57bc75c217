package typecat

import (
	"bytes"
	"testing"
)

// FuzzUnmarshal: no input panics, and what decodes encodes back to the
// same bytes (the format is canonical).
func FuzzUnmarshal(f *testing.F) {
	f.Add(Marshal(nil))
	f.Add(Marshal((*Catalog)(nil).With(Entry{k1, "bank.Opened"}, Entry{k2, "bank.Deposited"})))
	f.Add([]byte("BPCT"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Unmarshal(b)
		if err != nil {
			return
		}
		if again := Marshal(c); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
