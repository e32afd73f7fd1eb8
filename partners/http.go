package partners

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/walletauth/walletauth/api"
	"github.com/walletauth/walletauth/auth"
	"github.com/walletauth/walletauth/points"
	"github.com/walletauth/walletauth/users"
)

// Routes registers, on the /v1 group:
//
//	/partner/…                        the server-to-server API, behind Authenticate
//	/js/partners/:partner_id/users/login  client-side login (POST, and its CORS preflight)
//	/auth/code                        the exchange of a login code for a session
//
// The global CORS middleware must skip /v1/js/ (api.CORS(origins, "/v1/js/")):
// client-side login answers CORS itself, per partner.
//
// Each of extra registers more routes on the authenticated /partner group
// (FromContext gives their handlers the partner), e.g. webhooks.Routes.
func (s *Service) Routes(v1 *gin.RouterGroup, extra ...func(*gin.RouterGroup)) {
	pg := v1.Group("/partner", s.Authenticate())
	for _, register := range extra {
		register(pg)
	}
	pg.POST("/users/login", api.Handle(s.handleLogin))
	pg.POST("/tokens/verify", api.Handle(s.handleVerify))
	pg.GET("/users", api.Handle(s.handleList))
	pg.DELETE("/users", api.Handle(s.handleDelete))
	pg.GET("/users/:external_id", api.Handle(s.handleGet))
	pg.POST("/users/:external_id/points", api.Handle(s.handlePoints))
	pg.GET("/users/:external_id/ranking", api.Handle(s.handleRanking))

	js := v1.Group("/js/partners/:partner_id/users")
	js.OPTIONS("/login", api.Handle(s.handlePreflight))
	js.POST("/login", api.Handle(s.handleClientLogin))

	v1.POST("/auth/code", api.Handle(s.handleCode))
}

// current is the partner Authenticate put in the request.
func current(c *gin.Context) (Partner, error) {
	p, ok := FromContext(c.Request.Context())
	if !ok {
		return Partner{}, ErrPartnerUnauthorized
	}
	return p, nil
}

type loginRequest struct {
	ExternalID   json.RawMessage `json:"external_id"`
	FirstName    *string         `json:"first_name"`
	LastName     *string         `json:"last_name"`
	Email        *string         `json:"email"`
	ReferralCode *string         `json:"referral_code"`
}

type loginResponse struct {
	Registered bool `json:"registered"`
	Created    bool `json:"created"`
	auth.LoginTokens
	LoginCode          string     `json:"login_code"`
	LoginCodeExpiresAt string     `json:"login_code_expires_at"`
	User               users.View `json:"user"`
}

func (s *Service) handleLogin(c *gin.Context) error {
	p, err := current(c)
	if err != nil {
		return err
	}
	return s.login(c, p)
}

func (s *Service) login(c *gin.Context, p Partner) error {
	var req loginRequest
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ext, err := ParseExternalID(req.ExternalID)
	if err != nil {
		return err
	}
	in := LoginInput{ExternalID: ext, FirstName: req.FirstName, LastName: req.LastName, Email: req.Email, UserAgent: c.Request.UserAgent(), IP: c.ClientIP()}
	if req.ReferralCode != nil {
		in.ReferralCode = *req.ReferralCode
	}
	res, err := s.Login(c.Request.Context(), p, in)
	if err != nil {
		return err
	}
	lt, err := s.sessions.NewLoginTokens(res.AuthToken, auth.MethodPartner, res.User)
	if err != nil {
		return err
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, loginResponse{
		Registered:         res.Registered,
		Created:            res.Created,
		LoginTokens:        lt,
		LoginCode:          res.LoginCode,
		LoginCodeExpiresAt: res.LoginCodeExpiresAt.UTC().Format(users.TimeFormat),
		User:               res.User.View(),
	})
	return nil
}

// clientPartner applies the checks of client-side login in the contract's
// order: no Authorization header, the partner exists and is enabled, it
// allows client login, the Origin is one of its origins. When the origin is
// allowed the response carries the CORS headers, errors included, so the
// page can read them.
func (s *Service) clientPartner(c *gin.Context, preflight bool) (Partner, error) {
	c.Header("Vary", "Origin")
	id, err := api.PathParam(c, "partner_id", api.ErrInvalidParam)
	if err != nil {
		return Partner{}, err
	}
	p, err := s.reg.Get(c.Request.Context(), id)
	if err != nil && !errors.Is(err, ErrPartnerNotFound) {
		return Partner{}, err
	}
	found := err == nil && !p.Disabled
	origin := c.GetHeader("Origin")
	allowed := found && p.ClientLogin && origin != "" && p.AllowsOrigin(origin)
	if allowed {
		api.SetCORSHeaders(c, origin)
	}
	switch {
	case !preflight && c.GetHeader("Authorization") != "":
		return Partner{}, ErrTokenNotAllowed
	case !found:
		return Partner{}, ErrPartnerNotFound
	case !p.ClientLogin:
		return Partner{}, ErrClientLoginDisabled
	case !allowed:
		return Partner{}, ErrOriginNotAllowed
	}
	return p, nil
}

func (s *Service) handlePreflight(c *gin.Context) error {
	if _, err := s.clientPartner(c, true); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}

func (s *Service) handleClientLogin(c *gin.Context) error {
	p, err := s.clientPartner(c, false)
	if err != nil {
		return err
	}
	if err := s.allow(c.Request.Context(), "partner-js", p.ID); err != nil {
		return err
	}
	return s.login(c, p)
}

