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

// servicesPage lists one page of services and adds two members to each raw
// service object, so that its entity tells who is on call and how it fares:
//
//   - "__oncalls": the current on-call entries of its escalation policy
//     (GET /oncalls?escalation_policy_ids[]=…&earliest=true), raw;
//   - "__stats" (config serviceStats, default on): {"openIncidents" (GET
//     /incidents, triggered or acknowledged, any age), "incidents",
//     "mttaSeconds", "mttrSeconds" (PagerDuty Analytics, POST
//     /analytics/metrics/incidents/services over the last 30 days)}.
//
// These cost three or four requests per page of up to 100 services and a
// split of each object (no decoding of the services themselves). The
// numbers are as of the resync: webhooks update incidents, not them.
func (p PagerDuty) servicesPage(ctx context.Context, c client, cursor string) (*pdk.ResyncPage, error) {
	offset, err := parseOffset(kindServices, cursor)
	if err != nil {
		return nil, err
	}
	pageNo := c.pageNumber(offset)
	q := url.Values{}
	if len(c.cfg.TeamIDs) > 0 {
		q["team_ids[]"] = c.cfg.TeamIDs
	}
	pg, err := c.list(ctx, kindServices, "/services", q, offset)
	if err != nil {
		return nil, fmt.Errorf("list services page %d: %w", pageNo, err)
	}
	next, err := c.cursorAfter(kindServices, offset, pg.more)
	if err != nil {
		return nil, err
	}
	services, err := splitServices(pg.items)
	if err != nil {
		return nil, fmt.Errorf("list services page %d: %w", pageNo, err)
	}
	if len(services) == 0 {
		return &pdk.ResyncPage{ItemsJSON: pg.items, Cursor: next}, nil
	}
	oncalls, err := p.oncallsByPolicy(ctx, c, services)
	if err != nil {
		return nil, fmt.Errorf("list services page %d: on-calls: %w", pageNo, err)
	}
	var stats map[string]*serviceStats
	if c.cfg.stats() {
		if stats, err = p.stats(ctx, c, services); err != nil {
			return nil, fmt.Errorf("list services page %d: %w", pageNo, err)
		}
	}
	items := make([]json.RawMessage, len(services))
	for i, s := range services {
		items[i] = s.enriched(oncalls[s.policy], stats[s.id])
	}
	return &pdk.ResyncPage{Items: items, Cursor: next}, nil
}

// rawService is one raw service object and the ids read from it.
type rawService struct {
	raw        json.RawMessage
	id, policy string
	empty      bool // {}
}

func splitServices(items json.RawMessage) ([]rawService, error) {
	elems, err := pdk.SplitArray(items)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	out := make([]rawService, len(elems))
	for i, e := range elems {
		fields, err := pdk.SplitObject(e)
		if err != nil {
			return nil, fmt.Errorf("%w: service %d: %v", ErrMalformed, i, err)
		}
		out[i] = rawService{raw: e, id: rawString(fields["id"]), empty: len(fields) == 0}
		if ep := fields["escalation_policy"]; len(ep) > 0 && ep[0] == '{' {
			out[i].policy = stringField(ep, "id")
		}
	}
	return out, nil
}

// enriched returns the service object with "__oncalls" and, when stats is
// not nil, "__stats" appended.
func (s rawService) enriched(oncalls []json.RawMessage, stats *serviceStats) json.RawMessage {
	out := make([]byte, 0, len(s.raw)+128+oncallBytes(oncalls))
	out = append(out, s.raw[:len(s.raw)-1]...) // without the closing brace
	if !s.empty {
		out = append(out, ',')
	}
	out = append(out, `"__oncalls":[`...)
	for i, o := range oncalls {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, o...)
	}
	out = append(out, ']')
	if stats != nil {
		out = append(out, `,"__stats":`...)
		out = stats.appendJSON(out)
	}
	return append(out, '}')
}

func oncallBytes(list []json.RawMessage) int {
	n := 0
	for _, o := range list {
		n += len(o) + 1
	}
	return n
}

// oncallsByPolicy lists the current on-call entries of the escalation
// policies of services, grouped by policy id.
func (p PagerDuty) oncallsByPolicy(ctx context.Context, c client, services []rawService) (map[string][]json.RawMessage, error) {
	var policies []string
	seen := map[string]bool{}
	for _, s := range services {
		if s.policy != "" && !seen[s.policy] {
			seen[s.policy] = true
			policies = append(policies, s.policy)
		}
	}
	out := map[string][]json.RawMessage{}
	if len(policies) == 0 {
		return out, nil
	}
	for offset := 0; ; {
		q := url.Values{"escalation_policy_ids[]": policies, "earliest": {"true"}}
		pg, err := c.list(ctx, kindOncalls, "/oncalls", q, offset)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", c.pageNumber(offset), err)
		}
		elems, err := pdk.SplitArray(pg.items)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w: %v", c.pageNumber(offset), ErrMalformed, err)
		}
		for _, o := range elems {
			fields, err := pdk.SplitObject(o)
			if err != nil {
				return nil, fmt.Errorf("page %d: %w: %v", c.pageNumber(offset), ErrMalformed, err)
			}
			if ep := fields["escalation_policy"]; len(ep) > 0 && ep[0] == '{' {
				id := stringField(ep, "id")
				out[id] = append(out[id], o)
			}
		}
		if !pg.more {
			return out, nil
		}
		next, ok := c.nextOffset(offset)
		if !ok {
			return nil, fmt.Errorf("more than %d on-call entries", classicOffsetLimit)
		}
		offset = next
	}
}

