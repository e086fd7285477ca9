package standin

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8sresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

//go:embed testdata/*.json testdata/*.yaml
var fixtureFiles embed.FS

// Fixtures returns the objects of a small real cluster, built from the
// published payloads in testdata (see testdata/SOURCES.md): 6
// namespaces, 24 pods, the Deployment default/foo, and the workloads the
// pods and ReplicaSets name as owners.
func Fixtures() ([]runtime.Object, error) {
	var out []runtime.Object

	var nsList struct {
		Items []corev1.Namespace `json:"items"`
	}
	if err := readFixture("namespaces.kubectl-list.nri-k8s-1_35.yaml", &nsList); err != nil {
		return nil, err
	}
	for i := range nsList.Items {
		out = append(out, &nsList.Items[i])
	}

	var pods corev1.PodList
	if err := readFixture("podlist.kubelet-pods.nri-k8s-1_35.json", &pods); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		out = append(out, &pods.Items[i])
	}

	var foo appsv1.Deployment
	if err := readFixtureWith("deployment.object.k8s-java.json", &foo, dropConditions); err != nil {
		return nil, err
	}
	out = append(out, &foo)

	var rsList appsv1.ReplicaSetList
	if err := readFixture("replicasetlist.k8s-java.json", &rsList); err != nil {
		return nil, err
	}

	// The owners the pods and ReplicaSets name, derived from them.
	seen := map[string]bool{"Deployment/default/foo": true}
	add := func(kind, ns, name string, labels map[string]string, spec corev1.PodSpec, n int32) {
		key := kind + "/" + ns + "/" + name
		if seen[key] {
			return
		}
		seen[key] = true
		out = append(out, Workload(kind, ns, name, labels, spec, n))
	}
	for _, p := range pods.Items {
		for _, ref := range p.OwnerReferences {
			switch ref.Kind {
			case "ReplicaSet":
				hash := p.Labels["pod-template-hash"]
				if name, ok := strings.CutSuffix(ref.Name, "-"+hash); ok && hash != "" {
					add("Deployment", p.Namespace, name, withoutHash(p.Labels), p.Spec, 1)
				}
			case "StatefulSet", "DaemonSet":
				add(ref.Kind, p.Namespace, ref.Name, p.Labels, p.Spec, 1)
			}
		}
	}
	for _, rs := range rsList.Items {
		for _, ref := range rs.OwnerReferences {
			if ref.Kind == "Deployment" && rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0 {
				add("Deployment", rs.Namespace, ref.Name, withoutHash(rs.Labels), rs.Spec.Template.Spec, *rs.Spec.Replicas)
			}
		}
	}
	return out, nil
}

// dropConditions removes status.conditions and metadata.managedFields:
// both carry a timestamp that is not RFC 3339 (see testdata/SOURCES.md).
func dropConditions(m map[string]any) {
	if st, ok := m["status"].(map[string]any); ok {
		delete(st, "conditions")
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
}

func readFixture(name string, v any) error { return readFixtureWith(name, v, nil) }

func readFixtureWith(name string, v any, fix func(map[string]any)) error {
	b, err := fixtureFiles.ReadFile("testdata/" + name)
	if err != nil {
		return fmt.Errorf("fixture %s: %w", name, err)
	}
	if strings.HasSuffix(name, ".yaml") {
		if b, err = yaml.YAMLToJSON(b); err != nil {
			return fmt.Errorf("fixture %s: %w", name, err)
		}
	}
	if fix != nil {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("fixture %s: %w", name, err)
		}
		fix(m)
		if b, err = json.Marshal(m); err != nil {
			return fmt.Errorf("fixture %s: %w", name, err)
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("fixture %s: %w", name, err)
	}
	return nil
}

func withoutHash(labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		if k != "pod-template-hash" {
			out[k] = v
		}
	}
	return out
}

