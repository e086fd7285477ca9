package rpc_test

import (
	"context"
	"errors"
	"testing"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/rpc"
)

// signer uses the host's HMAC in Act and fails Resync.
type signer struct{}

func (signer) Info(context.Context) (*pdk.Info, error) { return &pdk.Info{Name: "signer"}, nil }
func (signer) Resync(context.Context, pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	return nil, errors.New("no items today")
}
func (signer) Webhook(context.Context, pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	panic("boom")
}
func (signer) Act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	mac, err := pdk.HostFrom(ctx).HMAC(ctx, pdk.HMACRequest{Secret: "s", Data: []byte(req.Action)})
	if err != nil {
		return nil, err
	}
	return &pdk.ActResult{Message: mac.Hex}, nil
}

// fakeHost answers HMAC with the data reversed.
type fakeHost struct{ pdk.Host }

func (fakeHost) HMAC(_ context.Context, r pdk.HMACRequest) (*pdk.HMACResponse, error) {
	b := []byte(r.Data)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return &pdk.HMACResponse{Hex: r.Secret + ":" + string(b)}, nil
}

func TestInProcess(t *testing.T) {
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		rpc.PluginName: &rpc.Plugin{Impl: signer{}, Host: fakeHost{}},
	})
	defer client.Close()
	raw, err := client.Dispense(rpc.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*rpc.Client)
	ctx := context.Background()

	out, err := c.Call(ctx, pdk.ExportAct, []byte(`{"action": "abc"}`))
	if err != nil || string(out) != `{"message":"s:cba"}` {
		t.Errorf("act through the broker: %s, %v", out, err)
	}
	tests := []struct{ export, want string }{
		{pdk.ExportResync, "no items today"},
		{pdk.ExportWebhook, "panic: boom"},
	}
	for _, tt := range tests {
		_, err := c.Call(ctx, tt.export, []byte(`{}`))
		if st, _ := status.FromError(err); st.Code() != rpc.PluginErrorCode || st.Message() != tt.want {
			t.Errorf("%s: err = %v, want code %v %q", tt.export, err, rpc.PluginErrorCode, tt.want)
		}
	}
}
