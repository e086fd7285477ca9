package errkind_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/portico-dev/portico/internal/errkind"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		kind       errkind.Kind
		code, lead string
	}{
		{"bare", errkind.New(errkind.NotFound, "not found"), errkind.NotFound, "", ""},
		{"coded", errkind.New(errkind.Conflict, "in use", errkind.Code("in_use")), errkind.Conflict, "in_use", ""},
		{"led", errkind.New(errkind.Unavailable, "engine down", errkind.Code("engine_down"), errkind.Lead("runs need it")),
			errkind.Unavailable, "engine_down", "runs need it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrapped := fmt.Errorf("context: %w", tc.err)
			if !errors.Is(wrapped, tc.err) {
				t.Fatal("a wrapped sentinel is not errors.Is the sentinel")
			}
			var k interface {
				Kind() errkind.Kind
				Code() string
				Lead() string
			}
			if !errors.As(wrapped, &k) {
				t.Fatal("no Kind/Code/Lead methods found through the wrap")
			}
			if k.Kind() != tc.kind || k.Code() != tc.code || k.Lead() != tc.lead {
				t.Errorf("kind %v code %q lead %q, want %v %q %q", k.Kind(), k.Code(), k.Lead(), tc.kind, tc.code, tc.lead)
			}
		})
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	a, b := errkind.New(errkind.NotFound, "not found"), errkind.New(errkind.NotFound, "not found")
	if errors.Is(a, b) {
		t.Error("two sentinels with the same kind and text are errors.Is each other")
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[errkind.Kind]string{errkind.Internal: "internal", errkind.TooLarge: "too large", errkind.Unavailable: "unavailable", errkind.Kind(200): "kind(200)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}
