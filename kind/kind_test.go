package kind_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/batpak-go/batpak/kind"
)

func TestNew(t *testing.T) {
	tests := []struct {
		cat  uint8
		typ  uint16
		want error
	}{
		{1, 0, nil},
		{0xF, kind.MaxType, nil},
		{0, 1, kind.ErrReserved},
		{0xD, 1, kind.ErrReserved},
		{0x10, 1, kind.ErrOutOfRange},
		{1, 0x1000, kind.ErrOutOfRange},
	}
	for _, tt := range tests {
		k, err := kind.New(tt.cat, tt.typ)
		if !errors.Is(err, tt.want) {
			t.Errorf("New(%#x, %#x) error = %v, want %v", tt.cat, tt.typ, err, tt.want)
			continue
		}
		if err == nil && (k.Category() != tt.cat || k.Type() != tt.typ || k.IsSystem()) {
			t.Errorf("New(%#x, %#x) = %v", tt.cat, tt.typ, k)
		}
	}
}

func TestCustomPanicsOnReserved(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("Custom(0, 1) did not panic")
		}
	}()
	kind.Custom(0, 1)
}

func TestEffect(t *testing.T) {
	if k := kind.Effect(7); k.Category() != kind.CategoryEffect || k.Type() != 7 {
		t.Fatalf("Effect(7) = %v", k)
	}
}

func ExampleCustom() {
	deposited := kind.Custom(0x1, 0x002)
	fmt.Println(deposited, deposited.Category(), deposited.Type())
	// Output: 1:002 1 2
}
