package sqlproj

import "testing"

func TestDollarPlaceholders(t *testing.T) {
	p := &Positions{table: "t", dollar: true}
	if got, want := p.q("UPDATE t SET next = ? WHERE name = ? AND next < ?"), "UPDATE t SET next = $1 WHERE name = $2 AND next < $3"; got != want {
		t.Fatalf("q = %q, want %q", got, want)
	}
	p.dollar = false
	if got := p.q("SELECT next FROM t WHERE name = ?"); got != "SELECT next FROM t WHERE name = ?" {
		t.Fatalf("q without dollars = %q", got)
	}
}
