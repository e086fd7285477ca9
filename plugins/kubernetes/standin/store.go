package standin

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Resource names the stand-in serves.
const (
	Namespaces   = "namespaces"
	Pods         = "pods"
	Deployments  = "deployments"
	StatefulSets = "statefulsets"
	DaemonSets   = "daemonsets"
)

// resource describes one served resource.
type resource struct {
	name       string
	apiVersion string // "v1", "apps/v1"
	kind       string
	namespaced bool
	scalable   bool
}

var resources = map[string]resource{
	Namespaces:   {Namespaces, "v1", "Namespace", false, false},
	Pods:         {Pods, "v1", "Pod", true, false},
	Deployments:  {Deployments, "apps/v1", "Deployment", true, true},
	StatefulSets: {StatefulSets, "apps/v1", "StatefulSet", true, true},
	DaemonSets:   {DaemonSets, "apps/v1", "DaemonSet", true, false},
}

// resourceOf returns the resource an object of a supported type belongs to.
func resourceOf(obj runtime.Object) (resource, error) {
	switch obj.(type) {
	case *corev1.Namespace:
		return resources[Namespaces], nil
	case *corev1.Pod:
		return resources[Pods], nil
	case *appsv1.Deployment:
		return resources[Deployments], nil
	case *appsv1.StatefulSet:
		return resources[StatefulSets], nil
	case *appsv1.DaemonSet:
		return resources[DaemonSets], nil
	}
	return resource{}, fmt.Errorf("standin: unsupported object %T", obj)
}

// stored is one object version. It is never changed once stored: a write
// stores a new one, so list snapshots and watch events can share it.
type stored struct {
	namespace, name string
	rv              uint64
	obj             runtime.Object
	json            []byte // the object as served, with kind and apiVersion
}

func (o *stored) key() string { return o.namespace + "/" + o.name }

// event is one change of a resource, as a watch sends it.
type event struct {
	rv   uint64
	res  string
	typ  string // ADDED, MODIFIED, DELETED
	obj  *stored
	line []byte // {"type":…,"object":…}\n
}

// maxEvents bounds the event history a watch can resume from; older
// resource versions get 410 Gone, as from a compacted etcd.
const maxEvents = 200_000

// store holds the objects, the resource version counter and the event
// history. Its methods are called with Server.mu held.
type store struct {
	rv      uint64
	objects map[string]map[string]*stored // resource → ns/name → object
	events  []event                       // oldest first
}

func newStore() *store {
	s := &store{rv: 1000, objects: map[string]map[string]*stored{}}
	for name := range resources {
		s.objects[name] = map[string]*stored{}
	}
	return s
}

// put stores obj (a copy, with a new resource version) and records the
// event; it returns the event.
func (s *store) put(obj runtime.Object) (event, error) {
	res, err := resourceOf(obj)
	if err != nil {
		return event{}, err
	}
	obj = obj.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return event{}, err
	}
	if m.GetName() == "" {
		return event{}, fmt.Errorf("standin: %s without a name", res.kind)
	}
	if !res.namespaced {
		m.SetNamespace("")
	} else if m.GetNamespace() == "" {
		m.SetNamespace("default")
	}
	key := m.GetNamespace() + "/" + m.GetName()
	old := s.objects[res.name][key]
	typ := "MODIFIED"
	if old == nil {
		typ = "ADDED"
		if m.GetUID() == "" {
			m.SetUID(types.UID(newUID()))
		}
		if ts := m.GetCreationTimestamp(); ts.IsZero() {
			m.SetCreationTimestamp(metav1.Now())
		}
	}
	s.rv++
	m.SetResourceVersion(fmt.Sprint(s.rv))
	o, err := encode(res, obj, s.rv)
	if err != nil {
		return event{}, err
	}
	s.objects[res.name][key] = o
	return s.record(res.name, typ, o), nil
}

// remove deletes an object and records the event; ok is false when there
// was none.
func (s *store) remove(res, namespace, name string) (event, bool, error) {
	key := namespace + "/" + name
	old := s.objects[res][key]
	if old == nil {
		return event{}, false, nil
	}
	delete(s.objects[res], key)
	s.rv++
	obj := old.obj.DeepCopyObject()
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(fmt.Sprint(s.rv))
	o, err := encode(resources[res], obj, s.rv)
	if err != nil {
		return event{}, false, err
	}
	return s.record(res, "DELETED", o), true, nil
}

func (s *store) record(res, typ string, o *stored) event {
	line, _ := json.Marshal(struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}{typ, o.json})
	ev := event{rv: o.rv, res: res, typ: typ, obj: o, line: append(line, '\n')}
	if len(s.events) >= maxEvents {
		s.events = append(s.events[:0:0], s.events[len(s.events)-maxEvents/2:]...)
	}
	s.events = append(s.events, ev)
	return ev
}

// list returns the objects of res in namespace ns ("" = all), sorted by
// namespace and name.
func (s *store) list(res, ns string) []*stored {
	out := make([]*stored, 0, len(s.objects[res]))
	for _, o := range s.objects[res] {
		if ns == "" || o.namespace == ns {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

// since returns the events of res after resource version rv; ok is false
// when the history no longer reaches back that far.
func (s *store) since(res string, rv uint64) (evs []event, ok bool) {
	if len(s.events) > 0 && rv+1 < s.events[0].rv {
		return nil, false
	}
	i := sort.Search(len(s.events), func(i int) bool { return s.events[i].rv > rv })
	for _, ev := range s.events[i:] {
		if ev.res == res {
			evs = append(evs, ev)
		}
	}
	return evs, true
}

// encode makes the stored form of obj: its JSON with kind and apiVersion.
func encode(res resource, obj runtime.Object, rv uint64) (*stored, error) {
	obj.GetObjectKind().SetGroupVersionKind(gvk(res))
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("standin: encode %s: %w", res.kind, err)
	}
	m, _ := meta.Accessor(obj)
	return &stored{namespace: m.GetNamespace(), name: m.GetName(), rv: rv, obj: obj, json: b}, nil
}

var uidMu sync.Mutex
var uidN uint64

// newUID returns a unique, UUID-shaped id.
func newUID() string {
	uidMu.Lock()
	defer uidMu.Unlock()
	uidN++
	return fmt.Sprintf("5d1a0c3e-0000-4000-8000-%012x", uidN)
}
