package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// Resync returns one page of raw PagerDuty objects of req.Kind. Items pass
// through undecoded (the host maps them); a failed or malformed page fails
// with an error naming the kind and page, so the resync reconciles nothing.
func (p PagerDuty) Resync(ctx context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	cfg, err := decodeConfig(req.Config)
	if err != nil {
		return nil, err
	}
	c := p.client(cfg)
	switch req.Kind {
	case kindServices:
		return p.servicesPage(ctx, c, req.Cursor)
	case kindSchedules:
		return plainPage(ctx, c, kindSchedules, "/schedules", url.Values{}, req.Cursor)
	case kindOncalls:
		return plainPage(ctx, c, kindOncalls, "/oncalls", url.Values{"earliest": {"true"}, "include[]": {"users"}}, req.Cursor)
	case kindIncidents:
		return p.incidentsPage(ctx, c, req.Cursor)
	}
	return nil, fmt.Errorf("unknown kind %q", req.Kind)
}

// parseOffset reads a plain offset cursor ("" is 0).
func parseOffset(kind, cursor string) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(cursor)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("list %s: bad cursor %q", kind, cursor)
	}
	return n, nil
}

// plainPage lists one page of a kind whose cursor is the offset.
func plainPage(ctx context.Context, c client, kind, path string, q url.Values, cursor string) (*pdk.ResyncPage, error) {
	offset, err := parseOffset(kind, cursor)
	if err != nil {
		return nil, err
	}
	pg, err := c.list(ctx, kind, path, q, offset)
	if err != nil {
		return nil, fmt.Errorf("list %s page %d: %w", kind, c.pageNumber(offset), err)
	}
	next, err := c.cursorAfter(kind, offset, pg.more)
	if err != nil {
		return nil, err
	}
	return &pdk.ResyncPage{ItemsJSON: pg.items, Cursor: next}, nil
}

// cursorAfter returns the offset cursor of the page after the one at
// offset ("" when there is none), or an error when PagerDuty's pagination
// cap is reached.
func (c client) cursorAfter(kind string, offset int, more bool) (string, error) {
	if !more {
		return "", nil
	}
	next, ok := c.nextOffset(offset)
	if !ok {
		return "", fmt.Errorf("list %s: more than %d %s, the most PagerDuty's classic pagination returns; narrow the sync with teamIds",
			kind, classicOffsetLimit, kind)
	}
	return strconv.Itoa(next), nil
}

// Incident listing phases: the incidents created in the configured window,
// then the open incidents created before it.
//
// The window ends windowAhead after the resync starts.
const (
	phaseWindow = "window"
	phaseOpen   = "open"
	windowAhead = time.Hour
)

// incidentCursor is the state of an incident listing between pages. The
// window [start, until) is fixed at the first page so that pages line up;
// since is where the window listing resumes (start, or later past
// PagerDuty's pagination cap).
type incidentCursor struct {
	phase               string
	start, since, until time.Time
	offset              int
}

func (ic incidentCursor) String() string {
	v := url.Values{"phase": {ic.phase}, "offset": {strconv.Itoa(ic.offset)},
		"start": {ic.start.Format(time.RFC3339)}, "until": {ic.until.Format(time.RFC3339)}}
	if ic.phase == phaseWindow {
		v.Set("since", ic.since.Format(time.RFC3339))
	}
	return v.Encode()
}

func parseIncidentCursor(s string) (incidentCursor, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return incidentCursor{}, fmt.Errorf("list incidents: bad cursor %q: %w", s, err)
	}
	ic := incidentCursor{phase: v.Get("phase")}
	if ic.offset, err = strconv.Atoi(v.Get("offset")); err != nil || ic.offset < 0 {
		return ic, fmt.Errorf("list incidents: bad cursor %q: offset", s)
	}
	times := map[string]*time.Time{"start": &ic.start, "until": &ic.until}
	switch ic.phase {
	case phaseOpen:
	case phaseWindow:
		times["since"] = &ic.since
	default:
		return ic, fmt.Errorf("list incidents: bad cursor %q: phase", s)
	}
	for name, dst := range times {
		if *dst, err = time.Parse(time.RFC3339, v.Get(name)); err != nil {
			return ic, fmt.Errorf("list incidents: bad cursor %q: %s: %w", s, name, err)
		}
	}
	return ic, nil
}

