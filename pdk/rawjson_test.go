package pdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pdk"
)

func TestSplitPage(t *testing.T) {
	doc := []byte(` {"next": "c\"2", "items": [ {"id": "a", "tags": ["x", {"y": "]}"}]} , 1, "s\\", null, [] ],
		"meta": {"total": 2}, "k\u00e9y": true } `)
	items, fields, err := pdk.SplitPage(doc, "items")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"id": "a", "tags": ["x", {"y": "]}"}]}`, `1`, `"s\\"`, `null`, `[]`}
	if len(items) != len(want) {
		t.Fatalf("items %q", items)
	}
	for i, it := range items {
		if string(it) != want[i] {
			t.Errorf("item %d = %s, want %s", i, it, want[i])
		}
	}
	if _, ok := fields["items"]; ok {
		t.Error("items also returned as a field")
	}
	var std map[string]json.RawMessage
	if err := json.Unmarshal(doc, &std); err != nil {
		t.Fatal(err)
	}
	delete(std, "items")
	if len(fields) != len(std) {
		t.Fatalf("fields %q, want %q", fields, std)
	}
	for k, v := range std {
		if string(fields[k]) != string(v) {
			t.Errorf("field %q = %s, want %s", k, fields[k], v)
		}
	}

	all, err := pdk.SplitObject(doc)
	if err != nil || len(all) != 4 {
		t.Fatalf("SplitObject: %q, %v", all, err)
	}
	arr, err := pdk.SplitArray(all["items"])
	if err != nil || !reflect.DeepEqual(arr, items) {
		t.Fatalf("SplitArray: %q, %v", arr, err)
	}
	if arr, err := pdk.SplitArray([]byte(" null ")); err != nil || arr != nil {
		t.Fatalf("SplitArray(null) = %q, %v", arr, err)
	}
	if items, _, err := pdk.SplitPage([]byte(`{"next": ""}`), "items"); err != nil || items != nil {
		t.Fatalf("no items: %q, %v", items, err)
	}
}

func TestSplitMalformed(t *testing.T) {
	for _, doc := range []string{
		``, `[]`, `{`, `{"a"}`, `{"a": }`, `{"a": 1,}`, `{"a": 1 "b": 2}`, `{"a": [1, 2}`,
		`{"a": {"b": [}]}`, `{"a": "unterminated}`, `{"a": 1} x`, `{"items": [1 2]}`, `{"items": {}}`,
		`{"items": [,]}`, `{"items": [1,]}`, `{"items": [[[[`,
	} {
		_, _, err := pdk.SplitPage([]byte(doc), "items")
		var se *pdk.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("SplitPage(%q) = %v, want a *SyntaxError", doc, err)
		}
	}
	for _, doc := range []string{``, `{}`, `[`, `[1`, `[1,`, `["a]`, `[1] 2`} {
		if _, err := pdk.SplitArray([]byte(doc)); err == nil {
			t.Errorf("SplitArray(%q) accepted", doc)
		}
	}
}

func TestResyncPageJSON(t *testing.T) {
	p := &pdk.ResyncPage{
		Items:  []json.RawMessage{json.RawMessage(`{"id": "a"}`), nil, json.RawMessage(` [1] `)},
		Cursor: "next \"é\"\n",
	}
	b, err := pdk.EncodeOutput(p)
	if err != nil {
		t.Fatal(err)
	}
	var got pdk.ResyncPage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.Cursor != p.Cursor || len(got.Items) != 3 || string(got.Items[1]) != "null" {
		t.Fatalf("round trip: %s", b)
	}
	if b, _ := pdk.EncodeOutput(&pdk.ResyncPage{Cursor: "x"}); string(b) != `{"items":[],"cursor":"x"}` {
		t.Fatalf("empty page: %s", b)
	}
	if b, _ := pdk.EncodeOutput(&pdk.ActResult{Message: "ok"}); string(b) != `{"message":"ok"}` {
		t.Fatalf("other output: %s", b)
	}
}

// httpHost answers every HTTP call with a fixed response or error.
type httpHost struct {
	pdk.Host
	resp *pdk.HTTPResponse
	err  error
	got  pdk.HTTPRequest
}

