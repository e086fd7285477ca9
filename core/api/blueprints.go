package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
)

func (h *handlers) listBlueprints(c *gin.Context) {
	bps, err := h.cat.ListBlueprints(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	if bps == nil {
		bps = []*catalog.Blueprint{}
	}
	c.JSON(http.StatusOK, gin.H{"blueprints": bps})
}

func (h *handlers) getBlueprint(c *gin.Context) {
	bp, err := h.cat.GetBlueprint(c.Request.Context(), c.Param("bp"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, bp)
}

func (h *handlers) createBlueprint(c *gin.Context) { h.writeBlueprint(c, "", true) }

func (h *handlers) putBlueprint(c *gin.Context) { h.writeBlueprint(c, c.Param("bp"), false) }

// writeBlueprint decodes a blueprint; pathID (if any) must agree with the
// body's identifier, which it defaults.
func (h *handlers) writeBlueprint(c *gin.Context, pathID string, create bool) {
	raw, err := readBody(c)
	if err != nil {
		fail(c, err)
		return
	}
	bp, err := catalog.DecodeBlueprint(raw)
	if err != nil {
		fail(c, err)
		return
	}
	if err := reconcileIdentifier(&bp.Identifier, pathID); err != nil {
		fail(c, err)
		return
	}
	out, created, err := h.cat.PutBlueprint(c.Request.Context(), bp, create)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), out)
}

func (h *handlers) deleteBlueprint(c *gin.Context) {
	if err := h.cat.DeleteBlueprint(c.Request.Context(), c.Param("bp")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// reconcileIdentifier fills an empty body identifier from the path and
// rejects a body identifier that names something else.
func reconcileIdentifier(body *string, path string) error {
	if path == "" {
		return nil
	}
	if *body == "" {
		*body = path
		return nil
	}
	if *body != path {
		return &catalog.ValidationError{Message: "identifier mismatch", Violations: []catalog.Violation{
			{Path: "/identifier", Message: "body says " + quote(*body) + " but the URL says " + quote(path)},
		}}
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
