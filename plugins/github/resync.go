package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portico-dev/portico/pdk"
)

// maxDeploymentPage bounds a page of deployments: each costs one more
// request for its latest status.
const maxDeploymentPage = 30

// walk is the resync cursor: the repositories still to visit (the current
// one first), the next page of the organization's repository list, and the
// next page within the current repository. Every kind walks the same
// repositories; the repository kind walks only the lists themselves.
type walk struct {
	Queue []string `json:"q,omitempty"`
	Org   string   `json:"o,omitempty"` // URL of the org's next repository page; "" when none is left
	Next  string   `json:"n,omitempty"` // next page of the current listing; "" for its first
	Page  int      `json:"p,omitempty"` // number of that page, for error messages
}

func (w *walk) done() bool { return len(w.Queue) == 0 && w.Org == "" }

// cursor encodes the walk; "" when it is done.
func (w *walk) cursor() string {
	if w.done() {
		return ""
	}
	b, _ := json.Marshal(w)
	return string(b)
}

// advance moves the walk to next, the URL of the current listing's next
// page, or past the current repository when next is "".
func (w *walk) advance(next string) {
	if next != "" {
		w.Next, w.Page = next, w.page()+1
		return
	}
	w.Queue, w.Next, w.Page = w.Queue[1:], "", 0
}

func (w *walk) page() int { return max(w.Page, 1) }

// Resync returns one page of raw items of req.Kind. The cursor walks the
// configured repositories, then the organization's, page by page.
func (g GitHub) Resync(ctx context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	cfg, c, err := g.setup(req.Config)
	if err != nil {
		return nil, err
	}
	w := walk{Queue: cfg.explicitRepositories()}
	if cfg.Org != "" {
		w.Org = c.url(fmt.Sprintf("/orgs/%s/repos?type=all&per_page=%d", url.PathEscape(cfg.Org), cfg.PageSize))
	}
	if req.Cursor != "" {
		w = walk{}
		if err := json.Unmarshal([]byte(req.Cursor), &w); err != nil {
			return nil, fmt.Errorf("resync %s: bad cursor: %w", req.Kind, err)
		}
	}
	switch req.Kind {
	case kindRepository:
		return c.repositories(ctx, w)
	case kindWorkflow, kindRun, kindDeployment:
		return c.perRepository(ctx, cfg, req.Kind, w)
	}
	return nil, fmt.Errorf("unknown kind %q", req.Kind)
}

// repositories returns the next configured repository, or the next page of
// the organization's repositories.
func (c *client) repositories(ctx context.Context, w walk) (*pdk.ResyncPage, error) {
	if len(w.Queue) > 0 {
		repo := w.Queue[0]
		resp, err := c.get(ctx, c.url(repoPath(repo)), false)
		if err != nil {
			return nil, fmt.Errorf("get repository %s: %w", repo, err)
		}
		if _, err := pdk.SplitObject(resp.Body); err != nil {
			return nil, fmt.Errorf("get repository %s: malformed JSON: %w", repo, err)
		}
		w.Queue = w.Queue[1:]
		return &pdk.ResyncPage{Items: []json.RawMessage{resp.Body}, Cursor: w.cursor()}, nil
	}
	if w.Org == "" {
		return &pdk.ResyncPage{Items: []json.RawMessage{}}, nil
	}
	page := w.page()
	items, next, err := c.orgPage(ctx, w.Org, page)
	if err != nil {
		return nil, err
	}
	w.Org, w.Page = next, page+1
	return &pdk.ResyncPage{Items: items, Cursor: w.cursor()}, nil
}

// orgPage lists one page of an organization's repositories.
func (c *client) orgPage(ctx context.Context, u string, page int) ([]json.RawMessage, string, error) {
	resp, err := c.get(ctx, u, false)
	if err != nil {
		return nil, "", fmt.Errorf("list organization repositories, page %d: %w", page, err)
	}
	items, err := pdk.SplitArray(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("list organization repositories, page %d: malformed JSON: %w", page, err)
	}
	next, err := c.nextLink(resp)
	if err != nil {
		return nil, "", fmt.Errorf("list organization repositories, page %d: %w", page, err)
	}
	return items, next, nil
}

// perRepository returns the next page of workflows, runs or deployments of
// the walk's current repository, first loading repository names from the
// organization's list when the queue is empty.
func (c *client) perRepository(ctx context.Context, cfg config, kind string, w walk) (*pdk.ResyncPage, error) {
	for len(w.Queue) == 0 {
		if w.Org == "" {
			return &pdk.ResyncPage{Items: []json.RawMessage{}}, nil
		}
		page := w.page()
		repos, next, err := c.orgPage(ctx, w.Org, page)
		if err != nil {
			return nil, err
		}
		names, err := fullNames(repos)
		if err != nil {
			return nil, fmt.Errorf("list organization repositories, page %d: %w", page, err)
		}
		w.Queue, w.Org, w.Page = names, next, 0
	}
	repo := w.Queue[0]
	page := w.page()
	u := w.Next
	if u == "" {
		u = c.firstPage(cfg, kind, repo)
	}
	var (
		items json.RawMessage
		next  string
		err   error
	)
	switch kind {
	case kindWorkflow:
		items, next, err = c.listPage(ctx, u, "workflows")
	case kindRun:
		items, next, err = c.listPage(ctx, u, "workflow_runs")
		if page*cfg.PageSize >= cfg.MaxRunsPerRepository {
			next = ""
		}
	case kindDeployment:
		items, next, err = c.deploymentPage(ctx, u, repo, cfg.since(c.clock.now()))
	}
	if err != nil {
		return nil, fmt.Errorf("list %ss of %s, page %d: %w", kind, repo, page, err)
	}
	w.advance(next)
	return &pdk.ResyncPage{ItemsJSON: items, Cursor: w.cursor()}, nil
}