func (h *httpHost) HTTP(_ context.Context, req pdk.HTTPRequest) (*pdk.HTTPResponse, error) {
	h.got = req
	return h.resp, h.err
}

func TestHTTPRawBody(t *testing.T) {
	body := []byte("{\"a\": 1}\n\x00\xff binary\n")
	h := &httpHost{resp: &pdk.HTTPResponse{Status: 201, Headers: map[string][]string{"X-A": {"b\nc"}}, Body: body}}
	var wire []byte
	client := pdk.NewHostClient(func(ctx context.Context, fn string, in []byte) ([]byte, error) {
		out, err := pdk.ServeHost(ctx, h, fn, in)
		wire = out
		return out, err
	})
	ctx := context.Background()
	req := pdk.HTTPRequest{Method: "POST", URL: "https://x.test/", Body: []byte("in")}
	resp, err := client.HTTP(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.got, req) {
		t.Errorf("host got %+v", h.got)
	}
	if resp.Status != 201 || resp.Headers["X-A"][0] != "b\nc" || string(resp.Body) != string(body) {
		t.Errorf("response %+v", resp)
	}
	if strings.Contains(string(wire), "aGk") || !strings.HasSuffix(string(wire), string(body)) {
		t.Errorf("body not sent raw: %q", wire)
	}

	h.resp, h.err = nil, errors.New("host not allowed")
	_, err = client.HTTP(ctx, req)
	var he *pdk.HostError
	if !errors.As(err, &he) || he.Message != "host not allowed" {
		t.Fatalf("err = %v", err)
	}

	// With Fields the host finds the body's top-level members.
	page := []byte(` {"items": [{"id": "a"}, 2], "next": "c2", "n": null}` + "\n")
	h.resp, h.err = &pdk.HTTPResponse{Status: 200, Body: page}, nil
	for i, c := range []pdk.Host{client, pdk.NewHostClient(func(ctx context.Context, fn string, in []byte) ([]byte, error) {
		var call map[string]any // a client that does not ask for rawBody
		_ = json.Unmarshal(in, &call)
		delete(call, "rawBody")
		in, _ = json.Marshal(call)
		return pdk.ServeHost(ctx, h, fn, in)
	})} {
		req.Fields = true
		resp, err := c.HTTP(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !h.got.Fields || string(resp.Body) != string(page) {
			t.Fatalf("fields response %+v", resp)
		}
		if i == 0 && !strings.Contains(string(wire), `"fields":{"items":[11,27],"n":[48,52],"next":[37,41]}}`) {
			t.Fatalf("no spans on the wire: %q", wire)
		}
		fields, err := resp.Fields()
		if err != nil || len(fields) != 3 || string(fields["items"]) != `[{"id": "a"}, 2]` ||
			string(fields["next"]) != `"c2"` || string(fields["n"]) != "null" {
			t.Fatalf("fields %q, %v", fields, err)
		}
	}
	req.Fields = false

	// A host that does not know rawBody answers with plain JSON.
	h.resp, h.err = &pdk.HTTPResponse{Status: 200, Body: body}, nil
	plain := pdk.NewHostClient(func(context.Context, string, []byte) ([]byte, error) { return json.Marshal(h.resp) })
	if resp, err := plain.HTTP(ctx, req); err != nil || string(resp.Body) != string(body) {
		t.Fatalf("plain: %+v, %v", resp, err)
	}
}

// FuzzSplitArray checks that SplitArray agrees with encoding/json on every
// valid document and never panics on invalid ones.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1, "a", {"b": [true, null]}]`, `null`, `[{"x": "\"]"}]`, `[1 2]`, `{"a": 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, err := pdk.SplitArray(doc)
		_, _, _ = pdk.SplitPage(doc, "a")
		var want []json.RawMessage
		if json.Unmarshal(doc, &want) != nil {
			return
		}
		if err != nil {
			t.Fatalf("SplitArray(%q): %v", doc, err)
		}
		if len(got) != len(want) {
			t.Fatalf("SplitArray(%q) = %q, want %q", doc, got, want)
		}
		for i := range got {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("SplitArray(%q)[%d] = %s, want %s", doc, i, got[i], want[i])
			}
		}
	})
}
