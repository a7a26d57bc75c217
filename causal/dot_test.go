package causal_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
)

// dotToken is a token of the DOT language: an identifier, a numeral, a
// quoted string (unquoted and unescaped) or punctuation.
type dotToken struct {
	kind byte // 'i' identifier, 's' string, 'p' punctuation
	text string
}

func dotLex(src string) ([]dotToken, error) {
	var toks []dotToken
	rs := []rune(src)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '-' && i+1 < len(rs) && rs[i+1] == '>':
			toks = append(toks, dotToken{'p', "->"})
			i += 2
		case strings.ContainsRune("{}[];,=", r):
			toks = append(toks, dotToken{'p', string(r)})
			i++
		case r == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(rs) {
					return nil, fmt.Errorf("unterminated string")
				}
				if rs[i] == '"' {
					i++
					break
				}
				if rs[i] == '\\' && i+1 < len(rs) {
					switch rs[i+1] {
					case '"':
						b.WriteRune('"')
					case '\\':
						b.WriteRune('\\')
					case 'n':
						b.WriteRune('\n')
					default:
						return nil, fmt.Errorf("unexpected escape \\%c", rs[i+1])
					}
					i += 2
					continue
				}
				if rs[i] == '\n' {
					return nil, fmt.Errorf("raw newline in string")
				}
				b.WriteRune(rs[i])
				i++
			}
			toks = append(toks, dotToken{'s', b.String()})
		case r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.':
			j := i
			for j < len(rs) && (rs[j] == '_' || rs[j] == '.' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
				j++
			}
			toks = append(toks, dotToken{'i', string(rs[i:j])})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d", r, i)
		}
	}
	return toks, nil
}

// dotGraph is what checkDOT parsed: node labels and edges by node id.
type dotGraph struct {
	labels map[string]string
	edges  [][2]string
}

// parseDOT parses the subset of DOT that WriteDOT uses, strictly:
//
//	graph : "digraph" ID "{" stmt* "}"
//	stmt  : ("node" | "edge" | "graph") attrs ";" | ID attrs? ";" | ID ("->" ID)+ attrs? ";"
//	attrs : "[" (ID "=" ID ","?)* "]"
func parseDOT(src string) (*dotGraph, error) {
	toks, err := dotLex(src)
	if err != nil {
		return nil, err
	}
	g := &dotGraph{labels: map[string]string{}}
	pos := 0
	peek := func() dotToken {
		if pos < len(toks) {
			return toks[pos]
		}
		return dotToken{}
	}
	next := func() dotToken { t := peek(); pos++; return t }
	expect := func(p string) error {
		if t := next(); t.kind != 'p' || t.text != p {
			return fmt.Errorf("token %d: got %q, want %q", pos-1, t.text, p)
		}
		return nil
	}
	id := func() (string, error) {
		t := next()
		if t.kind != 'i' && t.kind != 's' {
			return "", fmt.Errorf("token %d: got %q, want an id", pos-1, t.text)
		}
		return t.text, nil
	}
	attrs := func() (map[string]string, error) {
		a := map[string]string{}
		if peek().kind != 'p' || peek().text != "[" {
			return a, nil
		}
		pos++
		for !(peek().kind == 'p' && peek().text == "]") {
			k, err := id()
			if err != nil {
				return nil, err
			}
			if err := expect("="); err != nil {
				return nil, err
			}
			v, err := id()
			if err != nil {
				return nil, err
			}
			a[k] = v
			if peek().kind == 'p' && peek().text == "," {
				pos++
			}
		}
		pos++
		return a, nil
	}
	if t := next(); t.kind != 'i' || t.text != "digraph" {
		return nil, fmt.Errorf("does not start with digraph")
	}
	if peek().kind != 'p' {
		if _, err := id(); err != nil {
			return nil, err
		}
	}
	if err := expect("{"); err != nil {
		return nil, err
	}
	for !(peek().kind == 'p' && peek().text == "}") {
		if pos >= len(toks) {
			return nil, fmt.Errorf("unterminated graph")
		}
		first := peek()
		if first.kind == 'i' && (first.text == "node" || first.text == "edge" || first.text == "graph") {
			pos++
			if _, err := attrs(); err != nil {
				return nil, err
			}
		} else {
			from, err := id()
			if err != nil {
				return nil, err
			}
			if peek().kind == 'p' && peek().text == "->" {
				for peek().kind == 'p' && peek().text == "->" {
					pos++
					to, err := id()
					if err != nil {
						return nil, err
					}
					g.edges = append(g.edges, [2]string{from, to})
					from = to
				}
				if _, err := attrs(); err != nil {
					return nil, err
				}
			} else {
				a, err := attrs()
				if err != nil {
					return nil, err
				}
				if _, dup := g.labels[from]; dup {
					return nil, fmt.Errorf("node %q declared twice", from)
				}
				g.labels[from] = a["label"]
			}
		}
		if err := expect(";"); err != nil {
			return nil, err
		}
	}
	pos++
	if pos != len(toks) {
		return nil, fmt.Errorf("tokens after the graph")
	}
	for _, e := range g.edges {
		for _, n := range e {
			if _, ok := g.labels[n]; !ok {
				return nil, fmt.Errorf("edge %v to undeclared node %q", e, n)
			}
		}
	}
	return g, nil
}

