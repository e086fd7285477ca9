package pdk

import "encoding/json"

// Names of the host functions Portico offers (Extism namespace extism:host/user).
const (
	FnHTTP       = "portico_http"
	FnHMAC       = "portico_hmac"
	FnLog        = "portico_log"
	FnKVGet      = "portico_kv_get"
	FnKVSet      = "portico_kv_set"
	FnCatalogGet = "portico_catalog_get"
	// FnSecret is offered only to native (go-plugin) integrations.
	FnSecret = "portico_secret"
)

// HostFunctions lists the host functions every plugin gets (Wasm modules
// get exactly these).
var HostFunctions = []string{FnHTTP, FnHMAC, FnLog, FnKVGet, FnKVSet, FnCatalogGet}

// NativeHostFunctions lists the host functions of native (go-plugin)
// integrations: HostFunctions and FnSecret.
var NativeHostFunctions = append(append([]string(nil), HostFunctions...), FnSecret)

// HTTPRequest is the input of portico_http; Body is base64 in JSON.
type HTTPRequest struct {
	Method  string              `json:"method,omitempty"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
	// Fields asks the host to find the top-level members of a JSON object
	// response body, for HTTPResponse.Fields: the host does natively what
	// costs a Wasm guest a scan of the whole body. On the wire the output
	// then carries "fields": {"name": [start, end], …}, byte spans of the
	// members' values in the body.
	Fields bool `json:"fields,omitempty"`
}

// HTTPResponse is the output of portico_http; Body is base64 in JSON.
type HTTPResponse struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`

	fields map[string][2]int // spans found by the host (HTTPRequest.Fields)
}

// JSON decodes the response body into v.
func (r *HTTPResponse) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Fields returns the top-level members of the JSON object body as raw
// values, like SplitObject(r.Body). When the request set Fields the host
// has already found them and the body is not scanned again.
func (r *HTTPResponse) Fields() (map[string]json.RawMessage, error) {
	if r.fields == nil {
		return SplitObject(r.Body)
	}
	out := make(map[string]json.RawMessage, len(r.fields))
	for name, sp := range r.fields {
		if sp[0] < 0 || sp[0] > sp[1] || sp[1] > len(r.Body) {
			return SplitObject(r.Body)
		}
		out[name] = r.Body[sp[0]:sp[1]:sp[1]]
	}
	return out, nil
}

// HMACRequest is the input of portico_hmac: sign Data with the named secret.
type HMACRequest struct {
	Secret    string `json:"secret"`
	Algorithm string `json:"algorithm,omitempty"` // sha256 (default), sha1, sha512
	Data      []byte `json:"data"`
}

// HMACResponse is the output of portico_hmac.
type HMACResponse struct {
	Hex string `json:"hex"`
}

// Log levels accepted by portico_log.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// LogRequest is the input of portico_log.
type LogRequest struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// KVGetRequest is the input of portico_kv_get.
type KVGetRequest struct {
	Key string `json:"key"`
}

// KVGetResponse is the output of portico_kv_get.
type KVGetResponse struct {
	Value string `json:"value"`
	Found bool   `json:"found"`
}

// KVSetRequest is the input of portico_kv_set; an empty Value deletes the key.
type KVSetRequest struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// CatalogGetRequest is the input of portico_catalog_get; its output is the
// entity JSON, or null when there is no such entity.
type CatalogGetRequest struct {
	Blueprint  string `json:"blueprint"`
	Identifier string `json:"identifier"`
}

// SecretRequest is the input of portico_secret.
type SecretRequest struct {
	Name string `json:"name"`
}

// SecretResponse is the output of portico_secret.
type SecretResponse struct {
	Value string `json:"value"`
}
