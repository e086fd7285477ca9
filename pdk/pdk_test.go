package pdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/portico-dev/portico/pdk"
)

func validInfo() pdk.Info {
	return pdk.Info{
		Name: "pagerduty", Version: "1.2.3-rc.1",
		Kinds:      []pdk.Kind{{Kind: "incidents"}},
		Blueprints: []json.RawMessage{json.RawMessage(`{"identifier": "incident"}`)},
		Mappings: pdk.Mappings{Resources: []pdk.ResourceMapping{{
			Kind: "incidents", Entity: pdk.EntityMapping{Identifier: ".id", Blueprint: `"incident"`},
		}}},
		Config:  json.RawMessage(`{"type": "object"}`),
		Secrets: []string{"apiToken"},
		Auth:    []pdk.AuthTemplate{{Hosts: []string{"api.pagerduty.com"}, Header: "Authorization", Template: "Token token={{apiToken}}"}},
		Actions: []pdk.Action{{Name: "ack"}},
	}
}

func TestInfoValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*pdk.Info)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(*pdk.Info) {}, ""},
		{"name", func(i *pdk.Info) { i.Name = "Pager Duty" }, "name"},
		{"version", func(i *pdk.Info) { i.Version = "v1.2" }, "not a semantic version"},
		{"duplicate kind", func(i *pdk.Info) { i.Kinds = append(i.Kinds, pdk.Kind{Kind: "incidents"}) }, "duplicate kind"},
		{"blueprint", func(i *pdk.Info) { i.Blueprints[0] = json.RawMessage(`[]`) }, "blueprints[0]"},
		{"mapping kind", func(i *pdk.Info) { i.Mappings.Resources[0].Kind = "services" }, `unknown kind "services"`},
		{"undeclared secret", func(i *pdk.Info) { i.Auth[0].Template = "{{other}}" }, `undeclared secret "other"`},
		{"duplicate action", func(i *pdk.Info) { i.Actions = append(i.Actions, pdk.Action{Name: "ack"}) }, "duplicate name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := validInfo()
			tt.change(&info)
			err := info.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFillTemplate(t *testing.T) {
	secrets := map[string]string{"a": "1", "b": "2"}
	lookup := func(k string) (string, bool) { v, ok := secrets[k]; return v, ok }
	if got, err := pdk.FillTemplate("x={{a}}&y={{ b }}", lookup); err != nil || got != "x=1&y=2" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := pdk.FillTemplate("{{c}}", lookup); err == nil {
		t.Error("missing secret accepted")
	}
}

type echo struct{}

func (echo) Info(context.Context) (*pdk.Info, error) { return &pdk.Info{Name: "echo"}, nil }
func (echo) Resync(_ context.Context, r pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	return &pdk.ResyncPage{Cursor: r.Cursor + "+"}, nil
}
func (echo) Webhook(_ context.Context, r pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	if r.Header("x-sig") != "ok" {
		return nil, errors.New("bad signature")
	}
	return &pdk.WebhookResult{Response: &pdk.WebhookResponse{Status: 200, Body: string(r.Body)}}, nil
}
func (echo) Act(ctx context.Context, _ pdk.ActRequest) (*pdk.ActResult, error) {
	return nil, pdk.HostFrom(ctx).Log(ctx, pdk.LogRequest{})
}

func TestDispatch(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		export, input, want, wantErr string
	}{
		{pdk.ExportInfo, "", `"name":"echo"`, ""},
		{pdk.ExportResync, `{"cursor": "c"}`, `"cursor":"c+"`, ""},
		{pdk.ExportWebhook, `{"headers": {"X-Sig": ["ok"]}, "body": "aGk="}`, `"body":"hi"`, ""},
		{pdk.ExportWebhook, `{"headers": {}}`, "", "bad signature"},
		{pdk.ExportAct, `{}`, "", pdk.ErrNoHost.Error()},
		{"nope", "", "", "unknown export"},
		{pdk.ExportResync, `{`, "", "decode input"},
	}
	for _, tt := range tests {
		out, err := pdk.Dispatch(ctx, echo{}, tt.export, []byte(tt.input))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s %s: err = %v, want %q", tt.export, tt.input, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("%s %s: %s, %v; want %s", tt.export, tt.input, out, err, tt.want)
		}
	}
}

func TestDecodeConfig(t *testing.T) {
	type cfg struct {
		BaseURL string `json:"baseUrl"`
	}
	if c, err := pdk.DecodeConfig[cfg](json.RawMessage(`{"baseUrl": "u"}`)); err != nil || c.BaseURL != "u" {
		t.Errorf("%v, %v", c, err)
	}
	if _, err := pdk.DecodeConfig[cfg](nil); err != nil {
		t.Error(err)
	}
	if _, err := pdk.DecodeConfig[cfg](json.RawMessage(`[]`)); err == nil {
		t.Error("want an error")
	}
}
