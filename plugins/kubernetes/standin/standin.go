// Package standin is a fake kube-apiserver for tests and benchmarks of the
// Kubernetes integration. It speaks the real wire format over HTTPS for
// the resources the plugin uses (namespaces, pods, deployments,
// statefulsets, daemonsets): lists paginated with limit/continue over a
// consistent snapshot, watches as chunked JSON event streams with
// BOOKMARKs, the watch-list request client-go informers try first,
// get/patch/delete, the scale subresource (whose typed update client-go
// sends as protobuf) and bearer-token authentication, so client-go's own
// code paths run against it.
//
// Knobs let a test change objects (each change is a watch event), drop
// watches, fail lists with an HTTP status and revoke the token.
package standin

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Server is a running stand-in API server.
type Server struct {
	srv *httptest.Server

	mu              sync.Mutex
	token           string
	st              *store
	watchers        map[*watcher]struct{}
	snapshots       map[string]*snapshot
	failCode        int // lists answer this status from page failFrom on
	failFrom        int
	refuseWatchList bool
	bookmarkEvery   time.Duration

	reqMu    sync.Mutex // guards requests; may be taken while mu is held, never the reverse
	requests []Request
}

// Request is one request the stand-in served, for tests to assert on.
type Request struct {
	Method      string
	Path        string
	Query       string
	ContentType string
	Status      int
}

// New starts a stand-in holding objs (see Fixtures and Generate). Close it
// when done.
func New(objs ...runtime.Object) (*Server, error) {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	s := &Server{
		token:         hex.EncodeToString(tok),
		st:            newStore(),
		watchers:      map[*watcher]struct{}{},
		snapshots:     map[string]*snapshot{},
		bookmarkEvery: 2 * time.Second,
	}
	for _, o := range objs {
		if _, err := s.st.put(o); err != nil {
			return nil, err
		}
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	// Clients that go away mid-handshake are normal here (dropped
	// watches, closed informers).
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	return s, nil
}

// Close drops every watch and stops the server.
func (s *Server) Close() {
	s.DropWatches()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// URL is the server's https:// address.
func (s *Server) URL() string { return s.srv.URL }

// Token is the bearer token the server currently accepts.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// SetToken changes the accepted bearer token: clients holding the old one
// get 401 from then on.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Kubeconfig returns a kubeconfig (YAML) for the server: its URL, its CA
// certificate inline and the current token.
func (s *Server) Kubeconfig() string {
	return s.KubeconfigWithToken(s.Token())
}

// KubeconfigWithToken is Kubeconfig with another token.
func (s *Server) KubeconfigWithToken(token string) string {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: portico
  user:
    token: %s
contexts:
- name: standin
  context:
    cluster: standin
    user: portico
current-context: standin
`, s.srv.URL, base64.StdEncoding.EncodeToString(ca), token)
}

// FailLists makes list requests answer code (e.g. 500) from their page
// number fromPage on (1 = every list, 2 = every page after the first);
// code 0 ends the failures.
func (s *Server) FailLists(code, fromPage int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCode, s.failFrom = code, fromPage
}

// RefuseWatchList makes watch-list requests (sendInitialEvents=true) fail
// as from an API server without the WatchList feature: client-go falls
// back to list + watch.
func (s *Server) RefuseWatchList(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseWatchList = refuse
}

// SetBookmarkInterval sets how often open watches that allow bookmarks
// get one (default 2 s).
func (s *Server) SetBookmarkInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bookmarkEvery = d
}

// Requests returns the requests served so far.
func (s *Server) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Watches returns how many watch streams are open.
func (s *Server) Watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers)
}

// DropWatches ends every open watch stream; clients must reconnect.
func (s *Server) DropWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		w.stop()
		delete(s.watchers, w)
	}
}

// Apply creates or replaces an object (a copy of obj) and emits the
// matching ADDED or MODIFIED event.
func (s *Server) Apply(obj runtime.Object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, err := s.st.put(obj)
	if err != nil {
		return err
	}
	s.notify(ev)
	return nil
}

// Update changes an object in place through f (which gets a copy) and
// emits a MODIFIED event.
func (s *Server) Update(res, namespace, name string, f func(runtime.Object) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.update(res, namespace, name, f)
	return err
}

func (s *Server) update(res, namespace, name string, f func(runtime.Object) error) (*stored, error) {
	old := s.st.objects[res][namespace+"/"+name]
	if old == nil {
		return nil, fmt.Errorf("%s %s/%s: %w", res, namespace, name, ErrNotFound)
	}
	obj := old.obj.DeepCopyObject()
	if err := f(obj); err != nil {
		return nil, err
	}
	ev, err := s.st.put(obj)
	if err != nil {
		return nil, err
	}
	s.notify(ev)
	return ev.obj, nil
}

// Delete removes an object and emits a DELETED event.
func (s *Server) Delete(res, namespace, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delete(res, namespace, name)
}

func (s *Server) delete(res, namespace, name string) error {
	ev, ok, err := s.st.remove(res, namespace, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s %s/%s: %w", res, namespace, name, ErrNotFound)
	}
	s.notify(ev)
	return nil
}

// Forget removes an object without a watch event, as if the watches
// missed its deletion: only a new list shows it gone.
func (s *Server) Forget(res, namespace, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.objects[res][namespace+"/"+name] == nil {
		return fmt.Errorf("%s %s/%s: %w", res, namespace, name, ErrNotFound)
	}
	delete(s.st.objects[res], namespace+"/"+name)
	s.st.rv++
	return nil
}

// Get returns a copy of an object.
func (s *Server) Get(res, namespace, name string) (runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.st.objects[res][namespace+"/"+name]
	if o == nil {
		return nil, fmt.Errorf("%s %s/%s: %w", res, namespace, name, ErrNotFound)
	}
	return o.obj.DeepCopyObject(), nil
}

// Count returns how many objects of res the server holds.
func (s *Server) Count(res string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.st.objects[res])
}

// ErrNotFound: no such object.
var ErrNotFound = errors.New("not found")

func gvk(res resource) schema.GroupVersionKind {
	gv, _ := schema.ParseGroupVersion(res.apiVersion)
	return gv.WithKind(res.kind)
}
