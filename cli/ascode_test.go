package cli

import "testing"

// TestSetName: --set wins; otherwise the paths' base names without
// extension, sorted, deduplicated, joined with "+".
func TestSetName(t *testing.T) {
	for _, c := range []struct {
		set   string
		files []string
		want  string
	}{
		{"", []string{"defs/"}, "defs"},
		{"", []string{"platform/services.yaml"}, "services"},
		{"", []string{"b.yaml", "a", "b.yml"}, "a+b"},
		{"prod", []string{"defs"}, "prod"},
	} {
		s := sourceFlags{set: c.set, files: c.files}
		if got := s.setName(); got != c.want {
			t.Errorf("set %q files %v: %q, want %q", c.set, c.files, got, c.want)
		}
	}
}
