package backstage

import "testing"

func TestParseRef(t *testing.T) {
	tests := []struct {
		in, kind, ns string
		want         Ref
		err          bool
	}{
		{"team-a", "Group", "default", Ref{"Group", "default", "team-a"}, false},
		{"user:guest", "Group", "default", Ref{"user", "default", "guest"}, false},
		{"group:default/team-a", "Group", "development", Ref{"group", "default", "team-a"}, false},
		{"team-a", "Group", "development", Ref{"Group", "development", "team-a"}, false},
		{"other/team-a", "Group", "default", Ref{"Group", "other", "team-a"}, false},
		{"ns/weird:name", "Component", "default", Ref{"Component", "ns", "weird:name"}, false},
		{"team-a", "Group", "", Ref{"Group", "default", "team-a"}, false},
		{"cart", "", "default", Ref{}, true}, // dependsOn has no default kind
		{"component:cart", "", "default", Ref{"component", "default", "cart"}, false},
		{"", "Group", "default", Ref{}, true},
		{":x", "Group", "default", Ref{}, true},
		{"ns/", "Group", "default", Ref{}, true},
		{"group:/x", "Group", "default", Ref{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in, tt.kind, tt.ns)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseRef(%q, %q, %q) = %+v, %v; want %+v (error %v)", tt.in, tt.kind, tt.ns, got, err, tt.want, tt.err)
		}
	}
}

func TestRefIdentifier(t *testing.T) {
	tests := []struct {
		r    Ref
		id   string
		name string
	}{
		{Ref{"Group", "default", "team-a"}, "team-a", "group:default/team-a"},
		{Ref{"User", "Default", "Guest"}, "Guest", "user:default/guest"},
		{Ref{"User", "development", "guest"}, "development/guest", "user:development/guest"},
	}
	for _, tt := range tests {
		if got := tt.r.Identifier(); got != tt.id {
			t.Errorf("%+v.Identifier() = %q, want %q", tt.r, got, tt.id)
		}
		if got := tt.r.String(); got != tt.name {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.name)
		}
	}
}
