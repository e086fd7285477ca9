package backstage

import (
	"fmt"
	"strings"
)

// DefaultNamespace is the namespace of an entity or reference that names
// none.
const DefaultNamespace = "default"

// Ref names a Backstage entity: [kind:][namespace/]name.
type Ref struct {
	Kind, Namespace, Name string
}

// ParseRef parses an entity reference the way Backstage's catalog model
// does (parseEntityRef): a ":" before any "/" ends the kind, a "/" ends
// the namespace, the rest is the name; a missing kind or namespace takes
// the default given (the default kind of the field, the namespace of the
// referring entity). Without a kind in the reference nor a default, the
// reference is an error.
func ParseRef(s, defaultKind, defaultNamespace string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("empty entity reference")
	}
	colon := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	if slash != -1 && slash < colon {
		colon = -1 // a ":" after the "/" belongs to the name
	}
	var r Ref
	hasKind, hasNS := colon != -1, slash != -1
	if hasKind {
		r.Kind = s[:colon]
	}
	if hasNS {
		r.Namespace = s[colon+1 : slash]
	}
	r.Name = s[max(colon+1, slash+1):]
	if (hasKind && r.Kind == "") || (hasNS && r.Namespace == "") || r.Name == "" {
		return Ref{}, fmt.Errorf("entity reference %q is not of the form [<kind>:][<namespace>/]<name>", s)
	}
	if !hasKind {
		r.Kind = defaultKind
	}
	if !hasNS {
		r.Namespace = defaultNamespace
	}
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	if r.Kind == "" {
		return Ref{}, fmt.Errorf("entity reference %q names no kind (e.g. component:%s)", s, s)
	}
	return r, nil
}

// String is the canonical form, kind:namespace/name, lower-cased as
// Backstage compares references.
func (r Ref) String() string {
	return strings.ToLower(r.Kind + ":" + r.Namespace + "/" + r.Name)
}

// Identifier is the Portico identifier of the entity r names: its name in
// the default namespace, namespace/name elsewhere.
func (r Ref) Identifier() string {
	if strings.EqualFold(r.Namespace, DefaultNamespace) {
		return r.Name
	}
	return r.Namespace + "/" + r.Name
}
