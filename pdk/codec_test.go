package pdk_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/portico-dev/portico/pdk"
)

// equalJSON reports whether two raw values are equal once compacted.
func equalJSON(a, b json.RawMessage) bool {
	var x, y any
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestDecodeInput(t *testing.T) {
	for _, in := range []string{
		`{"kind":"item","cursor":"c1","config":{"baseUrl":"https://x","pageSize":7}}`,
		` { "kind" : "item" , "cursor" : null } `,
		`{"kind":"it\"em","cursor":"é","config":null}`,
		`{"KIND":"item"}`,
		`{"kind":"item","extra":[1,2]}`,
		`{}`,
	} {
		var fast, std pdk.ResyncRequest
		if err := pdk.DecodeInput([]byte(in), &fast); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := json.Unmarshal([]byte(in), &std); err != nil {
			t.Fatal(err)
		}
		if fast.Kind != std.Kind || fast.Cursor != std.Cursor || !equalJSON(fast.Config, std.Config) {
			t.Errorf("%s: fast %+v, std %+v", in, fast, std)
		}
	}
	for _, in := range []string{
		`{"action":"noop"}`,
		`{"action":"rename","inputs":{"name":"x"},"entity":{"identifier":"a"},"config":{"a":[1,{"b":"}"}]}}`,
		`{"action":"rename","entity":null}`,
		`{"action":"\u0072ename"}`,
	} {
		var fast, std pdk.ActRequest
		if err := pdk.DecodeInput([]byte(in), &fast); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := json.Unmarshal([]byte(in), &std); err != nil {
			t.Fatal(err)
		}
		if fast.Action != std.Action || !equalJSON(fast.Inputs, std.Inputs) || !equalJSON(fast.Entity, std.Entity) ||
			!equalJSON(fast.Config, std.Config) {
			t.Errorf("%s: fast %+v, std %+v", in, fast, std)
		}
	}
	var r pdk.ActRequest
	if err := pdk.DecodeInput([]byte(`{"action": 1}`), &r); err == nil {
		t.Error("a number accepted as the action")
	}
	if err := pdk.DecodeInput([]byte(`{"action": "x"`), &r); err == nil {
		t.Error("truncated input accepted")
	}
}

func TestEncodeActResult(t *testing.T) {
	for _, r := range []*pdk.ActResult{
		{},
		{Message: "renamed <a> to \"b\"", Logs: []string{"PATCH /items/a", "ünïcode"}},
		{Outputs: json.RawMessage(`{"status": 200}`), Upserts: []pdk.KindItem{{Kind: "item", Item: json.RawMessage(`{"id":"a"}`)}},
			Deletes: []pdk.KindItem{{Kind: "item"}}},
	} {
		fast, err := pdk.EncodeOutput(r)
		if err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(r)
		if !equalJSON(fast, std) {
			t.Errorf("fast %s, std %s", fast, std)
		}
	}
}

// FuzzDecodeInput checks that the fast decoder agrees with encoding/json
// on every input encoding/json accepts.
func FuzzDecodeInput(f *testing.F) {
	f.Add([]byte(`{"action":"rename","inputs":{"name":"x"},"entity":null,"config":{}}`))
	f.Add([]byte(`{"kind":"item","cursor":"1"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var fast, std pdk.ActRequest
		errFast := pdk.DecodeInput(in, &fast)
		errStd := json.Unmarshal(in, &std)
		// The fast path does not validate raw values: it may accept what
		// encoding/json rejects, never the reverse.
		if errStd == nil && errFast != nil {
			t.Fatalf("%q: fast err %v", in, errFast)
		}
		if errStd == nil && (fast.Action != std.Action || !equalJSON(fast.Inputs, std.Inputs) ||
			!equalJSON(fast.Entity, std.Entity) || !equalJSON(fast.Config, std.Config)) {
			t.Fatalf("%q: fast %+v, std %+v", in, fast, std)
		}
	})
}

// TestWebhookCodec: the fast webhook decoder and encoder agree with
// encoding/json, on the wire shapes the host sends and expects.
func TestWebhookCodec(t *testing.T) {
	body := []byte(`{"action":"completed","workflow_run":{"id":30433642,"name":"Build"}}` + "\n\x00\xff")
	wire, _ := json.Marshal(pdk.WebhookRequest{
		Headers: map[string][]string{"X-Github-Event": {"workflow_run"}, "X-Hub-Signature-256": {"sha256=ab"}},
		Body:    body, Config: json.RawMessage(`{"org":"o"}`),
	})
	for _, in := range []string{
		string(wire),
		`{"headers":{},"body":null}`,
		`{"headers":{"A":["1"]},"body":"eyJ9","config":null}`,
		`{"body":"eyJ\/9w=="}`, // an escaped base64 string: encoding/json's path
		`{}`,
	} {
		var fast, std pdk.WebhookRequest
		if err := pdk.DecodeInput([]byte(in), &fast); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := json.Unmarshal([]byte(in), &std); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast.Headers, std.Headers) || string(fast.Body) != string(std.Body) || !equalJSON(fast.Config, std.Config) {
			t.Errorf("%s: fast %+v, std %+v", in, fast, std)
		}
	}
	var r pdk.WebhookRequest
	if err := pdk.DecodeInput([]byte(`{"body":"not base64!"}`), &r); err == nil {
		t.Error("a body that is not base64 accepted")
	}

	for _, res := range []*pdk.WebhookResult{
		{},
		{Response: &pdk.WebhookResponse{Status: 200, Body: `{"ok":"é\""}`}},
		{Upserts: []pdk.KindItem{{Kind: "workflowRun", Item: json.RawMessage(`{"id":1}`)}},
			Deletes: []pdk.KindItem{{Kind: "run", Item: json.RawMessage(`{"id":2}`)}}, Response: &pdk.WebhookResponse{Status: 202}},
	} {
		fast, err := pdk.EncodeOutput(res)
		if err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(res)
		if !equalJSON(fast, std) {
			t.Errorf("fast %s, std %s", fast, std)
		}
	}
}
