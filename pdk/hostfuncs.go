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
)

// HostFunctions lists every host function name.
var HostFunctions = []string{FnHTTP, FnHMAC, FnLog, FnKVGet, FnKVSet, FnCatalogGet}

// HTTPRequest is the input of portico_http; Body is base64 in JSON.
type HTTPRequest struct {
	Method  string              `json:"method,omitempty"`
	URL     string              `json:"url"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
}

// HTTPResponse is the output of portico_http; Body is base64 in JSON.
type HTTPResponse struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"`
}

// JSON decodes the response body into v.
func (r *HTTPResponse) JSON(v any) error { return json.Unmarshal(r.Body, v) }

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