// Workload returns a Deployment, StatefulSet or DaemonSet running spec
// with n ready replicas (a DaemonSet: on n nodes), selected by labels.
func Workload(kind, namespace, name string, labels map[string]string, spec corev1.PodSpec, n int32) runtime.Object {
	om := metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels, Generation: 1}
	sel := &metav1.LabelSelector{MatchLabels: labels}
	tpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
	tpl.Spec.NodeName = ""
	switch kind {
	case "StatefulSet":
		return &appsv1.StatefulSet{ObjectMeta: om,
			Spec: appsv1.StatefulSetSpec{Replicas: &n, Selector: sel, Template: tpl, ServiceName: name},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: n, ReadyReplicas: n,
				AvailableReplicas: n, CurrentReplicas: n, UpdatedReplicas: n}}
	case "DaemonSet":
		return &appsv1.DaemonSet{ObjectMeta: om,
			Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tpl},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: n, CurrentNumberScheduled: n,
				NumberReady: n, NumberAvailable: n, UpdatedNumberScheduled: n}}
	}
	return &appsv1.Deployment{ObjectMeta: om,
		Spec: appsv1.DeploymentSpec{Replicas: &n, Selector: sel, Template: tpl},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: n, ReadyReplicas: n,
			AvailableReplicas: n, UpdatedReplicas: n}}
}

// Pod returns a running pod of a workload: owned by the Deployment's
// ReplicaSet (name "<deployment>-<hash>", label pod-template-hash) or
// directly by a StatefulSet or DaemonSet.
func Pod(w runtime.Object, name, node string) *corev1.Pod {
	var (
		om   metav1.ObjectMeta
		spec corev1.PodSpec
		ref  metav1.OwnerReference
	)
	t := true
	switch o := w.(type) {
	case *appsv1.Deployment:
		om, spec = o.ObjectMeta, o.Spec.Template.Spec
		const hash = "5d8f7c6b9"
		ref = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: o.Name + "-" + hash, Controller: &t}
		om.Labels = withLabel(o.Spec.Template.Labels, "pod-template-hash", hash)
	case *appsv1.StatefulSet:
		om, spec = o.ObjectMeta, o.Spec.Template.Spec
		ref = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: o.Name, Controller: &t}
		om.Labels = o.Spec.Template.Labels
	case *appsv1.DaemonSet:
		om, spec = o.ObjectMeta, o.Spec.Template.Spec
		ref = metav1.OwnerReference{APIVersion: "apps/v1", Kind: "DaemonSet", Name: o.Name, Controller: &t}
		om.Labels = o.Spec.Template.Labels
	}
	spec.NodeName = node
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: om.Namespace, Labels: om.Labels,
			OwnerReferences: []metav1.OwnerReference{ref}},
		Spec:   spec,
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, c := range spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses,
			corev1.ContainerStatus{Name: c.Name, Image: c.Image, Ready: true})
	}
	return p
}

func withLabel(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for lk, lv := range labels {
		out[lk] = lv
	}
	out[k] = v
	return out
}

// Generate returns a synthetic cluster for benchmarks: namespaces
// namespaces, workloads Deployments, StatefulSets and DaemonSets (8:1:1)
// spread over them, and pods pods spread over the workloads, each
// labelled app.kubernetes.io/name.
func Generate(namespaces, workloads, pods int) []runtime.Object {
	out := make([]runtime.Object, 0, namespaces+workloads+pods)
	for i := range namespaces {
		out = append(out, &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%03d", i),
				Labels: map[string]string{"kubernetes.io/metadata.name": fmt.Sprintf("team-%03d", i)}},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}})
	}
	ws := make([]runtime.Object, 0, workloads)
	for i := range workloads {
		kind := "Deployment"
		switch i % 10 {
		case 8:
			kind = "StatefulSet"
		case 9:
			kind = "DaemonSet"
		}
		name := fmt.Sprintf("app-%05d", i)
		labels := map[string]string{"app.kubernetes.io/name": name}
		spec := corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: fmt.Sprintf("registry.example/%s:1.%d.0", name, i%7),
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceCPU: k8sresource.MustParse("500m"), corev1.ResourceMemory: k8sresource.MustParse("256Mi")}},
		}}}
		w := Workload(kind, fmt.Sprintf("team-%03d", i%max(namespaces, 1)), name, labels, spec, 1)
		ws = append(ws, w)
		out = append(out, w)
	}
	for i := range pods {
		if len(ws) == 0 {
			break
		}
		w := ws[i%len(ws)]
		out = append(out, Pod(w, fmt.Sprintf("%s-%06d", nameOf(w), i), fmt.Sprintf("node-%02d", i%20)))
	}
	return out
}

func nameOf(o runtime.Object) string {
	switch w := o.(type) {
	case *appsv1.Deployment:
		return w.Name
	case *appsv1.StatefulSet:
		return w.Name
	case *appsv1.DaemonSet:
		return w.Name
	}
	return ""
}
