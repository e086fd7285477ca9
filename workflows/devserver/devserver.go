// Package devserver runs a real Temporal server inside the Portico process
// for `portico dev`: SQLite persistence in one file under the data dir,
// static membership (no ringpop, so queries work right after an unclean
// restart) and every service on 127.0.0.1.
package devserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

const (
	host        = "127.0.0.1"
	clusterName = "active"
	// Data store names: executions (histories, timers, task queues) and
	// visibility (the workflow list) live in two SQLite files, so a
	// visibility write never waits for the executions file's lock.
	storeExecutions = "executions"
	storeVisibility = "visibility"
)

// Options configure the embedded server.
type Options struct {
	// DataDir holds temporal.db; it is created when missing.
	DataDir string
	// FrontendPort is the gRPC port clients dial (0: a free port).
	FrontendPort int
	// Namespace is registered on start ("default" when empty).
	Namespace string
	// LogLevel of the server's own logger: debug, info, warn, error
	// (default "error": the server is chatty).
	LogLevel string
}

// Server is a running embedded Temporal server.
type Server struct {
	srv       temporal.Server
	hostPort  string
	namespace string
}

// Start creates (or reopens) <DataDir>/temporal.db, registers the
// namespace and starts frontend, history, matching and worker services.
func Start(opts Options) (*Server, error) {
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "error"
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("temporal data dir: %w", err)
	}
	// synchronous=NORMAL in WAL mode: a commit is in the OS's page cache
	// when it returns, so a killed process loses nothing; a machine crash
	// may lose the last commits, as the dev catalog may lose its last
	// second. FULL adds an fsync per commit, which serialised every
	// persistence write behind the disk (50 vs 90 runs/s here).
	sqlCfg, err := openDB(filepath.Join(opts.DataDir, "temporal.db"), "NORMAL")
	if err != nil {
		return nil, err
	}
	visCfg, err := openDB(filepath.Join(opts.DataDir, "temporal-visibility.db"), "NORMAL")
	if err != nil {
		return nil, err
	}
	if err := slimVisibility(visCfg); err != nil {
		return nil, err
	}
	ns, err := sqlite.NewNamespaceConfig(clusterName, opts.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("namespace config: %w", err)
	}
	if err := sqlite.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("register namespace %s: %w", opts.Namespace, err)
	}

	ports := map[primitives.ServiceName]int{primitives.FrontendService: opts.FrontendPort}
	services := []primitives.ServiceName{primitives.FrontendService, primitives.HistoryService, primitives.MatchingService, primitives.WorkerService}
	for _, s := range services {
		if ports[s] != 0 {
			continue
		}
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[s] = p
	}
	frontend := net.JoinHostPort(host, strconv.Itoa(ports[primitives.FrontendService]))

	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: host},
		},
		Persistence: config.Persistence{
			DefaultStore:     storeExecutions,
			VisibilityStore:  storeVisibility,
			NumHistoryShards: 1,
			DataStores: map[string]config.DataStore{
				storeExecutions: {SQL: sqlCfg},
				storeVisibility: {SQL: visCfg},
			},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services:            map[string]config.Service{},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	names := make([]string, 0, len(services))
	for _, s := range services {
		cfg.Services[string(s)] = config.Service{RPC: config.RPC{GRPCPort: ports[s], BindOnIP: host}}
		hosts[s] = static.SingleLocalHost(net.JoinHostPort(host, strconv.Itoa(ports[s])))
		names = append(names, string(s))
	}

	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: opts.LogLevel}))
	srv, err := temporal.NewServer(
		temporal.WithDynamicConfigClient(dynamicConfig()),
		temporal.WithConfig(cfg),
		temporal.ForServices(names),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithCustomMetricsHandler(metrics.NoopMetricsHandler),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	return &Server{srv: srv, hostPort: frontend, namespace: opts.Namespace}, nil
}

// HostPort is the frontend address clients dial.
func (s *Server) HostPort() string { return s.hostPort }

// Namespace is the registered namespace.
func (s *Server) Namespace() string { return s.namespace }

