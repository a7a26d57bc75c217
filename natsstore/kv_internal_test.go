package natsstore

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestEscapeKey: every name, whatever its bytes, becomes a valid key of
// one token, and two names never share a key.
func TestEscapeKey(t *testing.T) {
	validKey := regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`) // the client's key rule, without dots
	rng := rand.New(rand.NewPCG(1, 2))
	seen := make(map[string]string)
	check := func(name string) {
		k, err := escapeKey(name)
		if err != nil {
			t.Fatalf("escapeKey(%q): %v", name, err)
		}
		if !validKey.MatchString(k) {
			t.Fatalf("escapeKey(%q) = %q: not a valid key token", name, k)
		}
		if prev, dup := seen[k]; dup && prev != name {
			t.Fatalf("%q and %q share the key %q", prev, name, k)
		}
		seen[k] = name
	}
	for _, name := range []string{"account:42", "a.b", "=2E", "a=2Eb", "%2E", "*", ">", "a b", "ü", "a/b", "A", "a"} {
		check(name)
	}
	alphabet := []byte("a.=%2E/-_:*> \x00\xff")
	for range 20000 {
		b := make([]byte, 1+rng.IntN(6))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
	if k, err := escapeKey(""); err == nil {
		t.Fatalf("escapeKey(\"\") = %q", k)
	}
	if k, _ := escapeKey("account:42"); k != "account=3A42" {
		t.Fatalf("escapeKey(account:42) = %q", k)
	}
}
