package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/portico-dev/portico/pdk"
	"github.com/portico-dev/portico/plugins/kubernetes/standin"
)

const fixtureCfg = `{"cluster": "prod", "pods": true}`

// TestResyncFixtures pages through every kind of the fixture cluster and
// checks the raw items the default mappings read.
func TestResyncFixtures(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)

	clusters, _, err := e.resyncAll(t, KindCluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(clusters) != 1 || !matches(clusters[0], map[string]any{"cluster": "prod", "version": standin.Version, "server": e.srv.URL()}) {
		t.Fatalf("cluster items = %s", clusters)
	}

	nss, _, err := e.resyncAll(t, KindNamespace)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range decodeItems(t, nss) {
		names = append(names, it["name"].(string))
	}
	slices.Sort(names)
	if want := []string{"default", "kube-node-lease", "kube-public", "kube-system", "nri-test-namespace", "scraper"}; !slices.Equal(names, want) {
		t.Fatalf("namespaces = %v, want %v", names, want)
	}

	workloads, _, err := e.resyncAll(t, KindWorkload)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.srv.Count(standin.Deployments) + e.srv.Count(standin.StatefulSets) + e.srv.Count(standin.DaemonSets); len(workloads) != want {
		t.Fatalf("%d workloads, want %d", len(workloads), want)
	}
	foo := find(t, workloads, "name", "foo")
	for k, want := range map[string]any{
		"cluster": "prod", "namespace": "default", "kind": "Deployment", "replicas": 3, "readyReplicas": 3,
		"images": []string{"busybox:1.31.1"}, "hasLatestTag": false, "hasLimits": false, "isHealthy": true,
	} {
		if got := mustJSON(foo[k]); got != mustJSON(want) {
			t.Errorf("foo.%s = %s, want %s", k, got, mustJSON(want))
		}
	}

	pods, _, err := e.resyncAll(t, KindPod)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 24 {
		t.Fatalf("%d pods, want the fixture's 24", len(pods))
	}
	for _, tc := range []struct {
		pod, workload string
	}{
		{"e2e-deployment-79967c5968-8bnn8", "Deployment/e2e-deployment"}, // via its ReplicaSet
		{"e2e-statefulset-0", "StatefulSet/e2e-statefulset"},
		{"kube-proxy-8k9zt", "DaemonSet/kube-proxy"},
		{"e2e-failjob-64h4g", ""}, // a Job's: no workload
		{"etcd-datagen-1-35", ""}, // static pod
	} {
		p := find(t, pods, "name", tc.pod)
		if got, _ := p["workload"].(string); got != tc.workload {
			t.Errorf("pod %s: workload %q, want %q", tc.pod, got, tc.workload)
		}
	}
	if p := find(t, pods, "name", "e2e-failjob-64h4g"); p["phase"] != "Failed" {
		t.Errorf("failed job pod phase = %v", p["phase"])
	}
}

func find(t *testing.T, raws []json.RawMessage, field, value string) map[string]any {
	t.Helper()
	for _, it := range decodeItems(t, raws) {
		if it[field] == value {
			return it
		}
	}
	t.Fatalf("no item with %s %q", field, value)
	return nil
}

// TestResyncPagesAreConsistent lists 1,201 pods in pages of 500 while
// pods are created and deleted between pages: the resync sees exactly
// the pods of its first page's moment, none twice, none skipped.
func TestResyncPagesAreConsistent(t *testing.T) {
	objs := standin.Generate(3, 30, 1201)
	e := newEnv(t, `{"cluster": "c1", "pods": true}`, objs...)
	ctx := e.ctx(t)
	var want []string
	var pods []*corev1.Pod
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			want, pods = append(want, p.Name), append(pods, p)
		}
	}

	var got []string
	cursor, pages := "", 0
	for {
		page, err := e.k.Resync(ctx, pdk.ResyncRequest{Kind: KindPod, Cursor: cursor, Config: e.cfg})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range decodeItems(t, page.Items) {
			got = append(got, it["name"].(string))
		}
		pages++
		if page.Cursor == "" {
			break
		}
		cursor = page.Cursor
		// Between pages: a new pod sorting first, a deletion of one not
		// listed yet.
		p := standin.Pod(objs[10], fmt.Sprintf("aaa-new-%d", pages), "node-1")
		if err := e.srv.Apply(p); err != nil {
			t.Fatal(err)
		}
		gone := pods[len(pods)-pages]
		if err := e.srv.Delete(standin.Pods, gone.Namespace, gone.Name); err != nil {
			t.Fatal(err)
		}
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3 of at most %d", pages, pageSize)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("resync listed %d pods, want the %d of the snapshot (first diff around %v)", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " vs " + b[i]
		}
	}
	return "the tail"
}

