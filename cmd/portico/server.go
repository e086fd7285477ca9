package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// checkPublicURL refuses a --public-url that is not an absolute http(s) URL.
func checkPublicURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--public-url %q: want an absolute http:// or https:// URL", s)
	}
	return nil
}

// linkBase is the base URL of run links: publicURL when set, else the
// listen address (an empty or unspecified host reads as 127.0.0.1).
func linkBase(publicURL, addr string) string {
	if publicURL != "" {
		return strings.TrimSuffix(publicURL, "/")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// servePprof exposes Go's profiler on its own listener, only when asked
// for (--pprof-addr); it is never mounted on the API.
func servePprof(log *slog.Logger, addr string) {
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		log.Info("pprof listening", "addr", addr)
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Error("pprof", "err", err)
		}
	}()
}

// streamDrain is how long a shutdown lets requests finish before it ends
// the streams still open.
const streamDrain = 2 * time.Second

// serve serves the API until SIGINT/SIGTERM, then drains in-flight
// requests and closes the portal.
func (p *portal) serve() error {
	ln, err := net.Listen("tcp", p.srv.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", p.srv.Addr, err)
	}
	p.log.Info("portico listening", "addr", "http://"+ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Requests live under base: a shutdown gives them streamDrain to
	// finish, then cancels it, which ends long-lived streams (change
	// events, run logs) that would otherwise hold Shutdown for its whole
	// timeout; their clients reconnect to another replica and resume.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	p.srv.BaseContext = func(net.Listener) context.Context { return base }
	p.srv.RegisterOnShutdown(func() { time.AfterFunc(streamDrain, cancelBase) })
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Serve(ln) }()
	p.runBackground(ctx)
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	p.log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serveErr == nil {
		if err := p.srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = fmt.Errorf("shutdown: %w", err)
		}
	}
	if err := p.engine.stop(); err != nil {
		p.log.Warn("stop temporal", "err", err)
	}
	if err := p.plugins.close(shutdown); err != nil {
		p.log.Warn("stop plugin host", "err", err)
	}
	return serveErr
}

func newLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
