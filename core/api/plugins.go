package api

import (
	"context"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/portico-dev/portico/host/registry"
)

// Plugins is the plugin registry as the API uses it (host/registry).
type Plugins interface {
	PublishWasm(ctx context.Context, module []byte) (*registry.Plugin, bool, error)
	RegisterGoPlugin(ctx context.Context, path, sha256 string) (*registry.Plugin, bool, error)
	List(ctx context.Context) ([]*registry.Plugin, error)
	Get(ctx context.Context, name, version string) (*registry.Plugin, error)
}

// MaxModuleBytes is the largest Wasm module POST /api/v1/plugins takes.
const MaxModuleBytes = 64 << 20

type pluginHandlers struct{ plugins Plugins }

// publishedPlugin is a plugin record plus what publishing it did.
type publishedPlugin struct {
	*registry.Plugin
	// Result is "created", or "exists-same" for the same bytes again.
	Result string `json:"result"`
}

func (h *pluginHandlers) publish(c *gin.Context) {
	ctx := c.Request.Context()
	var (
		p       *registry.Plugin
		created bool
		err     error
	)
	mediaType, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mediaType {
	case "application/wasm", "application/octet-stream":
		var module []byte
		if module, err = readLimited(c, MaxModuleBytes); err == nil {
			p, created, err = h.plugins.PublishWasm(ctx, module)
		}
	default:
		var req struct {
			Type   string `json:"type"`
			Path   string `json:"path"`
			SHA256 string `json:"sha256"`
		}
		if err = bindJSON(c, &req); err == nil {
			if req.Type != registry.TypeGoPlugin {
				err = &badRequest{msg: `send a Wasm module as application/wasm, or {"type": "goplugin", "path", "sha256"}`}
			} else {
				p, created, err = h.plugins.RegisterGoPlugin(ctx, req.Path, req.SHA256)
			}
		}
	}
	if err != nil {
		fail(c, err)
		return
	}
	out := publishedPlugin{Plugin: p, Result: "exists-same"}
	if created {
		out.Result = "created"
	}
	c.JSON(createdStatus(created), out)
}

func (h *pluginHandlers) list(c *gin.Context) {
	ps, err := h.plugins.List(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"plugins": ps})
}

func (h *pluginHandlers) get(c *gin.Context) {
	p, err := h.plugins.Get(c.Request.Context(), c.Param("name"), c.Param("version"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}
