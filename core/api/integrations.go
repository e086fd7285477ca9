package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
	"github.com/portico-dev/portico/host/integrations"
)

// Integrations is the installed integrations and their syncs as the API
// uses them (host/integrations.Manager).
type Integrations interface {
	Put(ctx context.Context, id string, spec integrations.Spec) (*integrations.Status, bool, error)
	Get(ctx context.Context, id string) (*integrations.Status, error)
	List(ctx context.Context) ([]*integrations.Status, error)
	Delete(ctx context.Context, id string, purge bool) (int, error)
	StartResync(ctx context.Context, id, trigger string) (*integrations.Sync, error)
	Sync(ctx context.Context, id, sid string) (*integrations.Sync, error)
	Webhook(ctx context.Context, id string, headers map[string][]string, body []byte) (*integrations.WebhookResponse, error)
	Act(ctx context.Context, id, action string, entity *catalog.Ref, inputs json.RawMessage) (*integrations.ActResult, error)
	Schedule(ctx context.Context, id string) (*integrations.ScheduleState, error)
	PauseSchedule(ctx context.Context, id, note string) (*integrations.ScheduleState, error)
	UnpauseSchedule(ctx context.Context, id, note string) (*integrations.ScheduleState, error)
}

// MaxWebhookBytes is the largest webhook delivery accepted.
const MaxWebhookBytes = 1 << 20

type integrationHandlers struct{ integrations Integrations }

func (h *integrationHandlers) put(c *gin.Context) {
	var spec integrations.Spec
	if err := bindJSON(c, &spec); err != nil {
		fail(c, err)
		return
	}
	st, created, err := h.integrations.Put(c.Request.Context(), c.Param("id"), spec)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), st)
}

// integrationView is an installation's status with its durable resync
// schedule ("schedule" stays the period as written).
type integrationView struct {
	*integrations.Status
	ScheduleState *integrations.ScheduleState `json:"scheduleState,omitempty"`
}

// scheduleLookupTimeout bounds the schedule part of GET /integrations/{id}.
const scheduleLookupTimeout = 2 * time.Second

func (h *integrationHandlers) get(c *gin.Context) {
	st, err := h.integrations.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	view := integrationView{Status: st}
	if st.Schedule != "" {
		// Best effort, and quick: the status stays readable while Temporal
		// is not.
		ctx, cancel := context.WithTimeout(c.Request.Context(), scheduleLookupTimeout)
		view.ScheduleState, _ = h.integrations.Schedule(ctx, st.ID)
		cancel()
	}
	c.JSON(http.StatusOK, view)
}

// pauseSchedule and unpauseSchedule take an optional {"note": "…"}.
func (h *integrationHandlers) pauseSchedule(c *gin.Context)   { h.setPaused(c, true) }
func (h *integrationHandlers) unpauseSchedule(c *gin.Context) { h.setPaused(c, false) }

func (h *integrationHandlers) setPaused(c *gin.Context, paused bool) {
	var req struct {
		Note string `json:"note"`
	}
	raw, err := readBody(c)
	if err == nil && len(bytes.TrimSpace(raw)) > 0 {
		err = decodeStrict(raw, &req)
	}
	if err != nil {
		fail(c, err)
		return
	}
	ctx, id := c.Request.Context(), c.Param("id")
	change, set := "unpaused", h.integrations.UnpauseSchedule
	if paused {
		change, set = "paused", h.integrations.PauseSchedule
	}
	if req.Note == "" {
		req.Note = change + " by " + catalog.ActorFrom(ctx).ID
	}
	st, err := set(ctx, id, req.Note)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (h *integrationHandlers) list(c *gin.Context) {
	all, err := h.integrations.List(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"integrations": all})
}

func (h *integrationHandlers) delete(c *gin.Context) {
	purge, err := strconv.ParseBool(c.DefaultQuery("purge", "false"))
	if err != nil {
		fail(c, &badRequest{msg: "purge must be true or false"})
		return
	}
	n, err := h.integrations.Delete(c.Request.Context(), c.Param("id"), purge)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": c.Param("id"), "deleted": true, "purgedEntities": n})
}

func (h *integrationHandlers) resync(c *gin.Context) {
	s, err := h.integrations.StartResync(c.Request.Context(), c.Param("id"), integrations.TriggerAPI)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, s)
}

func (h *integrationHandlers) sync(c *gin.Context) {
	s, err := h.integrations.Sync(c.Request.Context(), c.Param("id"), c.Param("sid"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}

// webhook is unauthenticated: the plugin verifies the delivery.
func (h *integrationHandlers) webhook(c *gin.Context) {
	body, err := readLimited(c, MaxWebhookBytes)
	if err != nil {
		fail(c, err)
		return
	}
	res, err := h.integrations.Webhook(c.Request.Context(), c.Param("id"), c.Request.Header, body)
	if err != nil {
		var limited *integrations.RateLimitError
		if errors.As(err, &limited) {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(limited.RetryAfter.Seconds()))))
		}
		fail(c, err)
		return
	}
	contentType := "text/plain; charset=utf-8"
	if json.Valid([]byte(res.Body)) {
		contentType = "application/json; charset=utf-8"
	}
	c.Data(res.Status, contentType, []byte(res.Body))
}

func (h *integrationHandlers) act(c *gin.Context) {
	var req struct {
		Entity *catalog.Ref    `json:"entity"`
		Inputs json.RawMessage `json:"inputs"`
	}
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	res, err := h.integrations.Act(c.Request.Context(), c.Param("id"), c.Param("action"), req.Entity, req.Inputs)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// mountPlugins adds the registry and integration routes: v1 is the
// authenticated group, r the engine (for the unauthenticated webhook).
func mountPlugins(r *gin.Engine, v1 *gin.RouterGroup, plugins Plugins, ints Integrations) {
	if plugins != nil {
		ph := &pluginHandlers{plugins: plugins}
		v1.POST("/plugins", ph.publish)
		v1.GET("/plugins", ph.list)
		v1.GET("/plugins/:name/:version", ph.get)
	}
	if ints != nil {
		ih := &integrationHandlers{integrations: ints}
		v1.GET("/integrations", ih.list)
		v1.PUT("/integrations/:id", ih.put)
		v1.GET("/integrations/:id", ih.get)
		v1.DELETE("/integrations/:id", ih.delete)
		v1.POST("/integrations/:id/resync", ih.resync)
		v1.POST("/integrations/:id/schedule/pause", ih.pauseSchedule)
		v1.POST("/integrations/:id/schedule/unpause", ih.unpauseSchedule)
		v1.GET("/integrations/:id/syncs/:sid", ih.sync)
		v1.POST("/integrations/:id/actions/:action", ih.act)
		r.POST("/api/v1/integrations/:id/webhook", ih.webhook)
	}
}
