package initiatives

import (
	"testing"
	"time"
)

func TestCarryForward(t *testing.T) {
	d := func(date string, gold int) Distribution {
		return Distribution{Date: date, Levels: map[string]int{"Gold": gold}}
	}
	stored := []Distribution{d("2026-12-01", 1), d("2026-12-03", 3), d("2026-12-06", 6)}
	now := time.Date(2026, 12, 7, 23, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		days int
		want string // date:gold …
	}{
		{1, "12-07:6"},
		{3, "12-05:3 12-06:6 12-07:6"},
		{8, "12-01:1 12-02:1 12-03:3 12-04:3 12-05:3 12-06:6 12-07:6"}, // none before the first
	} {
		got := ""
		for i, x := range carryForward(stored, now, c.days) {
			if i > 0 {
				got += " "
			}
			got += x.Date[5:] + ":" + string(rune('0'+x.Levels["Gold"]))
		}
		if got != c.want {
			t.Errorf("%d days: %s, want %s", c.days, got, c.want)
		}
	}
	if got := carryForward(nil, now, 5); got == nil || len(got) != 0 {
		t.Errorf("nothing recorded: %v, want an empty list", got)
	}
}
