package api

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"

	"github.com/portico-dev/portico/core/access"
	"github.com/portico-dev/portico/core/actions"
	"github.com/portico-dev/portico/core/catalog"
)

// runScopes are the token scopes the action routes need beyond the
// default read/write split.
var runScopes = map[string]string{
	"POST /api/v1/actions/:id/runs":    access.ScopeRun,
	"POST /api/v1/runs/:id/cancel":     access.ScopeRun,
	"POST /api/v1/runs/:id/approval":   access.ScopeApprove,
	"PUT /api/v1/actions/:id":          access.ScopeWrite,
	"DELETE /api/v1/actions/:id":       access.ScopeWrite,
	"PUT /api/v1/workflows/:id":        access.ScopeWrite,
	"GET /api/v1/runs/:id/logs/stream": access.ScopeRead,
}

// adminRoutes are routes that need the admin role, with what they do:
// defining actions, workflows, automations and initiatives is the platform team's job.
var adminRoutes = map[string]string{
	"PUT /api/v1/actions/:id":        "define actions and workflows",
	"DELETE /api/v1/actions/:id":     "define actions and workflows",
	"PUT /api/v1/workflows/:id":      "define actions and workflows",
	"PUT /api/v1/initiatives/:id":    "define initiatives",
	"DELETE /api/v1/initiatives/:id": "define initiatives",
	// automations act as admins (automations.Actor): only admins define them
	"PUT /api/v1/automations/:id":    "define automations",
	"DELETE /api/v1/automations/:id": "define automations",
}

type actionHandlers struct{ svc *actions.Service }

// mountActions adds actions, workflows and runs (nil svc: left out).
func mountActions(v1 *gin.RouterGroup, svc *actions.Service) {
	if svc == nil {
		return
	}
	h := &actionHandlers{svc: svc}
	v1.GET("/actions", h.listActions)
	v1.GET("/actions/:id", h.getAction)
	v1.PUT("/actions/:id", h.putAction)
	v1.DELETE("/actions/:id", h.deleteAction)
	v1.POST("/actions/:id/runs", h.trigger)
	v1.GET("/workflows", h.listWorkflows)
	v1.GET("/workflows/:id", h.getWorkflow)
	v1.PUT("/workflows/:id", h.putWorkflow)
	v1.GET("/runs", h.listRuns)
	v1.GET("/runs/:id", h.getRun)
	v1.GET("/runs/:id/logs", h.runLogs)
	v1.GET("/runs/:id/logs/stream", h.streamRunLogs)
	v1.POST("/runs/:id/approval", h.decide)
	v1.POST("/runs/:id/cancel", h.cancel)
}

// actionResponse is an action plus, once at creation, its signing secret.
type actionResponse struct {
	*actions.Action
	SigningSecret string `json:"signingSecret,omitempty"`
}

func (h *actionHandlers) putAction(c *gin.Context) {
	var a actions.Action
	if err := bindDefinition(c, &a); err != nil {
		fail(c, err)
		return
	}
	if err := pathIdentifier(c, &a.Identifier); err != nil {
		fail(c, err)
		return
	}
	out, secret, created, err := h.svc.PutAction(c.Request.Context(), &a)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), actionResponse{Action: out, SigningSecret: secret})
}

func (h *actionHandlers) getAction(c *gin.Context) {
	a, err := h.svc.GetAction(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (h *actionHandlers) deleteAction(c *gin.Context) {
	if err := h.svc.DeleteAction(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *actionHandlers) listActions(c *gin.Context) {
	list, err := h.svc.ListActions(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"actions": list})
}

func (h *actionHandlers) putWorkflow(c *gin.Context) {
	var w actions.Workflow
	if err := bindDefinition(c, &w); err != nil {
		fail(c, err)
		return
	}
	if err := pathIdentifier(c, &w.Identifier); err != nil {
		fail(c, err)
		return
	}
	out, created, err := h.svc.PutWorkflow(c.Request.Context(), &w)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), out)
}

func (h *actionHandlers) getWorkflow(c *gin.Context) {
	w, err := h.svc.GetWorkflow(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, w)
}

func (h *actionHandlers) listWorkflows(c *gin.Context) {
	list, err := h.svc.ListWorkflows(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"workflows": list})
}

func (h *actionHandlers) trigger(c *gin.Context) {
	var req actions.TriggerRequest
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	run, err := h.svc.Trigger(c.Request.Context(), c.Param("id"), req)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, run)
}

func (h *actionHandlers) getRun(c *gin.Context) {
	run, err := h.svc.GetRun(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, run)
}

