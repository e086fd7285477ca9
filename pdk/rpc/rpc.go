// Package rpc serves a pdk.Integration as a hashicorp/go-plugin subprocess
// over gRPC, and holds the host side of that protocol. Messages are JSON
// carried in google.protobuf.BytesValue, so no generated code is needed; the
// JSON shapes are those of the Wasm ABI. A plugin's main is one line:
//
//	func main() { rpc.Serve(myIntegration{}) }
//
// The host offers its host functions to the plugin through go-plugin's
// GRPCBroker; inside a call, pdk.HostFrom(ctx) reaches them.
package rpc

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-dev/portico/pdk"
)

// Handshake is shared by Portico and its go-plugin integrations. It is not a
// security feature; SecureConfig checksums are.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PORTICO_PLUGIN",
	MagicCookieValue: "integration",
}

// PluginName is the name the integration is dispensed under.
const PluginName = "integration"

const (
	integrationService = "portico.plugin.v1.Integration"
	hostService        = "portico.plugin.v1.Host"
	hostIDKey          = "portico-host-broker-id"
)

// PluginErrorCode marks an error the plugin itself returned. gRPC never
// generates Aborted itself, so it is unambiguous.
const PluginErrorCode = codes.Aborted

// Serve serves impl to a Portico host and never returns; call it from main.
func Serve(impl pdk.Integration) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &Plugin{Impl: impl}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// Plugin is the go-plugin definition of an integration: Impl is set on the
// plugin side, Host on the host side.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl pdk.Integration
	Host pdk.Host
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the integration service (plugin side).
func (p *Plugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	exports := []string{pdk.ExportInfo, pdk.ExportResync, pdk.ExportWebhook, pdk.ExportAct}
	if _, ok := p.Impl.(pdk.Watcher); ok {
		exports = append(exports, pdk.ExportWatch)
	}
	s.RegisterService(serviceDesc(integrationService, exports),
		&integrationServer{impl: p.Impl, broker: broker, hosts: map[uint32]pdk.Host{}})
	return nil
}

// GRPCClient serves the host functions through the broker and returns a
// *Client (host side).
func (p *Plugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	c := &Client{conn: conn, broker: broker, host: p.Host}
	c.announce()
	return c, nil
}

// reannounceAfter: go-plugin forgets a broker offer the plugin has not
// dialed within about 5 s, so an offer older than this and still unused
// is replaced before a call names it.
const reannounceAfter = 3 * time.Second

// Client calls a plugin's exports (host side).
type Client struct {
	conn   *grpc.ClientConn
	broker *plugin.GRPCBroker
	host   pdk.Host

	mu        sync.Mutex
	hostID    string       // broker id of the current host-functions offer
	announced time.Time    // when it was offered
	served    *atomic.Bool // set once the plugin used the offer
}

// announce offers the host functions under a fresh broker id. Call
// holds c.mu or the Client is not shared yet.
func (c *Client) announce() {
	id := c.broker.NextId()
	served := &atomic.Bool{}
	h := c.host
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		s.RegisterService(serviceDesc(hostService, pdk.NativeHostFunctions), &hostServer{host: h, served: served})
		return s
	})
	c.hostID, c.announced, c.served = strconv.FormatUint(uint64(id), 10), time.Now(), served
}

// currentHostID returns the broker id to send with a call, offering the
// host functions anew when the plugin never dialed the current offer and
// it is about to expire.
func (c *Client) currentHostID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.served.Load() && time.Since(c.announced) > reannounceAfter {
		c.announce()
	}
	return c.hostID
}

// Call calls export with JSON input. An error the plugin returned has status
// code PluginErrorCode.
func (c *Client) Call(ctx context.Context, export string, input []byte) ([]byte, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, hostIDKey, c.currentHostID())
	var out wrapperspb.BytesValue
	if err := c.conn.Invoke(ctx, "/"+integrationService+"/"+export, wrapperspb.Bytes(input), &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}

// caller is what both services implement: a named call on JSON bytes.
type caller interface {
	call(ctx context.Context, name string, input []byte) ([]byte, error)
}

// serviceDesc describes a service whose every method takes and returns a
// BytesValue and is dispatched by name to a caller.
func serviceDesc(name string, methods []string) *grpc.ServiceDesc {
	d := &grpc.ServiceDesc{ServiceName: name, HandlerType: (*caller)(nil), Metadata: "portico/plugin.proto"}
	for _, m := range methods {
		full := "/" + name + "/" + m
		d.Methods = append(d.Methods, grpc.MethodDesc{
			MethodName: m,
			Handler: func(srv any, ctx context.Context, dec func(any) error, icp grpc.UnaryServerInterceptor) (any, error) {
				in := new(wrapperspb.BytesValue)
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, req any) (any, error) {
					out, err := srv.(caller).call(ctx, m, req.(*wrapperspb.BytesValue).GetValue())
					if err != nil {
						return nil, err
					}
					return wrapperspb.Bytes(out), nil
				}
				if icp == nil {
					return h(ctx, in)
				}
				return icp(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
			},
		})
	}
	return d
}

// integrationServer runs the plugin's Integration (plugin side).
type integrationServer struct {
	impl   pdk.Integration
	broker *plugin.GRPCBroker

	mu    sync.Mutex
	hosts map[uint32]pdk.Host // by broker id; dialed once
}

func (s *integrationServer) call(ctx context.Context, export string, input []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			debug.PrintStack()
			err = status.Errorf(PluginErrorCode, "panic: %v", r)
		}
	}()
	ctx = pdk.WithHost(ctx, s.host(ctx))
	out, err = pdk.Dispatch(ctx, s.impl, export, input)
	if err != nil {
		return nil, status.Error(PluginErrorCode, err.Error())
	}
	return out, nil
}

// host returns the host functions of the caller named in ctx's metadata.
func (s *integrationServer) host(ctx context.Context) pdk.Host {
	md, _ := metadata.FromIncomingContext(ctx)
	ids := md.Get(hostIDKey)
	if len(ids) == 0 {
		return nil
	}
	id64, err := strconv.ParseUint(ids[0], 10, 32)
	if err != nil {
		return nil
	}
	id := uint32(id64)
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hosts[id]; ok {
		return h
	}
	conn, err := s.broker.Dial(id)
	if err != nil {
		return pdk.NewHostClient(func(context.Context, string, []byte) ([]byte, error) {
			return nil, fmt.Errorf("dial host: %w", err)
		})
	}
	h := pdk.NewHostClient(func(ctx context.Context, fn string, input []byte) ([]byte, error) {
		var out wrapperspb.BytesValue
		if err := conn.Invoke(ctx, "/"+hostService+"/"+fn, wrapperspb.Bytes(input), &out); err != nil {
			return nil, err
		}
		return out.Value, nil
	})
	s.hosts[id] = h
	return h
}

// hostServer serves host functions to the plugin (host side).
type hostServer struct {
	host   pdk.Host
	served *atomic.Bool
}

func (s *hostServer) call(ctx context.Context, fn string, input []byte) ([]byte, error) {
	s.served.Store(true)
	if s.host == nil {
		return nil, status.Error(codes.Unavailable, "no host functions")
	}
	out, err := pdk.ServeHost(ctx, s.host, fn, input)
	if err != nil {
		return nil, status.Error(codes.Unimplemented, err.Error())
	}
	return out, nil
}
