package integrationtests

import (
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/portico-dev/portico/plugins/kubernetes/standin"
)

// BenchmarkKubernetesInitialSync: one PUT of an installation (pods on)
// until its first resync has put 10,000 pods and 2,000 workloads (and 20
// namespaces, the cluster) into the catalog of `portico serve` on real
// Redis. Each iteration installs a new cluster name. Target: ≤ 10 s.
//
//	go test ./integration-tests -run '^$' -bench BenchmarkKubernetesInitialSync -benchtime 1x
func BenchmarkKubernetesInitialSync(b *testing.B) {
	srv, err := standin.New(standin.Generate(20, 2000, 10_000)...)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	p := startBundled(b)
	const want = 10_000 + 2000 + 20 + 1
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("k8s-%d", i)
		start := time.Now()
		installK8s(p, id, fmt.Sprintf("c%d", i), srv)
		end := start.Add(5 * time.Minute)
		for {
			status, lastErr, s := lastSync(p, id)
			if status == "succeeded" {
				if got := int(s["upserts"].(float64)) + int(s["unchanged"].(float64)); got != want {
					b.Fatalf("first sync wrote %d entities, want %d: %v", got, want, s)
				}
				break
			}
			if status == "failed" || time.Now().After(end) {
				b.Fatalf("first sync: %s %s %v", status, lastErr, s)
			}
			time.Sleep(50 * time.Millisecond)
		}
		total += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(total.Seconds()/float64(b.N), "s/sync")
	b.ReportMetric(float64(want*b.N)/total.Seconds(), "entities/s")
}

// BenchmarkKubernetesWatch: a change of a Deployment in the cluster until
// the catalog entity shows it (readyReplicas), through client-go's watch,
// the plugin's watch export and the host's watch loop; one change at a
// time. Reports p50 and p99. Target: p99 ≤ 1 s.
//
//	go test ./integration-tests -run '^$' -bench BenchmarkKubernetesWatch -benchtime 200x
func BenchmarkKubernetesWatch(b *testing.B) {
	srv, err := standin.New(standin.Generate(5, 200, 1000)...)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	p := startBundled(b)
	installK8s(p, "k8s", "c1", srv)
	const ns, name = "team-000", "app-00000" // a Deployment
	id := "c1/" + ns + "/Deployment/" + name
	waitEntity(p, "k8sWorkload", id, "synced", func(e map[string]any) bool { return e != nil })

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		n := int32(i%50 + 2)
		start := time.Now()
		if err := srv.Update(standin.Deployments, ns, name, func(o runtime.Object) error {
			o.(*appsv1.Deployment).Status.ReadyReplicas = n
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		for {
			if e := k8sEntity(p, "k8sWorkload", id); e != nil && e["readyReplicas"] == float64(n) {
				break
			}
			if time.Since(start) > k8sDeadline {
				b.Fatalf("change %d not in the catalog within %s", i, k8sDeadline)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
}