// Dial returns an SDK client of the server's namespace, waiting until the
// frontend answers (or ctx ends).
func (s *Server) Dial(ctx context.Context, opts client.Options) (client.Client, error) {
	opts.HostPort = s.hostPort
	opts.Namespace = s.namespace
	return client.DialContext(ctx, opts)
}

// Stop shuts every service down.
func (s *Server) Stop() error {
	if err := s.srv.Stop(); err != nil {
		return fmt.Errorf("stop temporal server: %w", err)
	}
	return nil
}

// freePort picks a port the services can bind a moment later. The server
// binds after it is configured, and exits if the port was taken meanwhile,
// so the port comes from below the kernel's ephemeral range: a port the
// kernel hands out for ":0" listeners or outgoing connections (every
// Redis and HTTP client) could be reused by anyone before the bind.
func freePort() (int, error) {
	lo, hi := 20000, ephemeralLow()
	for range 100 {
		p := lo + rand.IntN(hi-lo)
		if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			ln.Close()
			return p, nil
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// 32768 where it cannot be read or leaves no room below).
func ephemeralLow() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(raw)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 25000 {
				return n
			}
		}
	}
	return 32768
}

// dynamicConfig tunes the server for one process on one machine: one
// partition per task queue (the default 4 spread pollers and forward
// tasks between partitions, which buys nothing without more hosts).
func dynamicConfig() dynamicconfig.Client {
	dc := dynamicconfig.NewMemoryClient()
	dc.OverrideSetting(dynamicconfig.MatchingNumTaskqueueReadPartitions, 1)
	dc.OverrideSetting(dynamicconfig.MatchingNumTaskqueueWritePartitions, 1)
	return dc
}

// openDB returns the config of one SQLite file in WAL mode, creating its
// schema when the file is new. synchronous FULL makes every commit
// durable through a power loss; NORMAL survives a killed process but may
// lose the last commits to a power loss.
func openDB(path, synchronous string) (*config.SQL, error) {
	cfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: path,
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  synchronous,
		},
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := sqlite.SetupSchema(cfg); err != nil {
			return nil, fmt.Errorf("temporal schema in %s: %w", path, err)
		}
	}
	return cfg, nil
}

// unusedVisibilityIndexes are the indexes of the visibility schema for
// search attributes and sort orders nothing in Portico queries: custom
// search attribute slots, Temporal's pre-allocated typed slots and the
// history size and duration orders. SQLite updates ~60 indexes and two
// full-text tables on every visibility write; without these it updates 19,
// which more than halves the server's CPU per started run. Queries on
// those columns still work (by scanning).
var unusedVisibilityIndexes = func() []string {
	var names []string
	for _, group := range []struct {
		prefix string
		n      int
	}{
		{"by_bool_%02d", 3}, {"by_datetime_%02d", 3}, {"by_double_%02d", 3}, {"by_int_%02d", 3}, {"by_keyword_%02d", 10},
		{"by_temporal_bool_%02d", 2}, {"by_temporal_datetime_%02d", 2}, {"by_temporal_double_%02d", 2},
		{"by_temporal_int_%02d", 2}, {"by_temporal_keyword_%02d", 4}, {"by_temporal_low_cardinality_keyword_%02d", 1},
	} {
		for i := 1; i <= group.n; i++ {
			names = append(names, fmt.Sprintf(group.prefix, i))
		}
	}
	return append(names, "by_history_length", "by_history_size_bytes", "by_execution_duration", "by_state_transition_count")
}()

// slimVisibility drops unusedVisibilityIndexes (idempotent).
func slimVisibility(cfg *config.SQL) error {
	db, err := sql.Open("sqlite", cfg.DatabaseName)
	if err != nil {
		return fmt.Errorf("open %s: %w", cfg.DatabaseName, err)
	}
	defer db.Close()
	for _, name := range unusedVisibilityIndexes {
		if _, err := db.Exec("DROP INDEX IF EXISTS " + name); err != nil {
			return fmt.Errorf("drop visibility index %s: %w", name, err)
		}
	}
	return nil
}
