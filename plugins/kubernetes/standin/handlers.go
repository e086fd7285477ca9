package standin

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
)

// Version is what GET /version answers.
const Version = "v1.35.0"

// route is a parsed request path.
type route struct {
	res       resource
	namespace string
	name      string
	sub       string // "scale" or ""
}

// serveHTTP logs the request as it arrives (a watch lasts) and its status
// once written.
func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	s.reqMu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		ContentType: r.Header.Get("Content-Type")})
	i := len(s.requests) - 1
	s.reqMu.Unlock()
	s.handle(&statusRecorder{ResponseWriter: rw, s: s, i: i}, r)
}

// statusRecorder records the status of request i in the log.
type statusRecorder struct {
	http.ResponseWriter
	s *Server
	i int
}

func (w *statusRecorder) WriteHeader(code int) {
	w.s.reqMu.Lock()
	w.s.requests[w.i].Status = code
	w.s.reqMu.Unlock()
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) handle(rw http.ResponseWriter, r *http.Request) int {
	if !s.authorized(r) {
		return writeStatus(rw, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
	}
	if r.URL.Path == "/version" {
		return writeJSON(rw, http.StatusOK, map[string]string{
			"major": "1", "minor": "35", "gitVersion": Version, "platform": "linux/amd64"})
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		return writeStatus(rw, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	}
	switch {
	case rt.name == "" && r.Method == http.MethodGet && isWatch(r):
		return s.watch(rw, r, rt.res, rt.namespace)
	case rt.name == "" && r.Method == http.MethodGet:
		return s.list(rw, r, rt.res, rt.namespace)
	case rt.name == "":
		return writeStatus(rw, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
	case rt.sub == "scale":
		return s.scale(rw, r, rt)
	case r.Method == http.MethodGet:
		return s.get(rw, rt)
	case r.Method == http.MethodPatch:
		return s.patch(rw, r, rt)
	case r.Method == http.MethodDelete:
		return s.remove(rw, rt)
	}
	return writeStatus(rw, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	want := s.token
	s.mu.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func isWatch(r *http.Request) bool {
	w := r.URL.Query().Get("watch")
	return w == "true" || w == "1"
}

// parseRoute understands /api/v1/… and /apis/apps/v1/… paths of the
// served resources.
func parseRoute(path string) (route, bool) {
	var rest, apiVersion string
	switch {
	case strings.HasPrefix(path, "/api/v1/"):
		rest, apiVersion = strings.TrimPrefix(path, "/api/v1/"), "v1"
	case strings.HasPrefix(path, "/apis/apps/v1/"):
		rest, apiVersion = strings.TrimPrefix(path, "/apis/apps/v1/"), "apps/v1"
	default:
		return route{}, false
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	var rt route
	switch {
	case len(segs) == 1:
		rt.res = resources[segs[0]]
	case len(segs) == 2 && segs[0] == Namespaces && apiVersion == "v1":
		rt.res, rt.name = resources[Namespaces], segs[1]
	case len(segs) >= 3 && len(segs) <= 5 && segs[0] == Namespaces:
		rt.namespace, rt.res = segs[1], resources[segs[2]]
		if len(segs) >= 4 {
			rt.name = segs[3]
		}
		if len(segs) == 5 {
			rt.sub = segs[4]
		}
		if !rt.res.namespaced || (rt.sub != "" && (rt.sub != "scale" || !rt.res.scalable)) {
			return route{}, false
		}
	default:
		return route{}, false
	}
	return rt, rt.res.name != "" && rt.res.apiVersion == apiVersion
}

// snapshot is the object list a paginated list walks: the API server
// serves every page of one list from the same resource version.
type snapshot struct {
	items   []*stored
	rv      uint64
	created time.Time
}

// continueTTL is how long a continue token stays valid.
const continueTTL = 5 * time.Minute

type continueToken struct {
	ID     string `json:"id"`
	Offset int    `json:"offset"`
	Page   int    `json:"page"`
}

func (s *Server) list(rw http.ResponseWriter, r *http.Request, res resource, namespace string) int {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	s.mu.Lock()
	var tok continueToken
	var snap *snapshot
	if c := q.Get("continue"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err == nil {
			err = json.Unmarshal(raw, &tok)
		}
		if err != nil {
			s.mu.Unlock()
			return writeStatus(rw, http.StatusBadRequest, "BadRequest", "continue key is not valid: "+err.Error())
		}
		if snap = s.snapshots[tok.ID]; snap == nil {
			s.mu.Unlock()
			return writeStatus(rw, http.StatusGone, "Expired",
				"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
		}
	} else {
		for id, sn := range s.snapshots {
			if time.Since(sn.created) > continueTTL {
				delete(s.snapshots, id)
			}
		}
		snap = &snapshot{items: s.st.list(res.name, namespace), rv: s.st.rv, created: time.Now()}
		tok = continueToken{ID: newUID(), Page: 1}
	}
	if s.failCode != 0 && tok.Page >= s.failFrom {
		code := s.failCode
		s.mu.Unlock()
		return writeStatus(rw, code, reasonFor(code), fmt.Sprintf("stand-in failure of %s list page %d", res.name, tok.Page))
	}
	items := snap.items[tok.Offset:]
	next := ""
	if limit > 0 && len(items) > limit {
		items = items[:limit]
		n := continueToken{ID: tok.ID, Offset: tok.Offset + limit, Page: tok.Page + 1}
		b, _ := json.Marshal(n)
		next = base64.RawURLEncoding.EncodeToString(b)
		s.snapshots[tok.ID] = snap
	} else {
		delete(s.snapshots, tok.ID)
	}
	remaining := len(snap.items) - tok.Offset - len(items)
	s.mu.Unlock()

	var b bytes.Buffer
	fmt.Fprintf(&b, `{"kind":%q,"apiVersion":%q,"metadata":{"resourceVersion":"%d"`, res.kind+"List", res.apiVersion, snap.rv)
	if next != "" {
		fmt.Fprintf(&b, `,"continue":%q,"remainingItemCount":%d`, next, remaining)
	}
	b.WriteString(`},"items":[`)
	for i, o := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(o.json)
	}
	b.WriteString("]}")
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(b.Bytes())
	return http.StatusOK
}

func (s *Server) get(rw http.ResponseWriter, rt route) int {
	s.mu.Lock()
	o := s.st.objects[rt.res.name][rt.namespace+"/"+rt.name]
	s.mu.Unlock()
	if o == nil {
		return notFound(rw, rt)
	}
	return writeRaw(rw, http.StatusOK, o.json)
}

// patch applies a strategic-merge or JSON merge patch.
func (s *Server) patch(rw http.ResponseWriter, r *http.Request, rt route) int {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return writeStatus(rw, http.StatusBadRequest, "BadRequest", err.Error())
	}
	ct := r.Header.Get("Content-Type")
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st.objects[rt.res.name][rt.namespace+"/"+rt.name]
	if old == nil {
		return notFound(rw, rt)
	}
	var patched []byte
	switch ct {
	case "application/strategic-merge-patch+json":
		patched, err = strategicpatch.StrategicMergePatch(old.json, body, old.obj)
	case "application/merge-patch+json":
		patched, err = jsonpatch.MergePatch(old.json, body)
	default:
		return writeStatus(rw, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json")
	}
	if err != nil {
		return writeStatus(rw, http.StatusUnprocessableEntity, "Invalid", "patch: "+err.Error())
	}
	obj := old.obj.DeepCopyObject()
	if err := json.Unmarshal(patched, obj); err != nil {
		return writeStatus(rw, http.StatusUnprocessableEntity, "Invalid", "patched object: "+err.Error())
	}
	bumpGeneration(obj)
	ev, err := s.st.put(obj)
	if err != nil {
		return writeStatus(rw, http.StatusInternalServerError, "InternalError", err.Error())
	}
	s.notify(ev)
	return writeRaw(rw, http.StatusOK, ev.obj.json)
}

func (s *Server) remove(rw http.ResponseWriter, rt route) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.st.objects[rt.res.name][rt.namespace+"/"+rt.name]
	if o == nil {
		return notFound(rw, rt)
	}
	if err := s.delete(rt.res.name, rt.namespace, rt.name); err != nil {
		return writeStatus(rw, http.StatusInternalServerError, "InternalError", err.Error())
	}
	return writeRaw(rw, http.StatusOK, o.json)
}

// scale serves the scale subresource: GET, and PUT of an
// autoscaling/v1 Scale in JSON or protobuf (what typed UpdateScale sends).
func (s *Server) scale(rw http.ResponseWriter, r *http.Request, rt route) int {
	switch r.Method {
	case http.MethodGet:
		s.mu.Lock()
		o := s.st.objects[rt.res.name][rt.namespace+"/"+rt.name]
		s.mu.Unlock()
		if o == nil {
			return notFound(rw, rt)
		}
		return writeJSON(rw, http.StatusOK, scaleOf(o))
	case http.MethodPut:
	default:
		return writeStatus(rw, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return writeStatus(rw, http.StatusBadRequest, "BadRequest", err.Error())
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
	if err != nil {
		return writeStatus(rw, http.StatusBadRequest, "BadRequest", "decode Scale: "+err.Error())
	}
	sc, ok := obj.(*autoscalingv1.Scale)
	if !ok {
		return writeStatus(rw, http.StatusBadRequest, "BadRequest", fmt.Sprintf("want a Scale, got %T", obj))
	}
	if sc.Spec.Replicas < 0 {
		return writeStatus(rw, http.StatusUnprocessableEntity, "Invalid", "spec.replicas: must be greater than or equal to 0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st.objects[rt.res.name][rt.namespace+"/"+rt.name]
	if old == nil {
		return notFound(rw, rt)
	}
	if v := sc.ResourceVersion; v != "" && v != strconv.FormatUint(old.rv, 10) {
		return writeStatus(rw, http.StatusConflict, "Conflict", fmt.Sprintf(
			"Operation cannot be fulfilled on %s.apps %q: the object has been modified; please apply your changes to the latest version and try again", rt.res.name, rt.name))
	}
	o, err := s.update(rt.res.name, rt.namespace, rt.name, func(obj runtime.Object) error {
		setReplicas(obj, sc.Spec.Replicas)
		bumpGeneration(obj)
		return nil
	})
	if err != nil {
		return writeStatus(rw, http.StatusInternalServerError, "InternalError", err.Error())
	}
	return writeJSON(rw, http.StatusOK, scaleOf(o))
}

// setReplicas sets the desired replicas and, as the controllers would
// once done, the observed ones.
func setReplicas(obj runtime.Object, n int32) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
		o.Status.Replicas, o.Status.ReadyReplicas, o.Status.AvailableReplicas, o.Status.UpdatedReplicas = n, n, n, n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
		o.Status.Replicas, o.Status.ReadyReplicas, o.Status.AvailableReplicas, o.Status.UpdatedReplicas = n, n, n, n
	}
}

func bumpGeneration(obj runtime.Object) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Generation++
		o.Status.ObservedGeneration = o.Generation
	case *appsv1.StatefulSet:
		o.Generation++
		o.Status.ObservedGeneration = o.Generation
	case *appsv1.DaemonSet:
		o.Generation++
		o.Status.ObservedGeneration = o.Generation
	}
}

func scaleOf(o *stored) *autoscalingv1.Scale {
	sc := &autoscalingv1.Scale{}
	sc.APIVersion, sc.Kind = "autoscaling/v1", "Scale"
	sc.Name, sc.Namespace = o.name, o.namespace
	sc.ResourceVersion = strconv.FormatUint(o.rv, 10)
	switch obj := o.obj.(type) {
	case *appsv1.Deployment:
		sc.UID, sc.CreationTimestamp = obj.UID, obj.CreationTimestamp
		sc.Spec.Replicas = replicas(obj.Spec.Replicas)
		sc.Status.Replicas = obj.Status.Replicas
	case *appsv1.StatefulSet:
		sc.UID, sc.CreationTimestamp = obj.UID, obj.CreationTimestamp
		sc.Spec.Replicas = replicas(obj.Spec.Replicas)
		sc.Status.Replicas = obj.Status.Replicas
	}
	return sc
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func notFound(rw http.ResponseWriter, rt route) int {
	group := ""
	if rt.res.apiVersion == "apps/v1" {
		group = ".apps"
	}
	return writeStatus(rw, http.StatusNotFound, "NotFound", fmt.Sprintf("%s%s %q not found", rt.res.name, group, rt.name))
}

func reasonFor(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "Timeout"
	}
	return "InternalError"
}

// statusBody is a metav1.Status as the API server sends it.
func statusBody(code int, reason, msg string) map[string]any {
	return map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": msg, "reason": reason, "code": code}
}

func writeStatus(rw http.ResponseWriter, code int, reason, msg string) int {
	return writeJSON(rw, code, statusBody(code, reason, msg))
}

func writeJSON(rw http.ResponseWriter, code int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","code":500}`)
	}
	return writeRaw(rw, code, b)
}

func writeRaw(rw http.ResponseWriter, code int, b []byte) int {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_, _ = rw.Write(b)
	return code
}
