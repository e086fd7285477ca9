package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/portico-dev/portico/pdk"
)

// config is an installation's configuration (see configSchema).
type config struct {
	// Cluster names the cluster: the k8sCluster identifier and the first
	// part of every other identifier.
	Cluster string `json:"cluster"`
	// Namespaces limits the sync to these namespaces; empty means all.
	Namespaces []string `json:"namespaces,omitempty"`
	// Pods adds k8sPod entities.
	Pods bool `json:"pods,omitempty"`
	// InCluster uses the service account of the pod the plugin runs in
	// instead of the kubeconfig secret.
	InCluster bool `json:"inCluster,omitempty"`
}

const configSchema = `{"type": "object", "required": ["cluster"], "additionalProperties": false,
 "properties": {
  "cluster": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
              "description": "Name of the cluster: the k8sCluster identifier and the prefix of the other identifiers"},
  "namespaces": {"type": "array", "items": {"type": "string"},
                 "description": "Namespaces to sync; empty or absent: all"},
  "pods": {"type": "boolean", "description": "Also sync pods (k8sPod)"},
  "inCluster": {"type": "boolean", "description": "Use the service account of the pod the plugin runs in instead of the kubeconfig secret"}}}`

// SecretKubeconfig is the installation secret holding the kubeconfig
// file's contents.
const SecretKubeconfig = "kubeconfig"

var (
	clusterPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	namespacePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// ErrBadConfig wraps every configuration problem.
var ErrBadConfig = errors.New("bad config")

func decodeConfig(raw json.RawMessage) (config, error) {
	cfg, err := pdk.DecodeConfig[config](raw)
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	if !clusterPattern.MatchString(cfg.Cluster) {
		return cfg, fmt.Errorf("%w: cluster %q: want 1-63 letters, digits, '_', '.' or '-'", ErrBadConfig, cfg.Cluster)
	}
	for _, ns := range cfg.Namespaces {
		if !namespacePattern.MatchString(ns) {
			return cfg, fmt.Errorf("%w: namespace %q is not a DNS label", ErrBadConfig, ns)
		}
	}
	slices.Sort(cfg.Namespaces)
	cfg.Namespaces = slices.Compact(cfg.Namespaces)
	return cfg, nil
}

// watchesNamespace reports whether the config covers namespace ns.
func (c config) watchesNamespace(ns string) bool {
	return len(c.Namespaces) == 0 || slices.Contains(c.Namespaces, ns)
}

// key identifies what a set of informers was built from: the config and
// the kubeconfig. A change of either means new informers.
func (c config) key(kubeconfig string) string {
	b, _ := json.Marshal(c)
	h := sha256.New()
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(kubeconfig))
	return hex.EncodeToString(h.Sum(nil))
}

// ErrBadKubeconfig wraps every problem of the kubeconfig secret.
var ErrBadKubeconfig = errors.New("bad kubeconfig")

// restConfigFromKubeconfig builds a client config from the kubeconfig
// secret's current context. Everything must be inline: the portal's
// files, environment and credential plugins are never used, so file
// references, exec and auth-provider credentials are refused.
func restConfigFromKubeconfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return nil, fmt.Errorf("%w: the installation has no %q secret", ErrBadKubeconfig, SecretKubeconfig)
	}
	cfg, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKubeconfig, err)
	}
	ctxName := cfg.CurrentContext
	kctx := cfg.Contexts[ctxName]
	if kctx == nil {
		return nil, fmt.Errorf("%w: current-context %q not found", ErrBadKubeconfig, ctxName)
	}
	cluster, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
	if cluster == nil {
		return nil, fmt.Errorf("%w: cluster %q of context %q not found", ErrBadKubeconfig, kctx.Cluster, ctxName)
	}
	if cluster.CertificateAuthority != "" {
		return nil, fmt.Errorf("%w: cluster %q: certificate-authority names a file; inline it as certificate-authority-data", ErrBadKubeconfig, kctx.Cluster)
	}
	if user != nil {
		if err := inlineOnly(kctx.AuthInfo, user); err != nil {
			return nil, err
		}
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, ctxName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKubeconfig, err)
	}
	return rc, nil
}

func inlineOnly(name string, u *clientcmdapi.AuthInfo) error {
	switch {
	case u.Exec != nil:
		return fmt.Errorf("%w: user %q uses an exec credential plugin; use a token or an inline client certificate", ErrBadKubeconfig, name)
	case u.AuthProvider != nil:
		return fmt.Errorf("%w: user %q uses an auth-provider; use a token or an inline client certificate", ErrBadKubeconfig, name)
	case u.TokenFile != "":
		return fmt.Errorf("%w: user %q: tokenFile names a file; inline the token", ErrBadKubeconfig, name)
	case u.ClientCertificate != "" || u.ClientKey != "":
		return fmt.Errorf("%w: user %q: client-certificate/client-key name files; inline them as …-data", ErrBadKubeconfig, name)
	}
	return nil
}

// restConfig returns the client config of an installation: its kubeconfig
// secret or, when asked, the pod's own service account.
func restConfig(cfg config, kubeconfig string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if cfg.InCluster {
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
	} else if rc, err = restConfigFromKubeconfig(kubeconfig); err != nil {
		return nil, err
	}
	// Resync pages and actions are few large requests; client-go's
	// default of 5/s would throttle a resync of a big cluster.
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "portico-kubernetes/" + version
	return rc, nil
}
