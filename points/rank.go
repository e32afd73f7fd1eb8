package points

import (
	"context"

	"github.com/walletauth/walletauth/users"
)

// The ranking is the users store's (a query over the user records, see
// users.Store.Rank); these are its names here, where the ledger's callers
// look for them.
type (
	Ranked  = users.Ranked
	Ranking = users.Ranking
)

// MaxNeighbours bounds n of RankInPartner and Rank.
const MaxNeighbours = users.MaxNeighbours

// RankInPartner ranks userID by points among the users of scope (a
// partner's users: partners.RankScope), with up to n neighbours on each
// side; ExternalID is the partner's id of each user (the smallest, when a
// user has several identities of the partner). Errors: users.ErrNotFound
// when the user is not in scope; api.ErrInvalidParam for n out of range.
func (l *Ledger) RankInPartner(ctx context.Context, scope users.Scope, userID string, n int) (Ranking, error) {
	return l.users.Rank(ctx, userID, n, scope)
}

// Rank is RankInPartner over all users (a global leaderboard); ExternalID
// is empty. Errors: users.ErrNotFound, api.ErrInvalidParam.
func (l *Ledger) Rank(ctx context.Context, userID string, n int) (Ranking, error) {
	return l.users.Rank(ctx, userID, n, users.Scope{})
}
