package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDenied matches every [*Denial] and [*Denials].
var ErrDenied = errors.New("policy: denied")

// Denial is a gate's refusal: which gate, a stable machine-readable code, a
// message for people and key/value details.
type Denial struct {
	Gate    string
	Code    string
	Message string
	Details []KV
}

// KV is one detail of a denial.
type KV struct {
	Key   string
	Value any
}

// Deny builds a denial; kv alternates keys (strings) and values.
func Deny(code, message string, kv ...any) *Denial {
	d := &Denial{Code: code, Message: message}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Details = append(d.Details, KV{Key: fmt.Sprint(kv[i]), Value: kv[i+1]})
	}
	if len(kv)%2 == 1 {
		d.Details = append(d.Details, KV{Key: "!BADKEY", Value: kv[len(kv)-1]})
	}
	return d
}

// Detail returns the value of detail key, if present.
func (d *Denial) Detail(key string) (any, bool) {
	for _, kv := range d.Details {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Error formats the denial as `gate "name" denied: message (code) [k=v ...]`.
func (d *Denial) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gate %q denied: %s (%s)", d.Gate, d.Message, d.Code)
	if len(d.Details) > 0 {
		b.WriteString(" [")
		for i, kv := range d.Details {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s=%v", kv.Key, kv.Value)
		}
		b.WriteByte(']')
	}
	return b.String()
}

// Is reports whether target is [ErrDenied].
func (d *Denial) Is(target error) bool { return target == ErrDenied }

// Denials is the error of a failed evaluation: one denial in fail-fast
// mode, every denial in evaluate-all mode. errors.As finds each *Denial.
type Denials []*Denial

func (ds Denials) Error() string {
	if len(ds) == 1 {
		return "policy: " + ds[0].Error()
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Error()
	}
	return fmt.Sprintf("policy: %d gates denied: %s", len(ds), strings.Join(parts, "; "))
}

// Unwrap returns the denials, for errors.Is and errors.As.
func (ds Denials) Unwrap() []error {
	out := make([]error, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}

// Is reports whether target is [ErrDenied].
func (ds Denials) Is(target error) bool { return target == ErrDenied }