func (s *Service) handleCode(c *gin.Context) error {
	var req struct {
		LoginCode string `json:"login_code"`
	}
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ctx, ip := c.Request.Context(), c.ClientIP()
	if err := s.codeFailures(ctx, ip, false); err != nil {
		return err
	}
	tok, u, err := s.ExchangeCode(ctx, req.LoginCode, auth.OriginOf(c, auth.MethodLoginCode))
	if errors.Is(err, ErrLoginCodeInvalid) {
		if herr := s.codeFailures(ctx, ip, true); herr != nil {
			return herr
		}
	}
	if err != nil {
		return err
	}
	return s.sessions.WriteLogin(c, http.StatusOK, auth.MethodLoginCode, tok, u, false)
}

func (s *Service) handleVerify(c *gin.Context) error {
	p, err := current(c)
	if err != nil {
		return err
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	info, err := s.VerifyToken(c.Request.Context(), p, req.Token)
	if err != nil {
		return err
	}
	if !info.Active {
		c.JSON(http.StatusOK, gin.H{"active": false})
		return nil
	}
	var exp *string
	if info.ExpiresAt != nil {
		e := info.ExpiresAt.UTC().Format(users.TimeFormat)
		exp = &e
	}
	c.JSON(http.StatusOK, gin.H{"active": true, "user": info.User.View(), "expires_at": exp, "external_id": info.ExternalID, "session_id": info.SessionID})
	return nil
}

func (s *Service) handleGet(c *gin.Context) error {
	p, err := current(c)
	if err != nil {
		return err
	}
	ext, err := api.PathParam(c, "external_id", ErrInvalidExternalID)
	if err != nil {
		return err
	}
	u, err := s.User(c.Request.Context(), p, ext)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, u.View())
	return nil
}

type partnerUserView struct {
	ExternalID string     `json:"external_id"`
	User       users.View `json:"user"`
}

func (s *Service) handleList(c *gin.Context) error {
	p, err := current(c)
	if err != nil {
		return err
	}
	cursor, err := api.Query(c, "cursor", api.ErrInvalidCursor)
	if err != nil {
		return err
	}
	q := ListQuery{Cursor: cursor}
	since, err := api.Query(c, "updated_since", api.ErrInvalidParam)
	if err != nil {
		return err
	}
	if since != "" {
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			return api.ErrInvalidParam.WithMessage("updated_since must be an RFC 3339 time such as 2026-01-22T08:36:58Z")
		}
		q.UpdatedSince = &t
	}
	limit, err := api.Query(c, "limit", api.ErrInvalidParam)
	if err != nil {
		return err
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 {
			return api.ErrInvalidParam.WithMessage("limit must be an integer from 1 to %d", MaxListLimit)
		}
		q.Limit = n
	}
	page, next, err := s.ListUsers(c.Request.Context(), p, q)
	if err != nil {
		return err
	}
	out := make([]partnerUserView, len(page))
	for i, pu := range page {
		out[i] = partnerUserView{ExternalID: pu.ExternalID, User: pu.User.View()}
	}
	var nextCursor *string
	if next != "" {
		nextCursor = &next
	}
	c.JSON(http.StatusOK, gin.H{"users": out, "next_cursor": nextCursor})
	return nil
}

func (s *Service) handleDelete(c *gin.Context) error {
	p, err := current(c)
	if err != nil {
		return err
	}
	var req struct {
		ExternalIDs []json.RawMessage `json:"external_ids"`
	}
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	ids := make([]string, 0, len(req.ExternalIDs))
	for _, raw := range req.ExternalIDs {
		id, err := ParseExternalID(raw)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	n, err := s.DeleteUsers(c.Request.Context(), p, ids)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"deleted": n})
	return nil
}

func (s *Service) handlePoints(c *gin.Context) error {
	p, err := current(c)
	if err != nil {
		return err
	}
	var req struct {
		Amount         int64  `json:"amount"`
		Reason         string `json:"reason"`
		IdempotencyKey string `json:"idempotency_key"`
	}
	ext, err := api.PathParam(c, "external_id", ErrInvalidExternalID)
	if err != nil {
		return err
	}
	if err := api.Bind(c, &req); err != nil {
		return err
	}
	e, err := s.AddPoints(c.Request.Context(), p, ext, req.Amount, req.Reason, req.IdempotencyKey)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"points": e.BalanceAfter, "entry_id": e.ID})
	return nil
}

type rankedView struct {
	ExternalID string `json:"external_id"`
	Username   string `json:"username"`
	Points     int64  `json:"points"`
	Rank       int64  `json:"rank"`
}

func rankedViews(rs []points.Ranked) []rankedView {
	out := make([]rankedView, len(rs))
	for i, r := range rs {
		out[i] = rankedView{ExternalID: r.ExternalID, Username: r.Username, Points: r.Points, Rank: r.Rank}
	}
	return out
}

// DefaultRankingNeighbours is n of the ranking endpoint when not given.
const DefaultRankingNeighbours = 5

func (s *Service) handleRanking(c *gin.Context) error {
	p, err := current(c)
	if err != nil {
		return err
	}
	ext, err := api.PathParam(c, "external_id", ErrInvalidExternalID)
	if err != nil {
		return err
	}
	n := DefaultRankingNeighbours
	v, err := api.Query(c, "n", api.ErrInvalidParam)
	if err != nil {
		return err
	}
	if v != "" {
		if n, err = strconv.Atoi(v); err != nil {
			return api.ErrInvalidParam.WithMessage("n must be an integer from 0 to %d", points.MaxNeighbours)
		}
	}
	r, err := s.Ranking(c.Request.Context(), p, ext, n)
	if err != nil {
		return err
	}
	u := rankedViews([]points.Ranked{r.User})[0]
	c.JSON(http.StatusOK, gin.H{"rank": r.Rank, "above": rankedViews(r.Above), "user": u, "below": rankedViews(r.Below)})
	return nil
}
