package workflows

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
)

func TestWebhookSignsAndKeys(t *testing.T) {
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), b}
		_, _ = w.Write([]byte(`{"deployed":true}`))
	}))
	defer srv.Close()

	tests := []struct {
		name string
		body string
		want string
	}{
		{"default body", "", `{"run":{"action":"deploy","id":"run_1","inputs":{"version":"1.2"}},"step":"ship"}`},
		{"jq body", `{version: .inputs.version, tier: .entity.properties.tier}`, `{"tier":1,"version":"1.2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			ts.SetLogger(quietLogger)
			env := ts.NewTestActivityEnvironment()
			env.RegisterActivity(&Activities{Store: &memStore{}})
			req := WebhookRequest{RunID: "run_1", Step: "ship", Action: "deploy", URL: srv.URL, Body: tt.body,
				Headers: map[string]string{"X-Team": "payments"},
				Context: json.RawMessage(`{"inputs":{"version":"1.2"},"entity":{"properties":{"tier":1}}}`),
				Run:     map[string]any{"id": "run_1", "action": "deploy", "inputs": map[string]any{"version": "1.2"}}}
			v, err := env.ExecuteActivity(activityWebhook, req)
			if err != nil {
				t.Fatal(err)
			}
			var res WebhookResult
			if err := v.Get(&res); err != nil || res.Status != 200 || string(res.Body) != `{"deployed":true}` {
				t.Fatalf("result %+v %v", res, err)
			}
			d := <-got
			if string(d.body) != tt.want {
				t.Fatalf("body %s, want %s", d.body, tt.want)
			}
			if k := d.header.Get("Idempotency-Key"); k != "run_1:ship" {
				t.Fatalf("Idempotency-Key %q", k)
			}
			stamp := d.header.Get("X-Portico-Timestamp")
			sec, err := strconv.ParseInt(stamp, 10, 64)
			if err != nil || time.Since(time.Unix(sec, 0)) > time.Minute {
				t.Fatalf("timestamp %q", stamp)
			}
			if sig := d.header.Get("X-Portico-Signature"); sig != Signature("s3cret", stamp, d.body) {
				t.Fatalf("signature %s does not verify", sig)
			}
			if d.header.Get("X-Team") != "payments" {
				t.Fatal("custom header lost")
			}
		})
	}
}

func TestSignatureVector(t *testing.T) {
	// echo -n '1700000000.{}' | openssl dgst -sha256 -hmac secret
	const want = "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
	if got := Signature("secret", "1700000000", []byte("{}")); got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}
