package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/core/catalog"
)

func ref(c *gin.Context) catalog.Ref {
	return catalog.Ref{Blueprint: c.Param("bp"), Identifier: c.Param("id")}
}

func (h *handlers) getEntity(c *gin.Context) {
	e, err := h.cat.GetEntity(c.Request.Context(), ref(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (h *handlers) putEntity(c *gin.Context)    { h.writeEntity(c, c.Param("id"), false) }
func (h *handlers) createEntity(c *gin.Context) { h.writeEntity(c, "", true) }

func (h *handlers) writeEntity(c *gin.Context, pathID string, create bool) {
	raw, err := readBody(c)
	if err != nil {
		fail(c, err)
		return
	}
	e, err := catalog.DecodeEntity(raw)
	if err != nil {
		fail(c, err)
		return
	}
	if err := reconcileIdentifier(&e.Identifier, pathID); err != nil {
		fail(c, err)
		return
	}
	if e.Blueprint != "" && e.Blueprint != c.Param("bp") {
		fail(c, &catalog.ValidationError{Message: "blueprint mismatch", Violations: []catalog.Violation{
			{Path: "/blueprint", Message: "body says " + quote(e.Blueprint) + " but the URL says " + quote(c.Param("bp"))},
		}})
		return
	}
	e.Blueprint = c.Param("bp")
	out, created, err := h.cat.PutEntity(c.Request.Context(), e, create)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(createdStatus(created), out)
}

func (h *handlers) patchEntity(c *gin.Context) {
	var patch map[string]any
	if err := bindJSON(c, &patch); err != nil {
		fail(c, err)
		return
	}
	if patch == nil {
		fail(c, &badRequest{msg: "expected a JSON object"})
		return
	}
	out, err := h.cat.PatchEntity(c.Request.Context(), ref(c), patch)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (h *handlers) deleteEntity(c *gin.Context) {
	cascade, _ := strconv.ParseBool(c.DefaultQuery("cascade", "false"))
	deleted, err := h.cat.DeleteEntity(c.Request.Context(), ref(c), cascade)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"deleted": deleted})
}

// pageLimit parses ?limit (default 100, 1..1000).
func pageLimit(c *gin.Context) (int, error) {
	s := c.DefaultQuery("limit", strconv.Itoa(catalog.DefaultSearchLimit))
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > catalog.MaxSearchLimit {
		return 0, &catalog.ValidationError{Message: "invalid limit", Violations: []catalog.Violation{
			{Path: "/limit", Message: "must be an integer between 1 and " + strconv.Itoa(catalog.MaxSearchLimit)},
		}}
	}
	return n, nil
}

func (h *handlers) listEntities(c *gin.Context) {
	limit, err := pageLimit(c)
	if err != nil {
		fail(c, err)
		return
	}
	after := ""
	if cur := c.Query("cursor"); cur != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cur)
		if err != nil {
			fail(c, &catalog.ValidationError{Message: "invalid cursor", Violations: []catalog.Violation{{Path: "/cursor", Message: "not a cursor this API returned"}}})
			return
		}
		after = string(raw)
	}
	page, err := h.cat.ListEntities(c.Request.Context(), c.Param("bp"), after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	var next *string
	if page.Next != "" {
		n := base64.RawURLEncoding.EncodeToString([]byte(page.Next))
		next = &n
	}
	renderPage(c, page.Entities, next, page.Total)
}

func (h *handlers) history(c *gin.Context) {
	evs, err := h.cat.History(c.Request.Context(), ref(c))
	if err != nil {
		fail(c, err)
		return
	}
	if evs == nil {
		evs = []catalog.Event{}
	}
	c.JSON(http.StatusOK, gin.H{"events": evs})
}

func (h *handlers) related(c *gin.Context) {
	depth, err := strconv.Atoi(c.DefaultQuery("depth", "1"))
	if err != nil {
		depth = -1
	}
	dir := c.DefaultQuery("direction", "both")
	if dir != "both" && dir != catalog.Upstream && dir != catalog.Downstream {
		fail(c, &catalog.ValidationError{Message: "invalid direction", Violations: []catalog.Violation{{Path: "/direction", Message: "must be upstream, downstream or both"}}})
		return
	}
	out, err := h.cat.Related(c.Request.Context(), ref(c), dir, depth)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// bulkRequest is the body of POST /entities/bulk.
type bulkRequest struct {
	Entities []json.RawMessage `json:"entities"`
	// split: the body was validated as a whole and split in place, so its
	// items are decoded as catalog.SplitBulk documents — lazily, chunk by
	// chunk, by the catalog (catalog.WriteItem.Raw) — and the items that
	// do not peek plainly by catalog.DecodeBulkItem right away; otherwise
	// each is decoded by catalog.DecodeEntity.
	split bool
}

// decode decodes one item right away (see split).
func (r bulkRequest) decode(item []byte) (*catalog.Entity, error) {
	if r.split {
		return catalog.DecodeBulkItem(item)
	}
	return catalog.DecodeEntity(item)
}

// decodeBulk decodes a bulk request. A well-formed body is validated once
// and split in place; anything else is decoded strictly, which names the
// problem.
func decodeBulk(raw []byte) (bulkRequest, error) {
	if items, ok := catalog.SplitBulk(raw); ok {
		req := bulkRequest{Entities: make([]json.RawMessage, len(items)), split: true}
		for i, it := range items {
			req.Entities[i] = it
		}
		return req, nil
	}
	var req bulkRequest
	return req, decodeStrict(raw, &req)
}

type bulkResult struct {
	Index      int          `json:"index"`
	Blueprint  string       `json:"blueprint"`
	Identifier string       `json:"identifier"`
	Status     string       `json:"status"`
	Error      *errorDetail `json:"error,omitempty"`
}

// bulk reads the whole body first (bounded in time by bodyDeadline), then
// takes one of the MaxConcurrentBulk slots to decode and write it: a slow
// upload never holds a slot.
func (h *handlers) bulk(c *gin.Context) {
	raw, err := readBody(c)
	if err != nil {
		fail(c, err)
		return
	}
	select {
	case h.bulkSlots <- struct{}{}:
		defer func() { <-h.bulkSlots }()
	case <-c.Request.Context().Done():
		fail(c, c.Request.Context().Err())
		return
	}
	req, err := decodeBulk(raw)
	if err != nil {
		fail(c, err)
		return
	}
	if req.Entities == nil {
		fail(c, &catalog.ValidationError{Message: "invalid bulk request", Violations: []catalog.Violation{{Path: "/entities", Message: "required"}}})
		return
	}
	if len(req.Entities) > catalog.MaxBatch {
		fail(c, &catalog.ValidationError{Message: "batch too large", Violations: []catalog.Violation{{Path: "/entities", Message: "at most " + strconv.Itoa(catalog.MaxBatch) + " entities per request"}}})
		return
	}
	results := make([]bulkResult, len(req.Entities))
	items := make([]catalog.WriteItem, 0, len(req.Entities))
	index := make([]int, 0, len(req.Entities))
	for i, raw := range req.Entities {
		results[i].Index = i
		if req.split {
			if peek, ok := catalog.PeekBulkItem(raw); ok && peek.Blueprint != "" {
				items = append(items, catalog.WriteItem{Mode: catalog.Upsert, Entity: peek, Raw: raw})
				index = append(index, i)
				continue
			}
		}
		e, err := req.decode(raw)
		if err == nil && e.Blueprint == "" {
			err = &catalog.ValidationError{Message: "missing blueprint", Violations: []catalog.Violation{{Path: "/blueprint", Message: "required"}}}
		}
		if err != nil {
			results[i].Status = catalog.StatusError
			results[i].Error = itemError(err)
			if e != nil {
				results[i].Blueprint, results[i].Identifier = e.Blueprint, e.Identifier
			} else {
				results[i].Blueprint, results[i].Identifier = itemName(raw)
			}
			continue
		}
		items = append(items, catalog.WriteItem{Mode: catalog.Upsert, Entity: e})
		index = append(index, i)
	}
	written, err := h.cat.Write(c.Request.Context(), items)
	if err != nil {
		fail(c, err)
		return
	}
	for k, r := range written {
		i := index[k]
		results[i] = bulkResult{Index: i, Blueprint: r.Blueprint, Identifier: r.Identifier, Status: r.Status}
		if r.Err != nil {
			results[i].Error = itemError(r.Err)
		}
	}
	status := http.StatusOK
	for _, r := range results {
		if r.Status == catalog.StatusError {
			status = http.StatusMultiStatus
			break
		}
	}
	c.JSON(status, gin.H{"results": results})
}

// itemName reads what it can of a malformed bulk item's blueprint and
// identifier, so its result still names it.
func itemName(raw json.RawMessage) (blueprint, identifier string) {
	var name struct {
		Blueprint  any `json:"blueprint"`
		Identifier any `json:"identifier"`
	}
	_ = json.Unmarshal(raw, &name)
	blueprint, _ = name.Blueprint.(string)
	identifier, _ = name.Identifier.(string)
	return blueprint, identifier
}

func itemError(err error) *errorDetail {
	_, b := errorResponse(err)
	return &b.Error
}