func TestResyncNamespaceFilter(t *testing.T) {
	e := fixtureEnv(t, `{"cluster": "prod", "namespaces": ["scraper"], "pods": true}`)
	for _, kind := range []string{KindNamespace, KindWorkload, KindPod} {
		items, _, err := e.resyncAll(t, kind)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			t.Fatalf("no %s items in namespace scraper", kind)
		}
		for _, it := range decodeItems(t, items) {
			ns := it["namespace"]
			if kind == KindNamespace {
				ns = it["name"]
			}
			if ns != "scraper" {
				t.Errorf("%s item outside the configured namespaces: %v", kind, it)
			}
		}
	}
}

// TestResyncWithoutPods: pods are opt-in.
func TestResyncWithoutPods(t *testing.T) {
	e := fixtureEnv(t, `{"cluster": "prod"}`)
	items, pages, err := e.resyncAll(t, KindPod)
	if err != nil || len(items) != 0 || pages != 1 {
		t.Fatalf("pods without config pods: %d items in %d pages, err %v", len(items), pages, err)
	}
}

// TestResyncFailsMidList: a 500 on the second page fails the resync and
// says which list and page.
func TestResyncFailsMidList(t *testing.T) {
	e := newEnv(t, `{"cluster": "c1", "pods": true}`, standin.Generate(1, 10, 700)...)
	e.srv.FailLists(http.StatusInternalServerError, 2)
	items, pages, err := e.resyncAll(t, KindPod)
	if err == nil {
		t.Fatal("resync succeeded despite the failing second page")
	}
	if pages != 1 || len(items) != pageSize {
		t.Errorf("got %d pages (%d items) before the failure, want 1 (%d)", pages, len(items), pageSize)
	}
	for _, want := range []string{"list pods", "page after continue token", "stand-in failure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if errors.Is(err, ErrUnauthorized) {
		t.Errorf("a 500 reported as unauthorized: %v", err)
	}
}

// TestUnauthorized: a token the cluster refuses fails resync, watch and
// actions with an error that says 401.
func TestUnauthorized(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	e.host.secrets[SecretKubeconfig] = e.srv.KubeconfigWithToken("revoked")
	ctx := e.ctx(t)

	_, err := e.k.Resync(ctx, pdk.ResyncRequest{Kind: KindNamespace, Config: e.cfg})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "401") {
		t.Errorf("resync error = %v, want a 401", err)
	}
	w := &watchLoop{e: e}
	if _, err := w.next(t, 20_000); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "401") {
		t.Errorf("watch error = %v, want a 401", err)
	}
	_, err = e.k.Act(ctx, pdk.ActRequest{Action: ActionDeletePod, Config: e.cfg,
		Inputs: json.RawMessage(`{"namespace": "scraper", "name": "e2e-statefulset-0"}`)})
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("act error = %v, want a 401", err)
	}
	if e.srv.Count(standin.Pods) != 24 {
		t.Error("an unauthorized action deleted a pod")
	}
}

