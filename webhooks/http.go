package webhooks

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/partners"
	"github.com/walletauth/walletauth/users"
)

// Routes registers the webhook API on the authenticated /v1/partner group
// (pass it to partners.Service.Routes):
//
//	POST   /webhooks      register an endpoint
//	GET    /webhooks      list them
//	DELETE /webhooks/:id  remove one
func (o *Outbox) Routes(pg *gin.RouterGroup) {
	pg.POST("/webhooks", api.Handle(o.handleCreate))
	pg.GET("/webhooks", api.Handle(o.handleList))
	pg.DELETE("/webhooks/:id", api.Handle(o.handleDelete))
}

type endpointView struct {
	ID        string   `json:"id"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Secret    string   `json:"secret,omitempty"`
	CreatedAt string   `json:"created_at"`
}

func view(e Endpoint) endpointView {
	return endpointView{ID: e.ID, URL: e.URL, Events: e.EventList(), CreatedAt: e.CreatedAt.UTC().Format(users.TimeFormat)}
}

func partner(c *gin.Context) (partners.Partner, error) {
	p, ok := partners.FromContext(c.Request.Context())
	if !ok {
		return partners.Partner{}, partners.ErrPartnerUnauthorized
	}
	return p, nil
}

func (o *Outbox) handleCreate(c *gin.Context) error {
	p, err := partner(c)
	if err != nil {
		return err
	}
	var req struct {
		URL    json.RawMessage `json:"url"`
		Events json.RawMessage `json:"events"`
	}
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	var u string
	if len(req.URL) == 0 || json.Unmarshal(req.URL, &u) != nil {
		return ErrInvalidURL.WithMessage("url must be a string: an http:// or https:// URL")
	}
	var evs []string
	if len(req.Events) == 0 || json.Unmarshal(req.Events, &evs) != nil {
		return ErrInvalidEvents
	}
	created, err := o.Create(c.Request.Context(), p.ID, u, evs)
	if err != nil {
		return err
	}
	v := view(created.Endpoint)
	v.Secret = created.PlainSecret
	c.JSON(http.StatusCreated, v)
	return nil
}

func (o *Outbox) handleList(c *gin.Context) error {
	p, err := partner(c)
	if err != nil {
		return err
	}
	es, err := o.List(c.Request.Context(), p.ID)
	if err != nil {
		return err
	}
	out := make([]endpointView, len(es))
	for i, e := range es {
		out[i] = view(e)
	}
	c.JSON(http.StatusOK, gin.H{"webhooks": out})
	return nil
}

func (o *Outbox) handleDelete(c *gin.Context) error {
	p, err := partner(c)
	if err != nil {
		return err
	}
	id, err := api.PathParam(c, "id", ErrWebhookNotFound)
	if err != nil {
		return err
	}
	if err := o.Delete(c.Request.Context(), p.ID, id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
