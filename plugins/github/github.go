// Command github is Portico's GitHub Actions / CI integration: it syncs
// repositories, workflows, workflow runs and deployments from GitHub (or
// GitHub Enterprise Server), applies webhooks in real time and offers the
// write-back actions dispatch, rerun and cancel. It builds as a Wasm module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o github.wasm ./plugins/github
package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// GitHub implements pdk.Integration. The zero value uses real clocks.
type GitHub struct {
	// clock, when set, replaces time.Now and sleeping (tests).
	clock *clock
}

var _ pdk.Integration = GitHub{}

// Kinds of raw items, in the order a resync walks them (a workflow relates
// to its repository, a run to its workflow).
const (
	kindRepository = "repository"
	kindWorkflow   = "workflow"
	kindRun        = "workflowRun"
	kindDeployment = "deployment"
)

// Defaults of the configuration.
const (
	defaultBaseURL       = "https://api.github.com"
	defaultRunsSinceDays = 30
	defaultMaxRuns       = 1000
	defaultPageSize      = 100
	defaultMaxWait       = 10
)

// config is the installation's configuration (see configSchema).
type config struct {
	BaseURL      string   `json:"baseUrl"`
	Repositories []string `json:"repositories"`
	Org          string   `json:"org"`
	// RunsSinceDays limits runs and deployments to those created in the
	// last days (0: no limit).
	RunsSinceDays *int `json:"runsSinceDays"`
	// MaxRunsPerRepository caps the runs listed per repository.
	MaxRunsPerRepository int `json:"maxRunsPerRepository"`
	PageSize             int `json:"pageSize"`
	// MaxRateLimitWaitSeconds is how long a call may wait for a rate limit
	// to reset before it fails saying when to retry.
	MaxRateLimitWaitSeconds *int `json:"maxRateLimitWaitSeconds"`
}

var repoRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// decodeConfig decodes, checks and completes an installation's config.
func decodeConfig(raw []byte) (config, error) {
	cfg, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return cfg, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = defaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	var errs []error
	if len(cfg.Repositories) == 0 && cfg.Org == "" {
		errs = append(errs, errors.New("config: set repositories (owner/name) or org"))
	}
	for i, r := range cfg.Repositories {
		if !repoRe.MatchString(r) {
			errs = append(errs, fmt.Errorf("config: repositories[%d] %q: want owner/name", i, r))
		}
	}
	if cfg.Org != "" && strings.ContainsAny(cfg.Org, "/?#% ") {
		errs = append(errs, fmt.Errorf("config: org %q: want an organization login", cfg.Org))
	}
	if cfg.RunsSinceDays != nil && *cfg.RunsSinceDays < 0 {
		errs = append(errs, errors.New("config: runsSinceDays must not be negative"))
	}
	if cfg.PageSize < 0 || cfg.PageSize > 100 {
		errs = append(errs, fmt.Errorf("config: pageSize %d: want 1 to 100", cfg.PageSize))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = defaultPageSize
	}
	if cfg.MaxRunsPerRepository <= 0 {
		cfg.MaxRunsPerRepository = defaultMaxRuns
	}
	return cfg, nil
}

func (c config) runsSinceDays() int {
	if c.RunsSinceDays == nil {
		return defaultRunsSinceDays
	}
	return *c.RunsSinceDays
}

func (c config) maxRateLimitWait() int {
	if c.MaxRateLimitWaitSeconds == nil {
		return defaultMaxWait
	}
	return max(*c.MaxRateLimitWaitSeconds, 0)
}

// since returns the start of the runs window, or the zero time for none.
func (c config) since(now time.Time) time.Time {
	if d := c.runsSinceDays(); d > 0 {
		return now.UTC().AddDate(0, 0, -d).Truncate(24 * time.Hour)
	}
	return time.Time{}
}

// explicitRepositories are the configured repositories the org listing does
// not already cover.
func (c config) explicitRepositories() []string {
	var out []string
	for _, r := range c.Repositories {
		if c.Org == "" || !strings.EqualFold(owner(r), c.Org) {
			out = append(out, r)
		}
	}
	return out
}

// covers reports whether the installation syncs repository fullName:
// webhooks about other repositories are ignored (a resync would delete
// what they create).
func (c config) covers(fullName string) bool {
	if c.Org != "" && strings.EqualFold(owner(fullName), c.Org) {
		return true
	}
	for _, r := range c.Repositories {
		if strings.EqualFold(r, fullName) {
			return true
		}
	}
	return false
}

func owner(fullName string) string {
	o, _, _ := strings.Cut(fullName, "/")
	return o
}

func (g GitHub) clockOrReal() clock {
	if g.clock != nil {
		return *g.clock
	}
	return realClock()
}

// setup decodes the config and makes a client for one call.
func (g GitHub) setup(raw []byte) (config, *client, error) {
	cfg, err := decodeConfig(raw)
	if err != nil {
		return cfg, nil, err
	}
	c, err := newClient(cfg, g.clockOrReal())
	return cfg, c, err
}

// Info describes the plugin.
func (GitHub) Info(context.Context) (*pdk.Info, error) { return describe(), nil }