// runLogs answers a run's log as JSON, or with Accept: text/event-stream
// as the stream of GET /runs/{id}/logs/stream.
func (h *actionHandlers) runLogs(c *gin.Context) {
	if acceptsEventStream(c.GetHeader("Accept")) {
		h.streamRunLogs(c)
		return
	}
	run, err := h.svc.GetRun(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": run.ID, "status": run.Status, "logs": run.Logs})
}

// runLogsHeartbeat is how often an open run log stream gets a comment, so
// proxies keep the connection; each beat also re-reads the run, a
// backstop should a notification be lost.
var runLogsHeartbeat = 15 * time.Second

// streamRunLogs streams a run's log as Server-Sent Events: "log" events
// (id: the line's index, data: the line), a "status" event
// ({"id","status"}) first and whenever the status changes, and once the
// run has finished an "end" event with the final run, after which the
// stream closes (an EventSource should close on "end" rather than
// reconnect). ?after=<index> or Last-Event-ID resumes after that line.
func (h *actionHandlers) streamRunLogs(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	after := c.Query("after")
	if after == "" {
		after = c.GetHeader("Last-Event-ID")
	}
	next := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n < 0 {
			fail(c, &badRequest{msg: "after (or Last-Event-ID) must be the index of a log line, got " + strconv.Quote(after)})
			return
		}
		next = n + 1
	}
	// Watch before reading: a save between the read and the watch would
	// otherwise go unnoticed.
	changed, stop, err := h.svc.WatchRun(ctx, id)
	if err != nil {
		fail(c, err)
		return
	}
	defer stop()
	run, err := h.svc.GetRun(ctx, id)
	if err != nil {
		fail(c, err)
		return
	}
	startSSE(c.Writer)
	s := &runLogStream{w: c.Writer, next: next}
	beat := time.NewTicker(runLogsHeartbeat)
	defer beat.Stop()
	for !s.send(run) {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-beat.C:
			fmt.Fprint(c.Writer, ": ping\n\n")
			c.Writer.Flush()
		}
		if run, err = h.svc.GetRun(ctx, id); err != nil {
			if ctx.Err() == nil {
				data, _ := json.Marshal("run log stream unavailable")
				fmt.Fprintf(c.Writer, "event: error\ndata: %s\n\n", data)
				c.Writer.Flush()
			}
			return
		}
	}
}

// runLogStream is what one run log stream has sent so far.
type runLogStream struct {
	w      gin.ResponseWriter
	next   int    // index of the next log line to send
	status string // last status sent
}

// runStatus is the data of a "status" event.
type runStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// send writes what the client has not seen of run (new lines, a changed
// status, the end once finished) and reports whether the stream is over.
func (s *runLogStream) send(run *actions.Run) bool {
	wrote := false
	for ; s.next < len(run.Logs); s.next++ {
		data, _ := json.Marshal(run.Logs[s.next])
		fmt.Fprintf(s.w, "id: %d\nevent: log\ndata: %s\n\n", s.next, data)
		wrote = true
	}
	if run.Status != s.status {
		s.status = run.Status
		data, _ := json.Marshal(runStatus{ID: run.ID, Status: run.Status})
		fmt.Fprintf(s.w, "event: status\ndata: %s\n\n", data)
		wrote = true
	}
	finished := run.Finished()
	if finished {
		data, _ := json.Marshal(run)
		fmt.Fprintf(s.w, "event: end\ndata: %s\n\n", data)
		wrote = true
	}
	if wrote {
		s.w.Flush()
	}
	return finished
}

// acceptsEventStream reports whether an Accept header asks for
// text/event-stream (as EventSource does).
func acceptsEventStream(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "text/event-stream" {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); err == nil && q == 0 {
			continue // explicitly not acceptable
		}
		return true
	}
	return false
}

func (h *actionHandlers) listRuns(c *gin.Context) {
	limit, _ := strconv.Atoi(c.Query("limit"))
	page, err := h.svc.ListRuns(c.Request.Context(), actions.RunFilter{
		Action: c.Query("action"), Status: c.Query("status"), Entity: c.Query("entity"),
		TriggeredBy: c.Query("triggeredBy"), Limit: limit, Cursor: c.Query("cursor"),
	})
	if err != nil {
		fail(c, err)
		return
	}
	var next any
	if page.Next != "" {
		next = page.Next
	}
	c.JSON(http.StatusOK, gin.H{"runs": page.Runs, "next": next})
}

func (h *actionHandlers) decide(c *gin.Context) {
	var req actions.DecideRequest
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	run, err := h.svc.Decide(c.Request.Context(), c.Param("id"), req)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, run)
}

func (h *actionHandlers) cancel(c *gin.Context) {
	run, err := h.svc.Cancel(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, run)
}

// bindDefinition decodes a JSON or (Content-Type *yaml) YAML definition.
func bindDefinition(c *gin.Context, v any) error {
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	if strings.Contains(c.ContentType(), "yaml") {
		if raw, err = yaml.YAMLToJSON(raw); err != nil {
			return &badRequest{msg: "invalid YAML: " + err.Error()}
		}
	}
	return decodeStrict(raw, v)
}

// pathIdentifier fills or checks a body identifier against the path's.
func pathIdentifier(c *gin.Context, id *string) error {
	switch *id {
	case "":
		*id = c.Param("id")
	case c.Param("id"):
	default:
		return &catalog.ValidationError{Message: "identifier mismatch", Violations: []catalog.Violation{{Path: "/identifier", Message: "must equal the identifier in the path (" + c.Param("id") + ")"}}}
	}
	return nil
}
