package main

import (
	"encoding/json"

	"github.com/portico-dev/portico/pdk"
)

const (
	name    = "kubernetes"
	version = "0.1.0"
)

// Blueprints the plugin declares.
const (
	BlueprintCluster   = "k8sCluster"
	BlueprintNamespace = "k8sNamespace"
	BlueprintWorkload  = "k8sWorkload"
	BlueprintPod       = "k8sPod"
)

const clusterBlueprint = `{"identifier": "k8sCluster", "title": "Kubernetes cluster",
 "schema": {"properties": {
  "server": {"type": "string", "format": "url", "title": "API server"},
  "version": {"type": "string", "title": "Kubernetes version"}}}}`

const namespaceBlueprint = `{"identifier": "k8sNamespace", "title": "Kubernetes namespace",
 "schema": {"properties": {
  "phase": {"type": "string", "title": "Phase"},
  "labels": {"type": "object", "title": "Labels"},
  "createdAt": {"type": "string", "format": "date-time", "title": "Created"}}},
 "relations": {"cluster": {"title": "Cluster", "target": "k8sCluster", "many": false}}}`

const workloadBlueprint = `{"identifier": "k8sWorkload", "title": "Kubernetes workload",
 "schema": {"properties": {
  "kind": {"type": "string", "enum": ["Deployment", "StatefulSet", "DaemonSet"], "title": "Kind"},
  "replicas": {"type": "integer", "title": "Desired replicas"},
  "readyReplicas": {"type": "integer", "title": "Ready replicas"},
  "images": {"type": "array", "items": {"type": "string"}, "title": "Images"},
  "hasLatestTag": {"type": "boolean", "title": "Runs a :latest or untagged image"},
  "hasLimits": {"type": "boolean", "title": "Every container has CPU and memory limits"},
  "isHealthy": {"type": "boolean", "title": "Healthy"},
  "labels": {"type": "object", "title": "Labels"},
  "app": {"type": "string", "title": "app.kubernetes.io/name"},
  "createdAt": {"type": "string", "format": "date-time", "title": "Created"}}},
 "relations": {"namespace": {"title": "Namespace", "target": "k8sNamespace", "many": false}}}`

const podBlueprint = `{"identifier": "k8sPod", "title": "Kubernetes pod",
 "schema": {"properties": {
  "phase": {"type": "string", "title": "Phase"},
  "node": {"type": "string", "title": "Node"},
  "restarts": {"type": "integer", "title": "Container restarts"},
  "ready": {"type": "boolean", "title": "Ready"},
  "images": {"type": "array", "items": {"type": "string"}, "title": "Images"},
  "createdAt": {"type": "string", "format": "date-time", "title": "Created"}}},
 "relations": {"namespace": {"title": "Namespace", "target": "k8sNamespace", "many": false},
               "workload": {"title": "Workload", "target": "k8sWorkload", "many": false}}}`

// Identifiers: "<cluster>", "<cluster>/<ns>", "<cluster>/<ns>/<Kind>/<name>"
// (workloads) and "<cluster>/<ns>/<name>" (pods).
var mappings = pdk.Mappings{Resources: []pdk.ResourceMapping{
	{Kind: KindCluster, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: ".cluster", Title: ".cluster", Blueprint: `"k8sCluster"`,
		Properties: map[string]string{"server": ".server", "version": ".version"},
	}},
	{Kind: KindNamespace, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: `.cluster + "/" + .name`, Title: ".name", Blueprint: `"k8sNamespace"`,
		Properties: map[string]string{"phase": ".phase", "labels": ".labels", "createdAt": ".createdAt"},
		Relations:  map[string]string{"cluster": ".cluster"},
	}},
	{Kind: KindWorkload, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: `.cluster + "/" + .namespace + "/" + .kind + "/" + .name`, Title: ".name",
		Blueprint: `"k8sWorkload"`,
		Properties: map[string]string{
			"kind": ".kind", "replicas": ".replicas", "readyReplicas": ".readyReplicas",
			"images": ".images", "hasLatestTag": ".hasLatestTag", "hasLimits": ".hasLimits",
			"isHealthy": ".isHealthy", "labels": ".labels", "app": ".app", "createdAt": ".createdAt",
		},
		// .service is set only when the catalog has that service entity
		// and the installation may read it (see README: relation to
		// services); a null relation is left out.
		Relations: map[string]string{"namespace": `.cluster + "/" + .namespace`, "service": ".service"},
	}},
	{Kind: KindPod, Selector: "true", Entity: pdk.EntityMapping{
		Identifier: `.cluster + "/" + .namespace + "/" + .name`, Title: ".name", Blueprint: `"k8sPod"`,
		Properties: map[string]string{
			"phase": ".phase", "node": ".node", "restarts": ".restarts",
			"ready": ".ready", "images": ".images", "createdAt": ".createdAt",
		},
		Relations: map[string]string{
			"namespace": `.cluster + "/" + .namespace`,
			"workload":  `if .workload then .cluster + "/" + .namespace + "/" + .workload else null end`,
		},
	}},
}}

// Actions.
const (
	ActionScale     = "scale"
	ActionRestart   = "restart"
	ActionDeletePod = "deletePod"
)

const workloadInputs = `
  "namespace": {"type": "string", "description": "Without an entity: the workload's namespace"},
  "kind": {"type": "string", "enum": ["Deployment", "StatefulSet", "DaemonSet"], "description": "Without an entity: the workload's kind"},
  "name": {"type": "string", "description": "Without an entity: the workload's name"}`

var actions = []pdk.Action{
	{Name: ActionScale, Title: "Scale", Description: "Set the replicas of a Deployment or StatefulSet (k8sWorkload entity).",
		Inputs: json.RawMessage(`{"type": "object", "required": ["replicas"], "properties": {
  "replicas": {"type": "integer", "minimum": 0, "maximum": 10000},` + workloadInputs + `}}`)},
	{Name: ActionRestart, Title: "Rollout restart", Description: "Restart the pods of a workload, as kubectl rollout restart does (k8sWorkload entity).",
		Inputs: json.RawMessage(`{"type": "object", "properties": {` + workloadInputs + `}}`)},
	{Name: ActionDeletePod, Title: "Delete pod", Description: "Delete a pod (k8sPod entity, or inputs namespace and name); its controller replaces it.",
		Inputs: json.RawMessage(`{"type": "object", "properties": {
  "namespace": {"type": "string"}, "name": {"type": "string"}}}`)},
}

func info() *pdk.Info {
	return &pdk.Info{
		Name:        name,
		Version:     version,
		Description: "Syncs clusters, namespaces, workloads and (optionally) pods from Kubernetes, live through informers; scales, restarts and deletes pods.",
		Kinds: []pdk.Kind{
			{Kind: KindCluster, Description: "The cluster itself (one item)"},
			{Kind: KindNamespace, Description: "A namespace"},
			{Kind: KindWorkload, Description: "A Deployment, StatefulSet or DaemonSet"},
			{Kind: KindPod, Description: "A pod (config pods: true)"},
		},
		Blueprints: []json.RawMessage{json.RawMessage(clusterBlueprint), json.RawMessage(namespaceBlueprint),
			json.RawMessage(workloadBlueprint), json.RawMessage(podBlueprint)},
		Mappings: mappings,
		Config:   json.RawMessage(configSchema),
		Secrets:  []string{SecretKubeconfig},
		Actions:  actions,
		Watch:    true,
	}
}
