// Command kubernetes is Portico's Kubernetes integration, a native
// go-plugin binary: it syncs clusters, namespaces, workloads and
// optionally pods with client-go, pushes changes live through the watch
// export (informers), and scales, restarts and deletes pods. See
// README.md.
//
//	go build -o bin/plugins/kubernetes ./plugins/kubernetes
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/pdk/rpc"
)

func main() { rpc.Serve(New()) }

// Kubernetes implements pdk.Integration and pdk.Watcher. The host keeps
// one plugin process per installation; its informers live as long as the
// process, and are rebuilt when the config or the kubeconfig changes.
type Kubernetes struct {
	mu      sync.Mutex
	current *cluster

	services *serviceCache
}

var (
	_ pdk.Integration = (*Kubernetes)(nil)
	_ pdk.Watcher     = (*Kubernetes)(nil)
)

// New returns the integration.
func New() *Kubernetes { return &Kubernetes{services: newServiceCache(serviceTTL)} }

// Close stops the informers.
func (k *Kubernetes) Close() {
	k.mu.Lock()
	c := k.current
	k.current = nil
	k.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// Info describes the plugin.
func (k *Kubernetes) Info(context.Context) (*pdk.Info, error) { return info(), nil }

// cluster returns the informers of the installation's config and
// kubeconfig, starting them (and stopping the previous ones) when either
// changed.
func (k *Kubernetes) cluster(ctx context.Context, raw []byte) (*cluster, error) {
	cfg, err := decodeConfig(raw)
	if err != nil {
		return nil, err
	}
	var kubeconfig string
	if !cfg.InCluster {
		if kubeconfig, err = pdk.Secret(ctx, SecretKubeconfig); err != nil {
			return nil, fmt.Errorf("read the %s secret: %w", SecretKubeconfig, err)
		}
	}
	key := cfg.key(kubeconfig)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.current != nil && k.current.key == key {
		return k.current, nil
	}
	rc, err := restConfig(cfg, kubeconfig)
	if err != nil {
		return nil, err
	}
	c, err := newCluster(key, cfg, rc)
	if err != nil {
		return nil, err
	}
	if old := k.current; old != nil {
		go old.close()
	}
	k.current = c
	return c, nil
}

// Resync returns one page of req.Kind, listed from the API server.
func (k *Kubernetes) Resync(ctx context.Context, req pdk.ResyncRequest) (*pdk.ResyncPage, error) {
	c, err := k.cluster(ctx, req.Config)
	if err != nil {
		return nil, err
	}
	items, next, err := c.resyncPage(ctx, req.Kind, req.Cursor)
	if err != nil {
		return nil, err
	}
	k.services.resolve(ctx, items)
	page := &pdk.ResyncPage{Items: make([]json.RawMessage, len(items)), Cursor: next}
	for i, it := range items {
		page.Items[i] = rawItem(it)
	}
	return page, nil
}

// Webhook is not used: changes arrive through Watch.
func (k *Kubernetes) Webhook(context.Context, pdk.WebhookRequest) (*pdk.WebhookResult, error) {
	return nil, errors.New("the kubernetes integration takes no webhooks: it watches the cluster")
}

// Act runs scale, restart or deletePod. The change comes back through
// the watch.
func (k *Kubernetes) Act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	c, err := k.cluster(ctx, req.Config)
	if err != nil {
		return nil, err
	}
	return c.act(ctx, req)
}

// Watch batching.
const (
	watchLinger   = 20 * time.Millisecond
	watchMaxBatch = 1000
)

// Watch returns the changes the informers saw since req.Cursor: as soon
// as there are some (gathered for up to 20 ms, at most 1,000), or none
// once req.WaitMs has passed. The cursor is "<informers id>.<batch>": a
// cursor of other informers (or "") means changes may have been missed,
// so once the informers have synced the result asks for a full resync.
func (k *Kubernetes) Watch(ctx context.Context, req pdk.WatchRequest) (*pdk.WatchResult, error) {
	c, err := k.cluster(ctx, req.Config)
	if err != nil {
		return nil, err
	}
	wait := time.Duration(req.WaitMs) * time.Millisecond
	id, seq, ok := parseWatchCursor(req.Cursor)
	if !ok || id != c.id {
		synced, err := c.waitSynced(ctx, wait)
		if err != nil {
			return nil, err
		}
		if !synced {
			return &pdk.WatchResult{Cursor: req.Cursor}, nil
		}
		return &pdk.WatchResult{Resync: true, Cursor: c.cursor(c.queue.current())}, nil
	}
	c.queue.ack(seq)
	if err := c.failure(); errors.Is(err, ErrUnauthorized) {
		return nil, err
	}
	batch, seq := c.queue.take(ctx, wait, watchLinger, watchMaxBatch)
	res := &pdk.WatchResult{Cursor: c.cursor(seq)}
	var upserts []any
	var kinds []string
	for _, ch := range batch {
		if ch.deleted {
			res.Deletes = append(res.Deletes, pdk.KindItem{Kind: ch.kind, Item: rawItem(ch.item)})
		} else {
			upserts, kinds = append(upserts, ch.item), append(kinds, ch.kind)
		}
	}
	k.services.resolve(ctx, upserts)
	for i, it := range upserts {
		res.Upserts = append(res.Upserts, pdk.KindItem{Kind: kinds[i], Item: rawItem(it)})
	}
	return res, nil
}

func (c *cluster) cursor(seq uint64) string { return c.id + "." + strconv.FormatUint(seq, 10) }

func parseWatchCursor(cursor string) (id string, seq uint64, ok bool) {
	id, s, ok := strings.Cut(cursor, ".")
	if !ok {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return id, seq, err == nil
}
