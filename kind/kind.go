// Package kind defines event kinds: a 16-bit number whose high 4 bits are a
// category and low 12 bits a type within it.
//
// Category 0x0 is reserved for the store's own system events (batch markers)
// and 0xD for effects; user code makes kinds with [Custom] or [New] in the
// other categories and cannot make a reserved one by accident.
package kind

import (
	"errors"
	"fmt"
)

// Kind identifies the type of an event.
type Kind uint16

const (
	// CategorySystem is the reserved category of the store's own events.
	CategorySystem uint8 = 0x0
	// CategoryEffect is the category of effects (see [Effect]).
	CategoryEffect uint8 = 0xD
	// MaxType is the largest type number within a category.
	MaxType uint16 = 0x0FFF
)

var (
	// ErrReserved is returned for a kind in a reserved category.
	ErrReserved = errors.New("kind: reserved category")
	// ErrOutOfRange is returned for a category above 0xF or a type above [MaxType].
	ErrOutOfRange = errors.New("kind: out of range")
)

// New returns the kind for category cat and type typ, or an error for a
// reserved category or values out of range.
func New(cat uint8, typ uint16) (Kind, error) {
	if cat > 0xF || typ > MaxType {
		return 0, fmt.Errorf("%w: category 0x%X, type 0x%X", ErrOutOfRange, cat, typ)
	}
	if cat == CategorySystem || cat == CategoryEffect {
		return 0, fmt.Errorf("%w: category 0x%X", ErrReserved, cat)
	}
	return Kind(uint16(cat)<<12 | typ), nil
}

// Custom is like [New] but panics on an invalid category or type. Use it for
// kinds declared as package-level values, like regexp.MustCompile.
func Custom(cat uint8, typ uint16) Kind {
	k, err := New(cat, typ)
	if err != nil {
		panic(err)
	}
	return k
}

// Effect returns the kind of effect type typ (category 0xD). It panics if
// typ exceeds [MaxType].
func Effect(typ uint16) Kind {
	if typ > MaxType {
		panic(fmt.Errorf("%w: type 0x%X", ErrOutOfRange, typ))
	}
	return Kind(uint16(CategoryEffect)<<12 | typ)
}

// Category returns the high 4 bits.
func (k Kind) Category() uint8 { return uint8(k >> 12) }

// Type returns the low 12 bits.
func (k Kind) Type() uint16 { return uint16(k) & MaxType }

// IsSystem reports whether k is in the store's reserved system category.
func (k Kind) IsSystem() bool { return k.Category() == CategorySystem }

// String formats k as category:type in hex, e.g. "1:002".
func (k Kind) String() string { return fmt.Sprintf("%X:%03X", k.Category(), k.Type()) }
