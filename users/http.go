package users

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
)

type ctxKey struct{}

// WithUserID returns ctx carrying the authenticated user's ID.
func WithUserID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// UserID returns the authenticated user's ID, set by the auth middleware.
func UserID(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(ctxKey{}).(string)
	return id, ok && id != ""
}

// CurrentUserID returns the authenticated user's ID or ErrUnauthorized.
func CurrentUserID(c *gin.Context) (string, error) {
	id, ok := UserID(c.Request.Context())
	if !ok {
		return "", api.ErrUnauthorized
	}
	return id, nil
}

// Handlers serves the profile endpoints.
type Handlers struct {
	store *Store
}

// NewHandlers returns the profile handlers over store.
func NewHandlers(store *Store) *Handlers { return &Handlers{store: store} }

// Routes registers GET/PATCH/DELETE on me, a group already behind the auth
// middleware (/v1/users/me).
func (h *Handlers) Routes(me *gin.RouterGroup) {
	me.GET("", api.Handle(h.get))
	me.PATCH("", api.Handle(h.patch))
	me.DELETE("", api.Handle(h.delete))
}

func (h *Handlers) get(c *gin.Context) error {
	id, err := CurrentUserID(c)
	if err != nil {
		return err
	}
	u, err := h.store.GetCached(c.Request.Context(), id)
	if err != nil {
		return notFoundIsUnauthorized(err)
	}
	b, err := u.ViewJSON()
	if err != nil {
		return fmt.Errorf("users: encode view: %w", err)
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
	return nil
}

type patchRequest struct {
	Username *string `json:"username"`
	Language *string `json:"language"`
}

func (h *Handlers) patch(c *gin.Context) error {
	id, err := CurrentUserID(c)
	if err != nil {
		return err
	}
	var req patchRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	u, err := h.store.Update(c.Request.Context(), id, Patch(req))
	if err != nil {
		return notFoundIsUnauthorized(err)
	}
	c.JSON(http.StatusOK, u.View())
	return nil
}

func (h *Handlers) delete(c *gin.Context) error {
	id, err := CurrentUserID(c)
	if err != nil {
		return err
	}
	if err := h.store.Delete(c.Request.Context(), id); err != nil {
		return notFoundIsUnauthorized(err)
	}
	c.Status(http.StatusNoContent)
	return nil
}

// A token whose user vanished between the token check and the handler is
// as good as revoked.
func notFoundIsUnauthorized(err error) error {
	if errors.Is(err, ErrNotFound) {
		return api.ErrUnauthorized
	}
	return err
}