// serviceStats are a service's incident numbers.
type serviceStats struct {
	open      int
	incidents int      // created in the stats window
	mtta      *float64 // seconds; nil: no acknowledged incident
	mttr      *float64 // seconds; nil: no resolved incident
}

func (s *serviceStats) appendJSON(b []byte) []byte {
	b = append(b, `{"windowDays":`...)
	b = strconv.AppendInt(b, statsWindowDays, 10)
	b = append(b, `,"openIncidents":`...)
	b = strconv.AppendInt(b, int64(s.open), 10)
	b = append(b, `,"incidents":`...)
	b = strconv.AppendInt(b, int64(s.incidents), 10)
	for _, f := range []struct {
		name string
		v    *float64
	}{{"mttaSeconds", s.mtta}, {"mttrSeconds", s.mttr}} {
		b = append(b, `,"`+f.name+`":`...)
		if f.v == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, *f.v, 'f', -1, 64)
		}
	}
	return append(b, '}')
}

// stats returns the incident numbers of services: open incidents counted
// from GET /incidents, MTTA and MTTR from PagerDuty Analytics.
func (p PagerDuty) stats(ctx context.Context, c client, services []rawService) (map[string]*serviceStats, error) {
	ids := make([]string, 0, len(services))
	out := make(map[string]*serviceStats, len(services))
	for _, s := range services {
		if s.id != "" && out[s.id] == nil {
			ids = append(ids, s.id)
			out[s.id] = &serviceStats{}
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	if err := countOpen(ctx, c, ids, out); err != nil {
		return nil, fmt.Errorf("open incidents: %w", err)
	}
	end := p.clock().UTC().Truncate(time.Second)
	if err := analytics(ctx, c, ids, end.AddDate(0, 0, -statsWindowDays), end, out); err != nil {
		return nil, fmt.Errorf("incident analytics: %w", err)
	}
	return out, nil
}

// countOpen counts the triggered and acknowledged incidents of ids.
func countOpen(ctx context.Context, c client, ids []string, out map[string]*serviceStats) error {
	for offset := 0; ; {
		q := url.Values{"date_range": {"all"}, "statuses[]": {"triggered", "acknowledged"}, "service_ids[]": ids}
		pg, err := c.list(ctx, kindIncidents, "/incidents", q, offset)
		if err != nil {
			return fmt.Errorf("page %d: %w", c.pageNumber(offset), err)
		}
		elems, err := pdk.SplitArray(pg.items)
		if err != nil {
			return fmt.Errorf("page %d: %w: %v", c.pageNumber(offset), ErrMalformed, err)
		}
		for _, inc := range elems {
			fields, err := pdk.SplitObject(inc)
			if err != nil {
				return fmt.Errorf("page %d: %w: %v", c.pageNumber(offset), ErrMalformed, err)
			}
			if svc := fields["service"]; len(svc) > 0 && svc[0] == '{' {
				if s := out[stringField(svc, "id")]; s != nil {
					s.open++
				}
			}
		}
		if !pg.more {
			return nil
		}
		next, ok := c.nextOffset(offset)
		if !ok {
			return fmt.Errorf("more than %d open incidents", classicOffsetLimit)
		}
		offset = next
	}
}

// analytics reads the services' mean times from PagerDuty Analytics.
func analytics(ctx context.Context, c client, ids []string, start, end time.Time, out map[string]*serviceStats) error {
	body, err := json.Marshal(map[string]any{
		"filters": map[string]any{
			"created_at_start": start.Format(time.RFC3339), "created_at_end": end.Format(time.RFC3339), "service_ids": ids,
		},
		"time_zone": "Etc/UTC",
	})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, request{method: "POST", path: "/analytics/metrics/incidents/services", body: body})
	if err != nil {
		return err
	}
	var res struct {
		Data []struct {
			ServiceID string   `json:"service_id"`
			Count     int      `json:"total_incident_count"`
			MTTA      *float64 `json:"mean_seconds_to_first_ack"`
			MTTR      *float64 `json:"mean_seconds_to_resolve"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body, &res); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, d := range res.Data {
		if s := out[d.ServiceID]; s != nil {
			s.incidents, s.mtta, s.mttr = d.Count, d.MTTA, d.MTTR
		}
	}
	return nil
}
