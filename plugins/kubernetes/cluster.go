package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// cluster is what one installation's config and kubeconfig build: a
// client and informers on the resources the plugin syncs, started once
// and kept until the config or the kubeconfig changes. Informer events
// become changes in queue, which watch calls drain.
type cluster struct {
	key    string
	id     string // tells this cluster's watch cursors from another's
	cfg    config
	rest   *rest.Config
	client kubernetes.Interface
	queue  *changeQueue

	stop    context.CancelFunc
	synced  chan struct{} // closed once every informer has synced
	workers sync.WaitGroup

	mu      sync.Mutex
	lastErr error     // the newest list/watch failure of an informer
	errAt   time.Time // when lastErr happened
	eventAt time.Time // when the newest informer event arrived

	deployments, statefulSets, daemonSets keyGetter // for pods' workload relation
}

// newCluster builds the client and starts the informers.
func newCluster(key string, cfg config, rc *rest.Config) (*cluster, error) {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	c := &cluster{key: key, id: hex.EncodeToString(id), cfg: cfg, rest: rc, client: client,
		queue: newChangeQueue(), synced: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel

	// Each informer is built by its own constructor rather than through
	// an informers.SharedInformerFactory: the factory's package links
	// informers and listers for every API group (~120 packages, 1–2 CPU
	// minutes of a cold build) where this needs four.
	var started []cache.SharedIndexInformer
	var syncs []cache.InformerSynced
	add := func(inf cache.SharedIndexInformer, kind string) {
		started = append(started, inf)
		syncs = append(syncs, c.watch(inf, kind))
	}
	byNamespace := func() cache.Indexers { return cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc} }
	add(coreinformers.NewNamespaceInformer(client, 0, byNamespace()), KindNamespace)

	scopes := cfg.Namespaces
	if len(scopes) == 0 {
		scopes = []string{corev1.NamespaceAll}
	}
	var deps, stss, dss []cache.Indexer
	for _, ns := range scopes {
		for _, inf := range []struct {
			i   cache.SharedIndexInformer
			dst *[]cache.Indexer
		}{
			{appsinformers.NewDeploymentInformer(client, ns, 0, byNamespace()), &deps},
			{appsinformers.NewStatefulSetInformer(client, ns, 0, byNamespace()), &stss},
			{appsinformers.NewDaemonSetInformer(client, ns, 0, byNamespace()), &dss},
		} {
			add(inf.i, KindWorkload)
			*inf.dst = append(*inf.dst, inf.i.GetIndexer())
		}
		if cfg.Pods {
			add(coreinformers.NewPodInformer(client, ns, 0, byNamespace()), KindPod)
		}
	}
	c.deployments, c.statefulSets, c.daemonSets = multiIndexer(deps), multiIndexer(stss), multiIndexer(dss)
	for _, inf := range started {
		go inf.Run(ctx.Done())
	}
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		if cache.WaitForCacheSync(ctx.Done(), syncs...) {
			close(c.synced)
		}
	}()
	return c, nil
}

// close stops the informers.
func (c *cluster) close() {
	c.stop()
	c.workers.Wait()
}

// watch wires an informer to the queue and the error record; it returns
// its HasSynced.
func (c *cluster) watch(inf cache.SharedIndexInformer, kind string) cache.InformerSynced {
	// Informers keep whole objects; managed fields are most of a small
	// object and never used.
	_ = inf.SetTransform(func(obj any) (any, error) {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetManagedFields(nil)
		}
		return obj, nil
	})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		c.mu.Lock()
		c.lastErr, c.errAt = err, time.Now()
		c.mu.Unlock()
	})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			c.seen()
			if !initial { // the initial state is a resync's job
				c.upsert(kind, obj)
			}
		},
		UpdateFunc: func(old, obj any) {
			c.seen()
			if a, b := resourceVersion(old), resourceVersion(obj); a == "" || a != b {
				c.upsert(kind, obj)
			}
		},
		DeleteFunc: func(obj any) {
			c.seen()
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if key, it, ok := c.item(obj); ok {
				c.queue.push(change{key: kind + ":" + key, kind: kind, item: it, deleted: true})
			}
		},
	})
	return inf.HasSynced
}

