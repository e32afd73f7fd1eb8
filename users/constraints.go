package users

import "github.com/walletauth/walletauth/storage"

// The unique indexes of users and wallets (storage/migrate.go), as the
// databases name them in a violation.
var (
	uniqueUsername     = storage.Unique{Name: "users_username_key"} // on lower(username): SQLite names the index
	uniqueEmail        = storage.Unique{Name: "users_email_key", Columns: "users.email_key"}
	uniqueReferralCode = storage.Unique{Name: "users_referral_code_key", Columns: "users.referral_code"}
	uniqueWallet       = storage.Unique{Name: "wallets_pkey", Columns: "wallets.address"}
)
