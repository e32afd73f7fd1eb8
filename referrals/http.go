package referrals

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/activity"
	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/users"
)

// Handlers serves the referral endpoints of the current user.
type Handlers struct {
	svc *Service
}

// NewHandlers returns the referral handlers over svc.
func NewHandlers(svc *Service) *Handlers { return &Handlers{svc: svc} }

// Routes registers POST /referrer and GET /referrals on me, a group already
// behind the auth middleware (/v1/users/me).
func (h *Handlers) Routes(me *gin.RouterGroup) {
	me.POST("/referrer", api.Handle(h.setReferrer))
	me.GET("/referrals", api.Handle(h.list))
}

type setReferrerRequest struct {
	ReferralCode string `json:"referral_code"`
}

func (h *Handlers) setReferrer(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	var req setReferrerRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx := activity.WithClient(c.Request.Context(), c.ClientIP(), c.Request.UserAgent())
	u, err := h.svc.SetReferrer(ctx, id, req.ReferralCode)
	if err != nil {
		return notFoundIsUnauthorized(err)
	}
	c.JSON(http.StatusOK, u.View())
	return nil
}

// RefereeView is one entry of ReferralsView.Referees.
type RefereeView struct {
	Username string `json:"username"`
	JoinedAt string `json:"joined_at"`
}

// ReferralsView is the body of GET /v1/users/me/referrals.
type ReferralsView struct {
	ReferralCode string        `json:"referral_code"`
	RefereeCount int64         `json:"referee_count"`
	Referees     []RefereeView `json:"referees"`
	NextCursor   *string       `json:"next_cursor"`
}

func (h *Handlers) list(c *gin.Context) error {
	id, err := users.CurrentUserID(c)
	if err != nil {
		return err
	}
	limit := DefaultLimit
	s, ok, err := api.GetQuery(c, "limit", api.ErrInvalidParam)
	if err != nil {
		return err
	}
	if ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return api.ErrInvalidParam.WithMessage("limit must be an integer from 1 to %d", MaxLimit)
		}
		limit = n
	}
	cursor, err := api.Query(c, "cursor", api.ErrInvalidCursor)
	if err != nil {
		return err
	}
	page, err := h.svc.Referees(c.Request.Context(), id, limit, cursor)
	if err != nil {
		return notFoundIsUnauthorized(err)
	}
	v := ReferralsView{
		ReferralCode: page.ReferralCode,
		RefereeCount: page.RefereeCount,
		Referees:     make([]RefereeView, len(page.Referees)),
	}
	for i, r := range page.Referees {
		v.Referees[i] = RefereeView{Username: r.Username, JoinedAt: r.JoinedAt.UTC().Format(users.TimeFormat)}
	}
	if page.NextCursor != "" {
		v.NextCursor = &page.NextCursor
	}
	c.JSON(http.StatusOK, v)
	return nil
}

// A token whose user vanished between the token check and the handler is
// as good as revoked.
func notFoundIsUnauthorized(err error) error {
	if errors.Is(err, users.ErrNotFound) {
		return api.ErrUnauthorized
	}
	return err
}
