package pdk

import (
	"encoding/json"
	"strings"
)

// Info describes a plugin: what it syncs, how its items map to entities, what it
// needs to be installed and what it can do. It is the output of the `info` export.
type Info struct {
	Name        string            `json:"name"`
	Version     string            `json:"version"`
	Description string            `json:"description,omitempty"`
	Kinds       []Kind            `json:"kinds"`
	Blueprints  []json.RawMessage `json:"blueprints,omitempty"`
	Mappings    Mappings          `json:"mappings"`
	Config      json.RawMessage   `json:"config,omitempty"`
	Secrets     []string          `json:"secrets,omitempty"`
	Auth        []AuthTemplate    `json:"auth,omitempty"`
	Actions     []Action          `json:"actions,omitempty"`
	Webhook     bool              `json:"webhook"`
	// Watch says the plugin exports `watch` (implements Watcher): the host
	// then keeps a watch call running for every installation.
	Watch bool `json:"watch,omitempty"`
}

// Kind is one kind of raw item a plugin lists in a resync (e.g. "incidents").
type Kind struct {
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
}

// Mappings holds the default resource mappings of a plugin.
type Mappings struct {
	Resources []ResourceMapping `json:"resources"`
}

// ResourceMapping maps raw items of one kind to entities; every value is a jq
// expression evaluated over the raw item by the host.
type ResourceMapping struct {
	Kind     string        `json:"kind"`
	Selector string        `json:"selector,omitempty"`
	Entity   EntityMapping `json:"entity"`
}

// EntityMapping holds the jq expressions that produce an entity from a raw item.
type EntityMapping struct {
	Identifier string            `json:"identifier"`
	Title      string            `json:"title,omitempty"`
	Blueprint  string            `json:"blueprint"`
	Team       string            `json:"team,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Relations  map[string]string `json:"relations,omitempty"`
}

// AuthTemplate tells the host how to authenticate requests to some hosts: the
// host fills Template's {{secretName}} placeholders with the installation's
// secrets and sets the result as Header. The plugin never sees the secret.
// A Hosts entry AuthHostBaseURL stands for the host (and port) of the
// installation's config "baseUrl", so credentials follow an installation
// pointed at a proxy, an enterprise server or a stand-in (which its
// allowedHosts must still allow).
type AuthTemplate struct {
	Hosts    []string `json:"hosts"`
	Header   string   `json:"header"`
	Template string   `json:"template"`
}

// AuthHostBaseURL is the AuthTemplate host entry that stands for the host
// of the installation's config "baseUrl".
const AuthHostBaseURL = "$baseUrl"

// Action is a write-back operation a plugin offers through its `act` export.
type Action struct {
	Name        string          `json:"name"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description,omitempty"`
	Inputs      json.RawMessage `json:"inputs,omitempty"`
}

// ResyncRequest asks for one page of items of one kind.
type ResyncRequest struct {
	Kind   string          `json:"kind"`
	Cursor string          `json:"cursor"`
	Config json.RawMessage `json:"config,omitempty"`
}

// ResyncPage is one page of raw items; an empty Cursor means the kind is done.
type ResyncPage struct {
	Items  []json.RawMessage `json:"items"`
	Cursor string            `json:"cursor"`
	// ItemsJSON, when set, holds the items as one raw JSON array and is
	// sent instead of Items: a plugin can pass an upstream array through
	// without splitting it (see HTTPResponse.Fields). On the wire the page
	// is the same {"items": [...], "cursor": ...}.
	ItemsJSON json.RawMessage `json:"-"`
}

// RawItems returns the page's items: Items, or ItemsJSON split.
func (p *ResyncPage) RawItems() ([]json.RawMessage, error) {
	if len(p.ItemsJSON) == 0 {
		return p.Items, nil
	}
	return SplitArray(p.ItemsJSON)
}

// MarshalJSON encodes the page, honouring ItemsJSON.
func (p ResyncPage) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil) }

// WebhookRequest carries an incoming webhook delivery; Body is base64 in JSON.
type WebhookRequest struct {
	Headers map[string][]string `json:"headers"`
	Body    []byte              `json:"body"`
	Config  json.RawMessage     `json:"config,omitempty"`
}

// Header returns the first value of the named header, matched case-insensitively.
func (r WebhookRequest) Header(name string) string {
	for k, v := range r.Headers {
		if len(v) > 0 && strings.EqualFold(k, name) {
			return v[0]
		}
	}
	return ""
}

// KindItem is a raw item of a kind, to be mapped by the host.
type KindItem struct {
	Kind string          `json:"kind"`
	Item json.RawMessage `json:"item"`
}

// WebhookResult lists the changes a verified webhook delivery implies and the
// HTTP response to send back.
type WebhookResult struct {
	Upserts  []KindItem       `json:"upserts,omitempty"`
	Deletes  []KindItem       `json:"deletes,omitempty"`
	Response *WebhookResponse `json:"response,omitempty"`
}

// WebhookResponse is the HTTP response to a webhook delivery.
type WebhookResponse struct {
	Status int    `json:"status"`
	Body   string `json:"body,omitempty"`
}

// ActRequest asks the plugin to run one of its actions.
type ActRequest struct {
	Action string          `json:"action"`
	Inputs json.RawMessage `json:"inputs,omitempty"`
	Entity json.RawMessage `json:"entity,omitempty"`
	Config json.RawMessage `json:"config,omitempty"`
}

// ActResult is the outcome of an action: a message, log lines, outputs and the
// catalog changes it implies.
type ActResult struct {
	Message string          `json:"message,omitempty"`
	Logs    []string        `json:"logs,omitempty"`
	Outputs json.RawMessage `json:"outputs,omitempty"`
	Upserts []KindItem      `json:"upserts,omitempty"`
	Deletes []KindItem      `json:"deletes,omitempty"`
}

// WatchRequest asks for the changes since Cursor. The plugin returns as
// soon as it has some, or an empty result once WaitMs has passed.
type WatchRequest struct {
	Config json.RawMessage `json:"config,omitempty"`
	// Cursor is the Cursor of the previous result; "" when the host
	// (re)starts watching (a plugin may then send its current state).
	Cursor string `json:"cursor"`
	// WaitMs is how long the call may wait for changes; it is well within
	// the installation's call timeout.
	WaitMs int `json:"waitMs"`
}

// WatchResult is a batch of changes pushed by a plugin, applied like a
// webhook's, and the cursor to continue from.
type WatchResult struct {
	Upserts []KindItem `json:"upserts,omitempty"`
	Deletes []KindItem `json:"deletes,omitempty"`
	Cursor  string     `json:"cursor,omitempty"`
	// Resync asks the host for a full resync: the plugin knows it missed
	// changes (e.g. its upstream watch expired).
	Resync bool `json:"resync,omitempty"`
}
