// Command pagerduty is Portico's PagerDuty integration: it syncs services,
// schedules, on-calls and incidents from PagerDuty's REST API v2, applies
// V3 webhooks in real time and acknowledges, resolves and triggers
// incidents. It is built as a Wasm module (main_wasm.go) or a go-plugin
// binary (main_goplugin.go):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o pagerduty.wasm ./plugins/pagerduty
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// PagerDuty implements pdk.Integration. The zero value is ready to use.
type PagerDuty struct {
	// sleep waits out a 429's Retry-After; nil means time.Sleep (tests
	// replace it).
	sleep func(time.Duration)
	// now is the clock; nil means time.Now.
	now func() time.Time
}

var _ pdk.Integration = PagerDuty{}

// config is an installation's configuration (see configSchema).
type config struct {
	BaseURL             string   `json:"baseUrl"`
	FromEmail           string   `json:"fromEmail"`
	TeamIDs             []string `json:"teamIds"`
	IncidentsSinceDays  int      `json:"incidentsSinceDays"`
	ServiceStats        *bool    `json:"serviceStats"`
	PageSize            int      `json:"pageSize"`
	MaxRetryWaitSeconds *int     `json:"maxRetryWaitSeconds"`
}

// Defaults and PagerDuty's limits.
const (
	defaultBaseURL     = "https://api.pagerduty.com"
	defaultSinceDays   = 30
	maxSinceDays       = 180 // PagerDuty lists at most 6 months of incidents
	maxPageSize        = 100
	defaultRetryWait   = 10 * time.Second
	statsWindowDays    = 30
	classicOffsetLimit = 10000 // offset+limit may not exceed it
)

// ErrConfig reports an invalid installation config.
var ErrConfig = errors.New("config")

func decodeConfig(raw json.RawMessage) (config, error) {
	cfg, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return cfg, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = defaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if !strings.HasPrefix(cfg.BaseURL, "https://") && !strings.HasPrefix(cfg.BaseURL, "http://") {
		return cfg, fmt.Errorf("%w: baseUrl %q is not an http(s) URL", ErrConfig, cfg.BaseURL)
	}
	switch {
	case cfg.IncidentsSinceDays == 0:
		cfg.IncidentsSinceDays = defaultSinceDays
	case cfg.IncidentsSinceDays < 0 || cfg.IncidentsSinceDays > maxSinceDays:
		return cfg, fmt.Errorf("%w: incidentsSinceDays %d is outside 1–%d", ErrConfig, cfg.IncidentsSinceDays, maxSinceDays)
	}
	switch {
	case cfg.PageSize == 0:
		cfg.PageSize = maxPageSize
	case cfg.PageSize < 0 || cfg.PageSize > maxPageSize:
		return cfg, fmt.Errorf("%w: pageSize %d is outside 1–%d", ErrConfig, cfg.PageSize, maxPageSize)
	}
	if w := cfg.MaxRetryWaitSeconds; w != nil && *w < 0 {
		return cfg, fmt.Errorf("%w: maxRetryWaitSeconds %d is negative", ErrConfig, *w)
	}
	return cfg, nil
}

func (c config) stats() bool { return c.ServiceStats == nil || *c.ServiceStats }

func (c config) retryWait() time.Duration {
	if c.MaxRetryWaitSeconds == nil {
		return defaultRetryWait
	}
	return time.Duration(*c.MaxRetryWaitSeconds) * time.Second
}

func (p PagerDuty) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}