func checkDOT(t *testing.T, src string) *dotGraph {
	t.Helper()
	g, err := parseDOT(src)
	if err != nil {
		t.Fatalf("invalid DOT: %v\n%s", err, src)
	}
	return g
}

func TestWriteDOT(t *testing.T) {
	s := openStore(t)
	ids, err := placeOrder(s, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Entities may hold quotes, backslashes and any non-control character.
	odd := `say "hi" \n {x} -> [y];`
	oddID, err := appendOne(s, odd, LedgerPosted, batpak.WithCausation(ids[5]))
	if err != nil {
		t.Fatal(err)
	}
	g, err := causal.Trace(context.Background(), s, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	dg := checkDOT(t, b.String())
	if len(dg.labels) != 7 || len(dg.edges) != 6 {
		t.Errorf("%d nodes, %d edges:\n%s", len(dg.labels), len(dg.edges), b.String())
	}
	wantLabel := fmt.Sprintf("#7 %s v1\n2:001 %s", odd, causal.ShortID(oddID))
	if got := dg.labels["n7"]; got != wantLabel {
		t.Errorf("label = %q, want %q", got, wantLabel)
	}
	for _, e := range []string{`"n1" -> "n2";`, `"n3" -> "n6";`, `"n6" -> "n7";`, `"n2" [label=`} {
		if !strings.Contains(b.String(), e) {
			t.Errorf("DOT lacks %s:\n%s", e, b.String())
		}
	}
	if !strings.Contains(b.String(), `"n2" [label="#2 payment:1 v1\n1:002 `+causal.ShortID(ids[1])+`", style=bold, penwidth=2];`) {
		t.Errorf("traced node not bold:\n%s", b.String())
	}
}

func TestWriteDOTDanglingAndExternal(t *testing.T) {
	f := newFake()
	f.add(1, "a", kindA, fid(50), fid(1)) // dangling
	f.add(2, "b", kindA, fid(50), fid(1)) // same missing cause: one box
	f.add(3, "c", kindA, fid(9), fid(1))  // external
	f.add(9, "x", kindA, uuid.Nil, fid(9))
	g, err := causal.Trace(context.Background(), f, fid(1))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := g.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	dg := checkDOT(t, b.String())
	if len(dg.labels) != 5 || len(dg.edges) != 3 {
		t.Errorf("%d nodes, %d edges:\n%s", len(dg.labels), len(dg.edges), b.String())
	}
	if dg.labels["x1"] != "00000050\nmissing" || dg.labels["x2"] != "00000009\nin another group" {
		t.Errorf("labels %q:\n%s", dg.labels, b.String())
	}
}