func resourceVersion(obj any) string {
	if m, err := meta.Accessor(obj); err == nil {
		return m.GetResourceVersion()
	}
	return ""
}

func (c *cluster) seen() {
	c.mu.Lock()
	c.eventAt = time.Now()
	c.mu.Unlock()
}

func (c *cluster) upsert(kind string, obj any) {
	if key, it, ok := c.item(obj); ok {
		c.queue.push(change{key: kind + ":" + key, kind: kind, item: it})
	}
}

// item turns an informer object into a raw item and its key.
func (c *cluster) item(obj any) (string, any, bool) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		if !c.cfg.watchesNamespace(o.Name) {
			return "", nil, false
		}
		return o.Name, namespaceOf(c.cfg.Cluster, o), true
	case *appsv1.Deployment:
		w := deploymentOf(c.cfg.Cluster, o)
		return o.Namespace + "/Deployment/" + o.Name, &w, true
	case *appsv1.StatefulSet:
		w := statefulSetOf(c.cfg.Cluster, o)
		return o.Namespace + "/StatefulSet/" + o.Name, &w, true
	case *appsv1.DaemonSet:
		w := daemonSetOf(c.cfg.Cluster, o)
		return o.Namespace + "/DaemonSet/" + o.Name, &w, true
	case *corev1.Pod:
		it := podOf(c.cfg.Cluster, o)
		it.Workload = c.knownWorkload(o.Namespace, it.Workload)
		return o.Namespace + "/" + o.Name, it, true
	}
	return "", nil, false
}

// knownWorkload keeps a pod's workload ("<Kind>/<name>") only when the
// informers know it, once they have synced: a relation to a workload
// that does not exist would make the catalog refuse the pod.
func (c *cluster) knownWorkload(ns, workload string) string {
	if workload == "" || !c.isSynced() {
		return workload
	}
	var idx keyGetter
	kind, name, _ := strings.Cut(workload, "/")
	switch kind {
	case "Deployment":
		idx = c.deployments
	case "StatefulSet":
		idx = c.statefulSets
	case "DaemonSet":
		idx = c.daemonSets
	}
	if idx == nil {
		return ""
	}
	if _, ok, _ := idx.GetByKey(ns + "/" + name); ok {
		return workload
	}
	return ""
}

func (c *cluster) isSynced() bool {
	select {
	case <-c.synced:
		return true
	default:
		return false
	}
}

// ErrUnauthorized: the cluster refused the credentials (401 or 403).
var ErrUnauthorized = errors.New("the cluster refused the credentials")

// waitSynced waits up to wait for the informers to sync. It fails at once
// when the cluster refused the credentials, and with the last error (or
// a timeout) when wait passes first; ok is false then.
func (c *cluster) waitSynced(ctx context.Context, wait time.Duration) (ok bool, err error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.synced:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
			return false, c.failure()
		case <-tick.C:
			if err := c.failure(); errors.Is(err, ErrUnauthorized) {
				return false, err
			}
		}
	}
}

// failure returns the informers' newest error when no event arrived
// since (they have not recovered), wrapped in ErrUnauthorized for
// 401/403.
func (c *cluster) failure() error {
	c.mu.Lock()
	err, at, ev := c.lastErr, c.errAt, c.eventAt
	c.mu.Unlock()
	if err == nil || !at.After(ev) {
		return nil
	}
	return apiError("watch", err)
}

// apiError wraps err, calling 401/403 what they are.
func apiError(what string, err error) error {
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: %w: 401 Unauthorized: %v", what, ErrUnauthorized, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w: 403 Forbidden: %v", what, ErrUnauthorized, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// keyGetter finds objects by "<namespace>/<name>".
type keyGetter interface {
	GetByKey(key string) (any, bool, error)
}

// multiIndexer looks a key up in several indexers (one per namespace).
type multiIndexer []cache.Indexer

func (m multiIndexer) GetByKey(key string) (any, bool, error) {
	for _, idx := range m {
		if v, ok, err := idx.GetByKey(key); ok || err != nil {
			return v, ok, err
		}
	}
	return nil, false, nil
}