// incidentsPage lists incidents created in the last incidentsSinceDays
// (sorted by creation; past PagerDuty's 10,000-record pagination cap the
// window resumes at the last creation time listed), then the open ones
// created before that window (sorted by creation too, up to the window's
// start).
func (p PagerDuty) incidentsPage(ctx context.Context, c client, cursor string) (*pdk.ResyncPage, error) {
	var ic incidentCursor
	if cursor == "" {
		now := p.clock().UTC().Truncate(time.Second)
		start := now.AddDate(0, 0, -c.cfg.IncidentsSinceDays)
		// until lies ahead: incidents created while the resync runs are
		// listed by the window (the open phase stops at its start).
		ic = incidentCursor{phase: phaseWindow, start: start, since: start, until: now.Add(windowAhead)}
	} else {
		var err error
		if ic, err = parseIncidentCursor(cursor); err != nil {
			return nil, err
		}
	}
	q := url.Values{"sort_by": {"created_at:asc"}}
	if len(c.cfg.TeamIDs) > 0 {
		q["team_ids[]"] = c.cfg.TeamIDs
	}
	if ic.phase == phaseWindow {
		q.Set("since", ic.since.Format(time.RFC3339))
		q.Set("until", ic.until.Format(time.RFC3339))
	} else {
		q.Set("date_range", "all")
		q["statuses[]"] = []string{"triggered", "acknowledged"}
	}
	pageNo := c.pageNumber(ic.offset)
	pg, err := c.list(ctx, kindIncidents, "/incidents", q, ic.offset)
	if err != nil {
		return nil, fmt.Errorf("list incidents (%s) page %d: %w", ic.phase, pageNo, err)
	}
	next, err := p.nextIncidentCursor(c, ic, pg)
	if err != nil {
		return nil, err
	}
	if ic.phase == phaseOpen {
		items, reached, err := beforeWindow(pg.items, ic.start)
		if err != nil {
			return nil, fmt.Errorf("list incidents (%s) page %d: %w", ic.phase, pageNo, err)
		}
		if reached {
			next = "" // sorted by creation: the rest is the window's
		}
		return &pdk.ResyncPage{Items: items, Cursor: next}, nil
	}
	return &pdk.ResyncPage{ItemsJSON: pg.items, Cursor: next}, nil
}

// beforeWindow returns the incidents created before start (the window
// phase listed the others) and whether the page reached start.
func beforeWindow(items []byte, start time.Time) ([]json.RawMessage, bool, error) {
	elems, err := pdk.SplitArray(items)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for i, e := range elems {
		created, err := time.Parse(time.RFC3339, stringField(e, "created_at"))
		if err != nil {
			return nil, false, fmt.Errorf("%w: incident %d: created_at: %v", ErrMalformed, i, err)
		}
		if !created.Before(start) {
			return elems[:i], true, nil
		}
	}
	return elems, false, nil
}

func (p PagerDuty) nextIncidentCursor(c client, ic incidentCursor, pg listPage) (string, error) {
	switch {
	case !pg.more && ic.phase == phaseWindow:
		return incidentCursor{phase: phaseOpen, start: ic.start, until: ic.until}.String(), nil
	case !pg.more:
		return "", nil
	}
	if next, ok := c.nextOffset(ic.offset); ok {
		ic.offset = next
		return ic.String(), nil
	}
	if ic.phase == phaseOpen {
		return "", fmt.Errorf("list incidents (open): more than %d open incidents, the most PagerDuty's classic pagination returns; narrow the sync with teamIds",
			classicOffsetLimit)
	}
	// The cap: go on from the newest creation time listed so far.
	items, err := pdk.SplitArray(pg.items)
	if err != nil || len(items) == 0 {
		return "", fmt.Errorf("list incidents (window) page %d: %w: items", c.pageNumber(ic.offset), ErrMalformed)
	}
	last, err := time.Parse(time.RFC3339, stringField(items[len(items)-1], "created_at"))
	if err != nil {
		return "", fmt.Errorf("list incidents (window) page %d: %w: created_at: %v", c.pageNumber(ic.offset), ErrMalformed, err)
	}
	if !last.After(ic.since) {
		return "", fmt.Errorf("list incidents (window): more than %d incidents created at %s; cannot page past PagerDuty's pagination cap",
			classicOffsetLimit, ic.since.Format(time.RFC3339))
	}
	ic.since, ic.offset = last, 0
	return ic.String(), nil
}
