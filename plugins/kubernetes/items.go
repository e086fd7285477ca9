package main

import (
	"encoding/json"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Kinds of raw items, in the order a resync lists them (relation targets
// first).
const (
	KindCluster   = "cluster"
	KindNamespace = "namespace"
	KindWorkload  = "workload"
	KindPod       = "pod"
)

// The raw items are compact: what the default mappings use, computed
// natively here (health, image tags, limits), so the host's jq only
// copies fields.

type clusterItem struct {
	Cluster string `json:"cluster"`
	Server  string `json:"server,omitempty"`
	Version string `json:"version,omitempty"`
}

type namespaceItem struct {
	Cluster   string            `json:"cluster"`
	Name      string            `json:"name"`
	Phase     string            `json:"phase,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	CreatedAt string            `json:"createdAt,omitempty"`
}

type workloadItem struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	// Kind is Deployment, StatefulSet or DaemonSet.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Replicas is the desired number of pods (a DaemonSet: of nodes).
	Replicas      int32             `json:"replicas"`
	ReadyReplicas int32             `json:"readyReplicas"`
	Images        []string          `json:"images"`
	HasLatestTag  bool              `json:"hasLatestTag"`
	HasLimits     bool              `json:"hasLimits"`
	IsHealthy     bool              `json:"isHealthy"`
	Labels        map[string]string `json:"labels,omitempty"`
	// App is the app.kubernetes.io/name label.
	App string `json:"app,omitempty"`
	// Service is App when the catalog has a service entity of that name.
	Service   string `json:"service,omitempty"`
	CreatedAt string `json:"createdAt,omitempty"`
}

type podItem struct {
	Cluster   string   `json:"cluster"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Phase     string   `json:"phase,omitempty"`
	Node      string   `json:"node,omitempty"`
	Restarts  int32    `json:"restarts"`
	Ready     bool     `json:"ready"`
	Images    []string `json:"images"`
	// Workload is "<Kind>/<name>" of the owning workload, if any.
	Workload  string `json:"workload,omitempty"`
	CreatedAt string `json:"createdAt,omitempty"`
}

// AppLabel relates a workload to the catalog's service of that name.
const AppLabel = "app.kubernetes.io/name"

func timestamp(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func namespaceOf(cluster string, ns *corev1.Namespace) namespaceItem {
	return namespaceItem{Cluster: cluster, Name: ns.Name, Phase: string(ns.Status.Phase),
		Labels: ns.Labels, CreatedAt: timestamp(ns.CreationTimestamp)}
}

func desired(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func deploymentOf(cluster string, d *appsv1.Deployment) workloadItem {
	w := workloadOf(cluster, "Deployment", d.ObjectMeta, &d.Spec.Template.Spec)
	w.Replicas, w.ReadyReplicas = desired(d.Spec.Replicas), d.Status.ReadyReplicas
	w.IsHealthy = d.Status.ObservedGeneration >= d.Generation &&
		d.Status.UpdatedReplicas == w.Replicas && d.Status.AvailableReplicas == w.Replicas &&
		d.Status.ReadyReplicas == w.Replicas && d.Status.Replicas == w.Replicas
	return w
}

func statefulSetOf(cluster string, s *appsv1.StatefulSet) workloadItem {
	w := workloadOf(cluster, "StatefulSet", s.ObjectMeta, &s.Spec.Template.Spec)
	w.Replicas, w.ReadyReplicas = desired(s.Spec.Replicas), s.Status.ReadyReplicas
	w.IsHealthy = s.Status.ObservedGeneration >= s.Generation &&
		s.Status.ReadyReplicas == w.Replicas && s.Status.UpdatedReplicas == w.Replicas
	return w
}

func daemonSetOf(cluster string, d *appsv1.DaemonSet) workloadItem {
	w := workloadOf(cluster, "DaemonSet", d.ObjectMeta, &d.Spec.Template.Spec)
	w.Replicas, w.ReadyReplicas = d.Status.DesiredNumberScheduled, d.Status.NumberReady
	w.IsHealthy = d.Status.ObservedGeneration >= d.Generation &&
		d.Status.NumberReady == w.Replicas && d.Status.UpdatedNumberScheduled == w.Replicas &&
		d.Status.NumberUnavailable == 0
	return w
}

func workloadOf(cluster, kind string, m metav1.ObjectMeta, spec *corev1.PodSpec) workloadItem {
	w := workloadItem{Cluster: cluster, Namespace: m.Namespace, Kind: kind, Name: m.Name,
		Labels: m.Labels, App: m.Labels[AppLabel], CreatedAt: timestamp(m.CreationTimestamp),
		Images: images(spec), HasLimits: len(spec.Containers) > 0}
	for _, img := range w.Images {
		w.HasLatestTag = w.HasLatestTag || isLatest(img)
	}
	for _, c := range spec.Containers {
		lim := c.Resources.Limits
		if lim.Cpu().IsZero() || lim.Memory().IsZero() {
			w.HasLimits = false
		}
	}
	return w
}

// images lists the images of a pod spec's init and app containers.
func images(spec *corev1.PodSpec) []string {
	out := make([]string, 0, len(spec.InitContainers)+len(spec.Containers))
	for _, c := range spec.InitContainers {
		out = append(out, c.Image)
	}
	for _, c := range spec.Containers {
		out = append(out, c.Image)
	}
	return out
}

// isLatest reports whether an image reference floats: tagged "latest", or
// untagged and unpinned (which means latest).
func isLatest(image string) bool {
	if strings.Contains(image, "@") {
		return false // pinned by digest
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	return i < 0 || name[i+1:] == "latest"
}

func podOf(cluster string, p *corev1.Pod) podItem {
	it := podItem{Cluster: cluster, Namespace: p.Namespace, Name: p.Name, Phase: string(p.Status.Phase),
		Node: p.Spec.NodeName, Images: images(&p.Spec), Workload: ownerWorkload(p),
		CreatedAt: timestamp(p.CreationTimestamp)}
	it.Ready = len(p.Status.ContainerStatuses) > 0
	for _, cs := range p.Status.ContainerStatuses {
		it.Restarts += cs.RestartCount
		it.Ready = it.Ready && cs.Ready
	}
	return it
}

// ownerWorkload names a pod's workload as "<Kind>/<name>": its
// StatefulSet or DaemonSet, or the Deployment behind its ReplicaSet (the
// ReplicaSet is named "<deployment>-<pod-template-hash>").
func ownerWorkload(p *corev1.Pod) string {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return ""
	}
	switch ref.Kind {
	case "StatefulSet", "DaemonSet":
		return ref.Kind + "/" + ref.Name
	case "ReplicaSet":
		hash := p.Labels["pod-template-hash"]
		if name, ok := strings.CutSuffix(ref.Name, "-"+hash); ok && hash != "" && name != "" {
			return "Deployment/" + name
		}
	}
	return ""
}

// rawItem encodes an item; the item types always encode.
func rawItem(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
