package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/portico-dev/portico/pdk"
)

// ErrBadTarget: an action's entity or inputs do not name an object of
// this installation's cluster.
var ErrBadTarget = errors.New("bad action target")

// target is the object an action works on.
type target struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Replicas  *int32 `json:"replicas"`
}

// actTarget reads the target from the entity (its identifier) or, without
// one, from the inputs.
func actTarget(cluster, blueprint string, req pdk.ActRequest) (target, error) {
	var t target
	if len(req.Inputs) > 0 && string(req.Inputs) != "null" {
		if err := json.Unmarshal(req.Inputs, &t); err != nil {
			return t, fmt.Errorf("%w: inputs: %v", ErrBadTarget, err)
		}
	}
	if len(req.Entity) == 0 || string(req.Entity) == "null" {
		if t.Namespace == "" || t.Name == "" || (blueprint == BlueprintWorkload && t.Kind == "") {
			return t, fmt.Errorf("%w: no entity, and the inputs do not name the object", ErrBadTarget)
		}
		return t, nil
	}
	var e struct {
		Blueprint  string `json:"blueprint"`
		Identifier string `json:"identifier"`
	}
	if err := json.Unmarshal(req.Entity, &e); err != nil {
		return t, fmt.Errorf("%w: entity: %v", ErrBadTarget, err)
	}
	if e.Blueprint != blueprint {
		return t, fmt.Errorf("%w: entity %s/%s is not a %s", ErrBadTarget, e.Blueprint, e.Identifier, blueprint)
	}
	parts := strings.Split(e.Identifier, "/")
	want := 3 // cluster/ns/name
	if blueprint == BlueprintWorkload {
		want = 4 // cluster/ns/Kind/name
	}
	if len(parts) != want {
		return t, fmt.Errorf("%w: entity identifier %q is not a %s identifier", ErrBadTarget, e.Identifier, blueprint)
	}
	if parts[0] != cluster {
		return t, fmt.Errorf("%w: entity %s belongs to cluster %q, this installation manages %q", ErrBadTarget, e.Identifier, parts[0], cluster)
	}
	t.Namespace, t.Name = parts[1], parts[len(parts)-1]
	if blueprint == BlueprintWorkload {
		t.Kind = parts[2]
	}
	return t, nil
}

func (c *cluster) act(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	switch req.Action {
	case ActionScale:
		return c.scale(ctx, req)
	case ActionRestart:
		return c.restart(ctx, req)
	case ActionDeletePod:
		return c.deletePod(ctx, req)
	}
	return nil, fmt.Errorf("unknown action %q", req.Action)
}

// scale sets the replicas through the scale subresource (get, then
// update with its resource version: a concurrent change is retried).
func (c *cluster) scale(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	t, err := actTarget(c.cfg.Cluster, BlueprintWorkload, req)
	if err != nil {
		return nil, err
	}
	if t.Replicas == nil || *t.Replicas < 0 {
		return nil, fmt.Errorf("%w: inputs.replicas: want an integer ≥ 0", ErrBadTarget)
	}
	n := *t.Replicas
	var before int32
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		switch t.Kind {
		case "Deployment":
			d := c.client.AppsV1().Deployments(t.Namespace)
			sc, err := d.GetScale(ctx, t.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			before, sc.Spec.Replicas = sc.Spec.Replicas, n
			_, err = d.UpdateScale(ctx, t.Name, sc, metav1.UpdateOptions{})
			return err
		case "StatefulSet":
			s := c.client.AppsV1().StatefulSets(t.Namespace)
			sc, err := s.GetScale(ctx, t.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			before, sc.Spec.Replicas = sc.Spec.Replicas, n
			_, err = s.UpdateScale(ctx, t.Name, sc, metav1.UpdateOptions{})
			return err
		}
		return fmt.Errorf("%w: a %s cannot be scaled", ErrBadTarget, t.Kind)
	})
	if err != nil {
		if errors.Is(err, ErrBadTarget) {
			return nil, err
		}
		return nil, apiError(fmt.Sprintf("scale %s %s/%s", t.Kind, t.Namespace, t.Name), err)
	}
	return &pdk.ActResult{
		Message: fmt.Sprintf("scaled %s %s/%s from %d to %d replicas", t.Kind, t.Namespace, t.Name, before, n),
		Outputs: rawItem(map[string]any{"namespace": t.Namespace, "kind": t.Kind, "name": t.Name, "replicas": n, "previousReplicas": before}),
	}, nil
}

// restart patches the pod template's restartedAt annotation, as
// kubectl rollout restart does.
func (c *cluster) restart(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	t, err := actTarget(c.cfg.Cluster, BlueprintWorkload, req)
	if err != nil {
		return nil, err
	}
	at := time.Now().UTC().Format(time.RFC3339)
	patch := rawItem(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{"kubectl.kubernetes.io/restartedAt": at}}}}})
	apps := c.client.AppsV1()
	switch t.Kind {
	case "Deployment":
		_, err = apps.Deployments(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	case "StatefulSet":
		_, err = apps.StatefulSets(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	case "DaemonSet":
		_, err = apps.DaemonSets(t.Namespace).Patch(ctx, t.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	default:
		return nil, fmt.Errorf("%w: unknown workload kind %q", ErrBadTarget, t.Kind)
	}
	if err != nil {
		return nil, apiError(fmt.Sprintf("restart %s %s/%s", t.Kind, t.Namespace, t.Name), err)
	}
	return &pdk.ActResult{
		Message: fmt.Sprintf("restarted %s %s/%s", t.Kind, t.Namespace, t.Name),
		Outputs: rawItem(map[string]any{"namespace": t.Namespace, "kind": t.Kind, "name": t.Name, "restartedAt": at}),
	}, nil
}

func (c *cluster) deletePod(ctx context.Context, req pdk.ActRequest) (*pdk.ActResult, error) {
	t, err := actTarget(c.cfg.Cluster, BlueprintPod, req)
	if err != nil {
		return nil, err
	}
	if err := c.client.CoreV1().Pods(t.Namespace).Delete(ctx, t.Name, metav1.DeleteOptions{}); err != nil {
		return nil, apiError(fmt.Sprintf("delete pod %s/%s", t.Namespace, t.Name), err)
	}
	return &pdk.ActResult{
		Message: fmt.Sprintf("deleted pod %s/%s", t.Namespace, t.Name),
		Outputs: rawItem(map[string]any{"namespace": t.Namespace, "name": t.Name}),
	}, nil
}
