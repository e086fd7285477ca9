package registry

import (
	"cmp"
	"sort"
	"strconv"
	"strings"
)

// CompareVersions orders two semantic versions (semver 2.0 precedence: build
// metadata ignored, a pre-release sorts before its release). It returns -1,
// 0 or +1. Malformed parts compare as text.
func CompareVersions(a, b string) int {
	a, _, _ = strings.Cut(a, "+")
	b, _, _ = strings.Cut(b, "+")
	aCore, aPre, _ := strings.Cut(a, "-")
	bCore, bPre, _ := strings.Cut(b, "-")
	if c := compareDotted(aCore, bCore, false); c != 0 {
		return c
	}
	switch {
	case aPre == bPre:
		return 0
	case aPre == "":
		return 1
	case bPre == "":
		return -1
	}
	return compareDotted(aPre, bPre, true)
}

// compareDotted compares dot-separated identifiers: numeric ones
// numerically and below alphanumeric ones; a shorter list sorts first when
// it is a prefix (pre-release rule).
func compareDotted(a, b string, pre bool) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		an, aErr := strconv.ParseUint(as[i], 10, 64)
		bn, bErr := strconv.ParseUint(bs[i], 10, 64)
		switch {
		case aErr == nil && bErr == nil:
			if an != bn {
				return cmp.Compare(an, bn)
			}
		case aErr == nil && pre:
			return -1
		case bErr == nil && pre:
			return 1
		default:
			if c := strings.Compare(as[i], bs[i]); c != 0 {
				return c
			}
		}
	}
	return cmp.Compare(len(as), len(bs))
}

// sortPlugins orders by name, then newest version first.
func sortPlugins(ps []*Plugin) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Name != ps[j].Name {
			return ps[i].Name < ps[j].Name
		}
		return CompareVersions(ps[i].Version, ps[j].Version) > 0
	})
}
