package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pageSize is how many objects a resync page lists.
const pageSize = 500

// A resync lists from the API server, not from the informers' caches:
// every page of one list comes from the same resource version (the API
// server's continue token holds it), so no object is skipped between
// pages, and a failed request fails the resync instead of serving a
// stale cache. The cursor is "<step>:<continue>", where a step is one
// list of the kind (one per resource and namespace).

// ErrBadCursor: a resync cursor this plugin did not make.
var ErrBadCursor = errors.New("bad resync cursor")

// listStep is one list of a kind: a resource, in a namespace or all.
type listStep struct {
	resource  string // namespaces, deployments, statefulsets, daemonsets, pods
	namespace string
}

func (c *cluster) steps(kind string) ([]listStep, error) {
	scopes := c.cfg.Namespaces
	if len(scopes) == 0 {
		scopes = []string{corev1.NamespaceAll}
	}
	var out []listStep
	switch kind {
	case KindCluster:
		out = []listStep{{resource: "version"}}
	case KindNamespace:
		out = []listStep{{resource: "namespaces"}}
	case KindWorkload:
		for _, ns := range scopes {
			for _, r := range []string{"deployments", "statefulsets", "daemonsets"} {
				out = append(out, listStep{resource: r, namespace: ns})
			}
		}
	case KindPod:
		if !c.cfg.Pods {
			return nil, nil
		}
		for _, ns := range scopes {
			out = append(out, listStep{resource: "pods", namespace: ns})
		}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return out, nil
}

func parseResyncCursor(cursor string) (step int, cont string, err error) {
	if cursor == "" {
		return 0, "", nil
	}
	s, cont, ok := strings.Cut(cursor, ":")
	step, err = strconv.Atoi(s)
	if !ok || err != nil || step < 0 {
		return 0, "", fmt.Errorf("%w %q", ErrBadCursor, cursor)
	}
	return step, cont, nil
}

// resyncPage lists one page of kind from cursor. It returns the raw
// items (workloads as *workloadItem, for the service lookup) and the
// next cursor ("" when done).
func (c *cluster) resyncPage(ctx context.Context, kind, cursor string) ([]any, string, error) {
	steps, err := c.steps(kind)
	if err != nil {
		return nil, "", err
	}
	step, cont, err := parseResyncCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if step >= len(steps) {
		if len(steps) == 0 && cursor == "" {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("%w %q", ErrBadCursor, cursor)
	}
	st := steps[step]
	opts := metav1.ListOptions{Limit: pageSize, Continue: cont}
	items, next, err := c.list(ctx, st, opts)
	if err != nil {
		what := st.resource
		if st.namespace != "" {
			what += " in " + st.namespace
		}
		page := "first page"
		if cont != "" {
			page = "page after continue token"
		}
		return nil, "", apiError(fmt.Sprintf("list %s (%s)", what, page), err)
	}
	switch {
	case next != "":
		return items, strconv.Itoa(step) + ":" + next, nil
	case step+1 < len(steps):
		return items, strconv.Itoa(step+1) + ":", nil
	}
	return items, "", nil
}

// list runs one page of a step's list.
func (c *cluster) list(ctx context.Context, st listStep, opts metav1.ListOptions) ([]any, string, error) {
	cl, apps := c.cfg.Cluster, c.client.AppsV1()
	switch st.resource {
	case "version":
		v, err := c.client.Discovery().ServerVersion()
		if err != nil {
			return nil, "", err
		}
		server := c.rest.Host
		if u, err := url.Parse(server); err == nil && u.Host != "" {
			server = u.Scheme + "://" + u.Host
		}
		return []any{clusterItem{Cluster: cl, Server: server, Version: v.GitVersion}}, "", nil
	case "namespaces":
		l, err := c.client.CoreV1().Namespaces().List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]any, 0, len(l.Items))
		for i := range l.Items {
			if c.cfg.watchesNamespace(l.Items[i].Name) {
				out = append(out, namespaceOf(cl, &l.Items[i]))
			}
		}
		return out, l.Continue, nil
	case "deployments":
		l, err := apps.Deployments(st.namespace).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]any, len(l.Items))
		for i := range l.Items {
			w := deploymentOf(cl, &l.Items[i])
			out[i] = &w
		}
		return out, l.Continue, nil
	case "statefulsets":
		l, err := apps.StatefulSets(st.namespace).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]any, len(l.Items))
		for i := range l.Items {
			w := statefulSetOf(cl, &l.Items[i])
			out[i] = &w
		}
		return out, l.Continue, nil
	case "daemonsets":
		l, err := apps.DaemonSets(st.namespace).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]any, len(l.Items))
		for i := range l.Items {
			w := daemonSetOf(cl, &l.Items[i])
			out[i] = &w
		}
		return out, l.Continue, nil
	case "pods":
		l, err := c.client.CoreV1().Pods(st.namespace).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]any, len(l.Items))
		for i := range l.Items {
			p := &l.Items[i]
			it := podOf(cl, p)
			it.Workload = c.knownWorkload(p.Namespace, it.Workload)
			out[i] = it
		}
		return out, l.Continue, nil
	}
	return nil, "", fmt.Errorf("unknown resource %q", st.resource)
}
