package catalog

// Rule is one node of a search query: either a combinator ("and"/"or" over
// Rules) or a leaf comparing Property with Value through Operator. The
// relatedTo leaf names an entity (Blueprint, Identifier) instead and says
// where it sits relative to the results. The same language is used by
// search, scorecards, action conditions, automations and permissions.
type Rule struct {
	Combinator string `json:"combinator,omitempty"`
	Rules      []Rule `json:"rules,omitempty"`
	Property   string `json:"property,omitempty"`
	Operator   string `json:"operator,omitempty"`
	Value      any    `json:"value,omitempty"`
	// relatedTo only:
	Blueprint  string `json:"blueprint,omitempty"`
	Identifier string `json:"identifier,omitempty"`
	Direction  string `json:"direction,omitempty"` // "upstream" | "downstream"
	Relation   string `json:"relation,omitempty"`
	Depth      int    `json:"depth,omitempty"` // 1..3, 0 means 1
}

// Related is the set of entities each relatedTo rule admits, as resolved by
// the store through its graph index before matching. It is keyed by the
// *Rule pointer inside the tree (see Rule.Walk).
type Related map[*Rule]map[Ref]struct{}

// Query size limits: generous for any query a person or a UI writes, small
// enough that one request cannot make a search evaluate an unbounded
// expression against every candidate entity.
const (
	// MaxQueryNesting is how deep combinators may nest: the root
	// combinator is level 1.
	MaxQueryNesting = 10
	// MaxQueryRules is how many nodes (combinators and leaves) a query
	// holds at most.
	MaxQueryRules = 256
	// MaxQueryListValues is how many values the value of in, notIn and
	// containsAny lists at most.
	MaxQueryListValues = 1000
)

// queryOperators lists every leaf operator with the kind of value it takes.
var queryOperators = map[string]queryValueKind{
	"=":            queryScalar,
	"!=":           queryScalar,
	"<":            queryScalar,
	"<=":           queryScalar,
	">":            queryScalar,
	">=":           queryScalar,
	"in":           queryList,
	"notIn":        queryList,
	"contains":     queryScalar,
	"containsAny":  queryList,
	"beginsWith":   queryScalar,
	"endsWith":     queryScalar,
	"isEmpty":      queryNoValue,
	"isNotEmpty":   queryNoValue,
	"between":      queryRange,
	"relatedTo":    queryNoValue,
	"isExpired":    queryNoValue,
	"isNotExpired": queryNoValue,
}

type queryValueKind int

const (
	queryNoValue queryValueKind = iota
	queryScalar
	queryList
	queryRange
)

// IsCombinator reports whether r is an "and"/"or" node rather than a leaf.
// A node carrying rules counts as a combinator even without one (Validate
// rejects it).
func (r *Rule) IsCombinator() bool {
	return r.Combinator != "" || r.Rules != nil
}

// Walk calls fn for r and every node below it, parents first. The pointers
// point into the tree, so they can key a Related map.
func (r *Rule) Walk(fn func(*Rule)) {
	if r == nil {
		return
	}
	fn(r)
	for i := range r.Rules {
		r.Rules[i].Walk(fn)
	}
}
