package integrationtests

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/portico-dev/portico/plugins/kubernetes/standin"
)

// k8sDeadline bounds every wait on the portal: generous, for a loaded
// machine.
const k8sDeadline = 60 * time.Second

// installK8s installs the bundled kubernetes plugin as id against srv.
func installK8s(p *proc, id, cluster string, srv *standin.Server) {
	p.t.Helper()
	if code, raw := p.call("GET", "/api/v1/plugins/kubernetes/0.1.0", nil); code != 200 {
		p.t.Fatalf("the bundled kubernetes plugin is not registered: %d %s\n%s", code, raw, p.output())
	}
	p.must("PUT", "/api/v1/integrations/"+id, map[string]any{
		"plugin":  "kubernetes",
		"config":  map[string]any{"cluster": cluster, "pods": true},
		"secrets": map[string]any{"kubeconfig": srv.Kubeconfig()},
		"limits":  map[string]any{"timeoutMs": 60_000},
	}, 201)
}

// entityPath is the URL path of an entity, its identifier escaped.
func entityPath(bp, id string) string {
	return "/api/v1/blueprints/" + bp + "/entities/" + url.PathEscape(id)
}

// k8sEntity returns an entity's properties, or nil when it does not exist.
func k8sEntity(p *proc, bp, id string) map[string]any {
	p.t.Helper()
	code, raw := p.call("GET", entityPath(bp, id), nil)
	if code == 404 {
		return nil
	}
	if code != 200 {
		p.t.Fatalf("GET %s/%s: %d %s", bp, id, code, raw)
	}
	var e struct{ Properties map[string]any }
	if err := json.Unmarshal(raw, &e); err != nil {
		p.t.Fatal(err)
	}
	return e.Properties
}

// waitEntity waits until ok accepts the entity's properties (nil: gone).
func waitEntity(p *proc, bp, id, what string, ok func(props map[string]any) bool) {
	p.t.Helper()
	end := time.Now().Add(k8sDeadline)
	for time.Now().Before(end) {
		if ok(k8sEntity(p, bp, id)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("%s/%s: not %s within %s", bp, id, what, k8sDeadline)
}

// lastSync returns the installation's last sync and last error.
func lastSync(p *proc, id string) (status, lastError string, sync map[string]any) {
	p.t.Helper()
	var st struct {
		LastSync  map[string]any
		LastError string
	}
	if err := json.Unmarshal(p.must("GET", "/api/v1/integrations/"+id, nil, 200), &st); err != nil {
		p.t.Fatal(err)
	}
	if st.LastSync == nil {
		return "", st.LastError, nil
	}
	s, _ := st.LastSync["status"].(string)
	return s, st.LastError, st.LastSync
}

// resyncAndWait starts a resync and waits for it to end.
func resyncAndWait(p *proc, id string) map[string]any {
	p.t.Helper()
	var started struct{ ID string }
	if err := json.Unmarshal(p.must("POST", "/api/v1/integrations/"+id+"/resync", nil, 202), &started); err != nil {
		p.t.Fatal(err)
	}
	end := time.Now().Add(k8sDeadline)
	for time.Now().Before(end) {
		var s map[string]any
		raw := p.must("GET", "/api/v1/integrations/"+id+"/syncs/"+started.ID, nil, 200)
		if err := json.Unmarshal(raw, &s); err != nil {
			p.t.Fatal(err)
		}
		if s["status"] != "running" {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("resync %s of %s did not end within %s", started.ID, id, k8sDeadline)
	return nil
}

// TestKubernetesIntegration installs the bundled plugin into `portico
// serve` on real Redis against the stand-in: the install's resync fills
// the catalog, a change in the cluster arrives through the watch, the
// scale action comes back through the watch, a pod whose deletion the
// watch missed is reconciled by the next resync, and a revoked token
// shows in the status while nothing is deleted.
func TestKubernetesIntegration(t *testing.T) {
	objs, err := standin.Fixtures()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := standin.New(objs...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p := startBundled(t)
	installK8s(p, "k8s", "prod", srv)

	foo := "prod/default/Deployment/foo"
	waitEntity(p, "k8sWorkload", foo, "synced", func(e map[string]any) bool { return e != nil && e["replicas"] == 3.0 })
	waitEntity(p, "k8sPod", "prod/scraper/e2e-statefulset-0", "synced", func(e map[string]any) bool { return e != nil })
	if e := k8sEntity(p, "k8sNamespace", "prod/kube-system"); e == nil || e["phase"] != "Active" {
		t.Fatalf("namespace kube-system = %v", e)
	}
	if e := k8sEntity(p, "k8sCluster", "prod"); e == nil || e["version"] != standin.Version {
		t.Fatalf("cluster = %v", e)
	}

	// A change in the cluster reaches the catalog through the watch.
	if err := srv.Update(standin.Deployments, "default", "foo", func(o runtime.Object) error {
		d := o.(*appsv1.Deployment)
		d.Status.ReadyReplicas = 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitEntity(p, "k8sWorkload", foo, "updated by the watch", func(e map[string]any) bool {
		return e["readyReplicas"] == 1.0 && e["isHealthy"] == false
	})

	// scale: the stand-in changes, and the change comes back.
	raw := p.must("POST", "/api/v1/integrations/k8s/actions/scale", map[string]any{
		"entity": map[string]any{"blueprint": "k8sWorkload", "identifier": foo},
		"inputs": map[string]any{"replicas": 6}}, 200)
	if !strings.Contains(string(raw), "from 3 to 6") {
		t.Errorf("scale result = %s", raw)
	}
	waitEntity(p, "k8sWorkload", foo, "scaled", func(e map[string]any) bool {
		return e["replicas"] == 6.0 && e["readyReplicas"] == 6.0
	})

	// A deletion the watch never saw: the next resync reconciles it.
	gone := "prod/scraper/e2e-failjob-64h4g"
	if err := srv.Forget(standin.Pods, "scraper", "e2e-failjob-64h4g"); err != nil {
		t.Fatal(err)
	}
	if k8sEntity(p, "k8sPod", gone) == nil {
		t.Fatal("the pod left the catalog before the resync")
	}
	if s := resyncAndWait(p, "k8s"); s["status"] != "succeeded" || s["deletes"] != 1.0 {
		t.Fatalf("resync = %v", s)
	}
	if k8sEntity(p, "k8sPod", gone) != nil {
		t.Fatal("the resync did not delete the pod gone from the cluster")
	}

	// A revoked token: the resync fails saying 401, nothing is deleted.
	srv.SetToken("rotated")
	s := resyncAndWait(p, "k8s")
	if s["status"] != "failed" || !strings.Contains(fmt.Sprint(s["errors"]), "401") {
		t.Fatalf("resync with a revoked token = %v", s)
	}
	if _, lastErr, _ := lastSync(p, "k8s"); !strings.Contains(lastErr, "401") {
		t.Errorf("installation lastError = %q, want it to say 401", lastErr)
	}
	if k8sEntity(p, "k8sWorkload", foo) == nil || k8sEntity(p, "k8sPod", "prod/scraper/e2e-statefulset-0") == nil {
		t.Fatal("entities deleted after a failed resync")
	}
}