func TestBadConfig(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	for _, tc := range []struct {
		name, cfg, kubeconfig string
		want                  error
		says                  string
	}{
		{"no cluster", `{}`, e.srv.Kubeconfig(), ErrBadConfig, "cluster"},
		{"cluster with slash", `{"cluster": "a/b"}`, e.srv.Kubeconfig(), ErrBadConfig, "cluster"},
		{"bad namespace", `{"cluster": "c", "namespaces": ["Not_A_Label"]}`, e.srv.Kubeconfig(), ErrBadConfig, "Not_A_Label"},
		{"no kubeconfig", `{"cluster": "c"}`, "", ErrBadKubeconfig, "no \"kubeconfig\" secret"},
		{"exec credentials", `{"cluster": "c"}`, strings.Replace(e.srv.Kubeconfig(), "    token: "+e.srv.Token(),
			"    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws", 1), ErrBadKubeconfig, "exec"},
		{"CA file", `{"cluster": "c"}`, strings.Replace(e.srv.Kubeconfig(), "certificate-authority-data:",
			"certificate-authority: /etc/ca.pem\n    x:", 1), ErrBadKubeconfig, "certificate-authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.host.secrets[SecretKubeconfig] = tc.kubeconfig
			_, err := e.k.Resync(e.ctx(t), pdk.ResyncRequest{Kind: KindCluster, Config: json.RawMessage(tc.cfg)})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error = %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}

// TestWatchEvents: additions, changes and deletions in the cluster reach
// watch results.
func TestWatchEvents(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	w := &watchLoop{e: e}
	w.start(t)

	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}
	web := standin.Workload("Deployment", "default", "web", map[string]string{AppLabel: "web"}, spec, 2)
	if err := e.srv.Apply(web); err != nil {
		t.Fatal(err)
	}
	w.until(t, "the new deployment", func(r *pdk.WatchResult) bool {
		return hasItem(r.Upserts, KindWorkload, map[string]any{"name": "web", "replicas": 2, "hasLatestTag": true, "app": "web"})
	})

	if err := e.srv.Update(standin.Deployments, "default", "web", func(o runtime.Object) error {
		d := o.(*appsv1.Deployment)
		d.Status.ReadyReplicas = 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w.until(t, "the deployment's change", func(r *pdk.WatchResult) bool {
		return hasItem(r.Upserts, KindWorkload, map[string]any{"name": "web", "readyReplicas": 1, "isHealthy": false})
	})

	if err := e.srv.Delete(standin.Pods, "scraper", "e2e-statefulset-1"); err != nil {
		t.Fatal(err)
	}
	w.until(t, "the pod's deletion", func(r *pdk.WatchResult) bool {
		return hasItem(r.Deletes, KindPod, map[string]any{"cluster": "prod", "namespace": "scraper", "name": "e2e-statefulset-1"})
	})

	if err := e.srv.Apply(&corev1.Namespace{}); err == nil {
		t.Fatal("the stand-in took a namespace without a name")
	}
	ns := &corev1.Namespace{}
	ns.Name = "payments"
	if err := e.srv.Apply(ns); err != nil {
		t.Fatal(err)
	}
	w.until(t, "the new namespace", func(r *pdk.WatchResult) bool {
		return hasItem(r.Upserts, KindNamespace, map[string]any{"cluster": "prod", "name": "payments"})
	})
}

// TestWatchIdleReturnsEmpty: with nothing changing, a watch call returns
// an empty result once its wait has passed, keeping the cursor.
func TestWatchIdleReturnsEmpty(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	w := &watchLoop{e: e}
	w.start(t)
	before := w.cursor
	res, err := w.next(t, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Upserts)+len(res.Deletes) != 0 || res.Resync || res.Cursor != before {
		t.Fatalf("idle watch = %+v (cursor before %q)", res, before)
	}
}

// TestWatchReconnects: dropped watch streams are re-opened by client-go
// and later changes still arrive.
func TestWatchReconnects(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	w := &watchLoop{e: e}
	w.start(t)
	opened := e.srv.Watches()
	if opened == 0 {
		t.Fatal("no watch open after the informers synced")
	}
	watchRequests := func() int {
		n := 0
		for _, r := range e.srv.Requests() {
			if strings.Contains(r.Query, "watch=true") {
				n++
			}
		}
		return n
	}
	before := watchRequests()
	e.srv.DropWatches()
	if err := e.srv.Update(standin.Deployments, "default", "foo", func(o runtime.Object) error {
		o.(*appsv1.Deployment).Labels = map[string]string{"team": "payments"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w.until(t, "the change made while the watches were down", func(r *pdk.WatchResult) bool {
		return hasItem(r.Upserts, KindWorkload, map[string]any{"name": "foo", "labels": map[string]string{"team": "payments"}})
	})
	if after := watchRequests(); after <= before {
		t.Fatalf("no new watch request after the drop (%d before, %d after)", before, after)
	}
}

// TestWatchListFallback: against an API server that refuses watch-list
// requests, client-go falls back to list + watch and events still flow.
func TestWatchListFallback(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	e.srv.RefuseWatchList(true)
	w := &watchLoop{e: e}
	w.start(t)
	if err := e.srv.Delete(standin.Deployments, "default", "foo"); err != nil {
		t.Fatal(err)
	}
	w.until(t, "the deployment's deletion", func(r *pdk.WatchResult) bool {
		return hasItem(r.Deletes, KindWorkload, map[string]any{"name": "foo", "kind": "Deployment"})
	})
	var refused, listed bool
	for _, r := range e.srv.Requests() {
		refused = refused || r.Status == http.StatusUnprocessableEntity && strings.Contains(r.Query, "sendInitialEvents=true")
		listed = listed || r.Path == "/apis/apps/v1/deployments" && !strings.Contains(r.Query, "watch")
	}
	if !refused || !listed {
		t.Fatalf("refused watch-list: %v, fallback list: %v", refused, listed)
	}
}

// TestWatchUsesWatchList: with a capable API server, informers start with
// a watch-list request, not a list.
func TestWatchUsesWatchList(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	(&watchLoop{e: e}).start(t)
	var watchList, list bool
	for _, r := range e.srv.Requests() {
		if r.Path != "/api/v1/pods" {
			continue
		}
		watchList = watchList || strings.Contains(r.Query, "sendInitialEvents=true") && r.Status == http.StatusOK
		list = list || !strings.Contains(r.Query, "watch")
	}
	if !watchList || list {
		t.Fatalf("pods informer: watch-list %v, plain list %v", watchList, list)
	}
}

// TestWatchAfterConfigChange: a new config means new informers; the old
// cursor then asks for a resync.
func TestWatchAfterConfigChange(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	w := &watchLoop{e: e}
	w.start(t)
	e.cfg = json.RawMessage(`{"cluster": "prod", "pods": false}`)
	w.start(t) // fails unless the old cursor leads to a resync request
}

func TestActions(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	w := &watchLoop{e: e}
	w.start(t)
	ctx := e.ctx(t)
	entity := func(bp, id string) json.RawMessage {
		return json.RawMessage(mustJSON(map[string]any{"blueprint": bp, "identifier": id, "properties": map[string]any{}}))
	}

	res, err := e.k.Act(ctx, pdk.ActRequest{Action: ActionScale, Config: e.cfg,
		Entity: entity(BlueprintWorkload, "prod/default/Deployment/foo"), Inputs: json.RawMessage(`{"replicas": 5}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Message, "from 3 to 5") {
		t.Errorf("scale message = %q", res.Message)
	}
	obj, _ := e.srv.Get(standin.Deployments, "default", "foo")
	if got := *obj.(*appsv1.Deployment).Spec.Replicas; got != 5 {
		t.Fatalf("stand-in replicas = %d after scale to 5", got)
	}
	var scalePut *standin.Request
	for _, r := range e.srv.Requests() {
		if r.Method == http.MethodPut && strings.HasSuffix(r.Path, "/deployments/foo/scale") {
			scalePut = &r
		}
	}
	if scalePut == nil || scalePut.Status != http.StatusOK {
		t.Fatalf("scale PUT = %+v", scalePut)
	}
	// client-go's typed UpdateScale sends protobuf: the stand-in decoded it.
	if scalePut.ContentType != "application/vnd.kubernetes.protobuf" {
		t.Errorf("scale PUT content type %q, want protobuf", scalePut.ContentType)
	}
	w.until(t, "the scaled deployment", func(r *pdk.WatchResult) bool {
		return hasItem(r.Upserts, KindWorkload, map[string]any{"name": "foo", "replicas": 5})
	})

	if _, err := e.k.Act(ctx, pdk.ActRequest{Action: ActionRestart, Config: e.cfg,
		Inputs: json.RawMessage(`{"namespace": "scraper", "kind": "StatefulSet", "name": "e2e-statefulset"}`)}); err != nil {
		t.Fatal(err)
	}
	obj, _ = e.srv.Get(standin.StatefulSets, "scraper", "e2e-statefulset")
	if obj.(*appsv1.StatefulSet).Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
		t.Fatal("restart did not set the restartedAt annotation")
	}

	if _, err := e.k.Act(ctx, pdk.ActRequest{Action: ActionDeletePod, Config: e.cfg,
		Entity: entity(BlueprintPod, "prod/scraper/e2e-deployment-79967c5968-zjslc")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.Get(standin.Pods, "scraper", "e2e-deployment-79967c5968-zjslc"); !errors.Is(err, standin.ErrNotFound) {
		t.Fatalf("pod still there after deletePod: %v", err)
	}
	w.until(t, "the deleted pod", func(r *pdk.WatchResult) bool {
		return hasItem(r.Deletes, KindPod, map[string]any{"name": "e2e-deployment-79967c5968-zjslc"})
	})
}

func TestActionErrors(t *testing.T) {
	e := fixtureEnv(t, fixtureCfg)
	ctx := e.ctx(t)
	for _, tc := range []struct {
		name, action, entity, inputs string
		want                         string
	}{
		{"other cluster", ActionScale, `{"blueprint": "k8sWorkload", "identifier": "staging/default/Deployment/foo"}`, `{"replicas": 1}`, `belongs to cluster "staging"`},
		{"pod as workload", ActionScale, `{"blueprint": "k8sPod", "identifier": "prod/default/foo"}`, `{"replicas": 1}`, "is not a k8sWorkload"},
		{"no replicas", ActionScale, `{"blueprint": "k8sWorkload", "identifier": "prod/default/Deployment/foo"}`, `{}`, "replicas"},
		{"daemonset scale", ActionScale, `{"blueprint": "k8sWorkload", "identifier": "prod/kube-system/DaemonSet/kube-proxy"}`, `{"replicas": 1}`, "cannot be scaled"},
		{"no target", ActionDeletePod, ``, `{"name": "x"}`, "do not name"},
		{"missing object", ActionScale, `{"blueprint": "k8sWorkload", "identifier": "prod/default/Deployment/nope"}`, `{"replicas": 1}`, "not found"},
		{"unknown action", "drain", ``, ``, "unknown action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.k.Act(ctx, pdk.ActRequest{Action: tc.action, Config: e.cfg,
				Entity: json.RawMessage(tc.entity), Inputs: json.RawMessage(tc.inputs)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestServiceRelation: a workload's service is set only when the catalog
// has a service entity of its app label's name.
func TestServiceRelation(t *testing.T) {
	e := newEnv(t, `{"cluster": "c1"}`, standin.Generate(1, 3, 0)...)
	e.host.services["app-00001"] = true
	items, _, err := e.resyncAll(t, KindWorkload)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range decodeItems(t, items) {
		want := ""
		if it["app"] == "app-00001" {
			want = "app-00001"
		}
		if got, _ := it["service"].(string); got != want {
			t.Errorf("workload %v: service %q, want %q", it["name"], got, want)
		}
	}
	lookups := e.host.lookups
	if _, _, err := e.resyncAll(t, KindWorkload); err != nil {
		t.Fatal(err)
	}
	if e.host.lookups != lookups {
		t.Errorf("a second resync within the TTL looked services up again (%d → %d)", lookups, e.host.lookups)
	}
}