// firstPage is the URL of the first page of kind in repo.
func (c *client) firstPage(cfg config, kind, repo string) string {
	q := url.Values{"per_page": {strconv.Itoa(cfg.PageSize)}}
	var path string
	switch kind {
	case kindWorkflow:
		path = "/actions/workflows"
	case kindRun:
		path = "/actions/runs"
		q.Set("exclude_pull_requests", "true")
		if since := cfg.since(c.clock.now()); !since.IsZero() {
			q.Set("created", ">="+since.Format("2006-01-02"))
		}
	case kindDeployment:
		path = "/deployments"
		q.Set("per_page", strconv.Itoa(min(cfg.PageSize, maxDeploymentPage)))
	}
	return c.url(repoPath(repo) + path + "?" + q.Encode())
}

// listPage fetches a page of a list wrapped as {"total_count", key: [...]}
// and returns the array raw: the host decodes and maps the items.
func (c *client) listPage(ctx context.Context, u, key string) (json.RawMessage, string, error) {
	resp, err := c.get(ctx, u, true)
	if err != nil {
		return nil, "", err
	}
	fields, err := resp.Fields()
	if err != nil {
		return nil, "", fmt.Errorf("malformed JSON: %w", err)
	}
	items := fields[key]
	if len(items) == 0 || items[0] != '[' {
		return nil, "", fmt.Errorf("malformed response: no %q array", key)
	}
	next, err := c.nextLink(resp)
	return items, next, err
}

// deploymentPage fetches a page of deployments and pairs each with its
// latest status, as the deployment_status webhook does: {"deployment",
// "deployment_status"}. Deployments created before since are left out, and
// end the listing (GitHub lists the newest first).
func (c *client) deploymentPage(ctx context.Context, u, repo string, since time.Time) (json.RawMessage, string, error) {
	resp, err := c.get(ctx, u, false)
	if err != nil {
		return nil, "", err
	}
	deployments, err := pdk.SplitArray(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("malformed JSON: %w", err)
	}
	next, err := c.nextLink(resp)
	if err != nil {
		return nil, "", err
	}
	var out bytes.Buffer
	out.WriteByte('[')
	for _, d := range deployments {
		var head struct {
			ID        int64  `json:"id"`
			CreatedAt string `json:"created_at"`
		}
		if err := decodeMembers(d, &head, "id", "created_at"); err != nil || head.ID == 0 {
			return nil, "", fmt.Errorf("malformed deployment: %v", err)
		}
		if t, err := time.Parse(time.RFC3339, head.CreatedAt); err == nil && t.Before(since) {
			next = ""
			continue
		}
		status, err := c.latestStatus(ctx, repo, head.ID)
		if err != nil {
			return nil, "", err
		}
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		out.WriteString(`{"deployment":`)
		out.Write(d)
		out.WriteString(`,"deployment_status":`)
		out.Write(status)
		out.WriteByte('}')
	}
	out.WriteByte(']')
	return out.Bytes(), next, nil
}

// latestStatus returns the newest status of a deployment, or null.
func (c *client) latestStatus(ctx context.Context, repo string, id int64) (json.RawMessage, error) {
	u := c.url(fmt.Sprintf("%s/deployments/%d/statuses?per_page=1", repoPath(repo), id))
	resp, err := c.get(ctx, u, false)
	if err != nil {
		return nil, fmt.Errorf("statuses of deployment %d: %w", id, err)
	}
	statuses, err := pdk.SplitArray(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("statuses of deployment %d: malformed JSON: %w", id, err)
	}
	if len(statuses) == 0 {
		return json.RawMessage("null"), nil
	}
	return statuses[0], nil
}

// fullNames returns the full_name of each repository object.
func fullNames(repos []json.RawMessage) ([]string, error) {
	names := make([]string, 0, len(repos))
	for i, r := range repos {
		var v struct {
			FullName string `json:"full_name"`
		}
		if err := decodeMembers(r, &v, "full_name"); err != nil || !repoRe.MatchString(v.FullName) {
			return nil, fmt.Errorf("repository %d: no valid full_name (%v)", i, err)
		}
		names = append(names, v.FullName)
	}
	return names, nil
}

// decodeMembers decodes only the named top-level members of the object
// doc into v: the rest of a large object is split, not decoded.
func decodeMembers(doc json.RawMessage, v any, names ...string) error {
	fields, err := pdk.SplitObject(doc)
	if err != nil {
		return err
	}
	var small bytes.Buffer
	small.WriteByte('{')
	for _, n := range names {
		raw, ok := fields[n]
		if !ok {
			continue
		}
		if small.Len() > 1 {
			small.WriteByte(',')
		}
		small.WriteString(strconv.Quote(n))
		small.WriteByte(':')
		small.Write(raw)
	}
	small.WriteByte('}')
	if err := json.Unmarshal(small.Bytes(), v); err != nil {
		return err
	}
	return nil
}

// repoPath is /repos/{owner}/{name}, escaped.
func repoPath(fullName string) string {
	o, n, _ := strings.Cut(fullName, "/")
	return "/repos/" + url.PathEscape(o) + "/" + url.PathEscape(n)
}
