package storage

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// Migration is one versioned schema step, written once in portable SQL with
// placeholders for the types that differ between dialects:
// {{bytes}}, {{time}}, {{bool}}, {{false}}, {{true}}. A step that needs Go
// (a value SQL cannot compute the same on both databases) runs Go after Up
// and then the statements of After, all in the migration's transaction.
type Migration struct {
	ID    string
	Up    []string
	Go    func(ctx context.Context, tx *gorm.DB) error
	After []string
}

// Migrations is the schema's history, oldest first. Never edit a shipped
// step: add a new one.
func Migrations() []Migration {
	return []Migration{
		{ID: "0001_users_sessions_wallets_partners", Up: []string{
			`CREATE TABLE users (
				id TEXT PRIMARY KEY,
				username TEXT NOT NULL,
				email TEXT,
				email_verified {{bool}} NOT NULL DEFAULT {{false}},
				password_hash TEXT,
				language TEXT NOT NULL DEFAULT 'en',
				points BIGINT NOT NULL DEFAULT 0 CHECK (points >= 0),
				referral_code TEXT NOT NULL,
				referrer_id TEXT REFERENCES users(id) ON DELETE SET NULL,
				referee_count BIGINT NOT NULL DEFAULT 0 CHECK (referee_count >= 0),
				joined_at {{time}} NOT NULL,
				updated_at {{time}} NOT NULL
			)`,
			`CREATE UNIQUE INDEX users_username_key ON users (lower(username))`,
			`CREATE UNIQUE INDEX users_email_key ON users (lower(email))`,
			`CREATE UNIQUE INDEX users_referral_code_key ON users (referral_code)`,
			`CREATE INDEX users_referrer_idx ON users (referrer_id, joined_at, id)`,
			`CREATE INDEX users_rank_idx ON users (points DESC, joined_at, id)`,
			`CREATE INDEX users_updated_idx ON users (updated_at, id)`,
			`CREATE TABLE wallets (
				address {{bytes}} PRIMARY KEY CHECK (length(address) = 20),
				user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
				chain_id BIGINT NOT NULL,
				type TEXT NOT NULL,
				is_primary {{bool}} NOT NULL DEFAULT {{false}},
				linked_at {{time}} NOT NULL
			)`,
			`CREATE INDEX wallets_user_idx ON wallets (user_id, linked_at)`,
			`CREATE UNIQUE INDEX wallets_one_primary_key ON wallets (user_id) WHERE is_primary`,
			`CREATE TABLE sessions (
				token_hash {{bytes}} PRIMARY KEY,
				user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
				created_at {{time}} NOT NULL,
				expires_at {{time}}
			)`,
			`CREATE INDEX sessions_user_idx ON sessions (user_id)`,
			`CREATE TABLE partners (
				id TEXT PRIMARY KEY,
				name TEXT NOT NULL,
				secret_hash {{bytes}} NOT NULL,
				origins TEXT NOT NULL DEFAULT '',
				client_login {{bool}} NOT NULL DEFAULT {{false}},
				signed_requests {{bool}} NOT NULL DEFAULT {{false}},
				disabled {{bool}} NOT NULL DEFAULT {{false}},
				created_at {{time}} NOT NULL,
				updated_at {{time}} NOT NULL
			)`,
			`CREATE TABLE partner_identities (
				partner_id TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
				external_id TEXT NOT NULL,
				user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
				first_name TEXT,
				last_name TEXT,
				email TEXT,
				created_at {{time}} NOT NULL,
				updated_at {{time}} NOT NULL,
				PRIMARY KEY (partner_id, external_id)
			)`,
			`CREATE INDEX partner_identities_user_idx ON partner_identities (user_id)`,
		}},
		{ID: "0002_points_ledger", Up: []string{
			// One row per applied change of a user's points. The unique key
			// makes a retried request (same user, same idempotency key) land
			// on the first one; balance_after is the balance that change left.
			`CREATE TABLE points_entries (
				id TEXT PRIMARY KEY,
				user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
				amount BIGINT NOT NULL,
				reason TEXT NOT NULL,
				idempotency_key TEXT NOT NULL,
				balance_after BIGINT NOT NULL,
				created_at {{time}} NOT NULL,
				UNIQUE (user_id, idempotency_key)
			)`,
			`CREATE INDEX points_entries_user_created_idx ON points_entries (user_id, created_at, id)`,
			// Ranking within a partner asks "has u an identity of this
			// partner?" per user: without this index SQLite answers it by
			// scanning the partner's identities (the primary key) each time.
			`CREATE INDEX partner_identities_partner_user_idx ON partner_identities (partner_id, user_id)`,
		}},
		{ID: "0003_partner_signing_keys", Up: []string{
			// The partner's secret sealed under the server key
			// (WALLETAUTH_SECRET_KEY), opened only to verify HS256 request
			// JWTs; secret_hash stays the Bearer-secret lookup, now indexed.
			`ALTER TABLE partners ADD COLUMN signing_key {{bytes}}`,
			`CREATE UNIQUE INDEX partners_secret_hash_key ON partners (secret_hash)`,
		}},
		{ID: "0004_users_email_key", Up: []string{
			// Emails are compared on a key computed in Go (EmailKey: NFC
			// and full Unicode case folding), the same on both databases:
			// SQLite's lower() folds ASCII only, and neither database's
			// lower() equates NFC and NFD spellings. The key replaces the
			// lower(email) index; email keeps what the user typed.
			`ALTER TABLE users ADD COLUMN email_key TEXT`,
			`DROP INDEX users_email_key`,
		}, Go: fillEmailKeys, After: []string{
			`CREATE UNIQUE INDEX users_email_key ON users (email_key)`,
		}},
		{ID: "0005_session_list_and_signing_keys", Up: []string{
			// How a session was opened, for the session list and the amr
			// claim; unknown (NULL) for older rows. (A session's id needs
			// no column: it is a prefix of token_hash, see auth.SessionID.)
			`ALTER TABLE sessions ADD COLUMN method TEXT`,
			`ALTER TABLE sessions ADD COLUMN user_agent TEXT`,
			// The ES256 keys of access tokens: private_key is PKCS #8 sealed
			// under the server key, public_key PKIX. One is current (signs);
			// retired ones stay published until their tokens have expired.
			`CREATE TABLE signing_keys (
				kid TEXT PRIMARY KEY,
				private_key {{bytes}} NOT NULL,
				public_key {{bytes}} NOT NULL,
				is_current {{bool}} NOT NULL DEFAULT {{false}},
				created_at {{time}} NOT NULL,
				retired_at {{time}}
			)`,
			`CREATE UNIQUE INDEX signing_keys_one_current_key ON signing_keys (is_current) WHERE is_current`,
		}},
		{ID: "0006_mail_outbox", Up: []string{
			// The durable outbox of the mail package: a row is written in the
			// transaction of the request that causes the mail, and a sender
			// delivers it later. locked_until is a claim's lease (a sender
			// that died mid-send releases the row when it passes); status is
			// pending, sent or failed (given up, last_error says why).
			`CREATE TABLE mail_outbox (
				id TEXT PRIMARY KEY,
				kind TEXT NOT NULL,
				to_addr TEXT NOT NULL,
				subject TEXT NOT NULL,
				text_body TEXT NOT NULL,
				html_body TEXT NOT NULL,
				message_id TEXT NOT NULL,
				status TEXT NOT NULL,
				attempts BIGINT NOT NULL DEFAULT 0,
				next_attempt_at {{time}} NOT NULL,
				locked_until {{time}},
				give_up_at {{time}} NOT NULL,
				last_error TEXT,
				created_at {{time}} NOT NULL,
				done_at {{time}}
			)`,
			`CREATE INDEX mail_outbox_due_idx ON mail_outbox (status, next_attempt_at)`,
			`CREATE INDEX mail_outbox_done_idx ON mail_outbox (done_at)`,
		}},
		{ID: "0007_webhooks", Up: []string{
			// Partner webhook endpoints (package webhooks); secret is the
			// signing secret sealed under the server key.
			`CREATE TABLE webhook_endpoints (
				id TEXT PRIMARY KEY,
				partner_id TEXT NOT NULL REFERENCES partners(id) ON DELETE CASCADE,
				url TEXT NOT NULL,
				events TEXT NOT NULL,
				secret {{bytes}} NOT NULL,
				created_at {{time}} NOT NULL
			)`,
			`CREATE INDEX webhook_endpoints_partner_idx ON webhook_endpoints (partner_id, created_at)`,
			// The outbox: one row per event and endpoint, written in the
			// transaction of the change; id is the webhook-id of every
			// attempt. A worker claims a due row until claimed_until.
			`CREATE TABLE webhook_deliveries (
				id TEXT PRIMARY KEY,
				endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
				event_type TEXT NOT NULL,
				payload TEXT NOT NULL,
				status TEXT NOT NULL,
				attempts INTEGER NOT NULL DEFAULT 0,
				next_attempt_at {{time}} NOT NULL,
				claimed_until {{time}},
				claim_token TEXT,
				last_status INTEGER,
				last_error TEXT,
				created_at {{time}} NOT NULL,
				finished_at {{time}}
			)`,
			`CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'`,
			`CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id)`,
			`CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (finished_at) WHERE status <> 'pending'`,
		}},
		{ID: "0008_activity", Up: []string{
			// The security activity log (package activity). id starts with
			// the hex nanoseconds of at, so (user_id, id) pages newest first;
			// at alone serves the retention sweep. detail is JSON text.
			`CREATE TABLE activity_events (
				id TEXT PRIMARY KEY,
				user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
				type TEXT NOT NULL,
				at {{time}} NOT NULL,
				method TEXT,
				ip TEXT,
				user_agent TEXT,
				detail TEXT
			)`,
			`CREATE INDEX activity_events_user_idx ON activity_events (user_id, id)`,
			`CREATE INDEX activity_events_at_idx ON activity_events (at)`,
		}},
	}
}

// migrateLockClass is the first key of the PostgreSQL advisory lock that
// serialises migrations; the second is the hash of the schema migrated.
const migrateLockClass = 0x7a11e7 // "wallet"

// Migrate applies every migration not yet applied, all in one transaction:
// a step that fails leaves the database as it was. On an up-to-date
// database it does nothing. On PostgreSQL the transaction first takes an
// advisory lock (pg_advisory_xact_lock) on the schema, so instances starting
// at once on a fresh database migrate it one after another instead of
// colliding on the tables they create; the lock is released when the
// transaction ends, also when the connection drops.
func (db *DB) Migrate(ctx context.Context) error { return db.migrate(ctx, "") }

// MigrateTo applies the migrations up to and including id, as Migrate does
// (tests use it to write rows in an older schema and then migrate them).
func (db *DB) MigrateTo(ctx context.Context, id string) error { return db.migrate(ctx, id) }

func (db *DB) migrate(ctx context.Context, to string) error {
	var steps []*gormigrate.Migration
	for _, m := range Migrations() {
		m := m
		steps = append(steps, &gormigrate.Migration{
			ID: m.ID,
			Migrate: func(tx *gorm.DB) error {
				for _, stmt := range m.Up {
					if err := tx.Exec(db.render(stmt)).Error; err != nil {
						return fmt.Errorf("migration %s: %w", m.ID, err)
					}
				}
				if m.Go != nil {
					if err := m.Go(ctx, tx); err != nil {
						return fmt.Errorf("migration %s: %w", m.ID, err)
					}
				}
				for _, stmt := range m.After {
					if err := tx.Exec(db.render(stmt)).Error; err != nil {
						return fmt.Errorf("migration %s: %w", m.ID, err)
					}
				}
				return nil
			},
		})
	}
	opts := *gormigrate.DefaultOptions
	opts.UseTransaction = false // the transaction is ours, opened with the lock
	opts.TableName = "schema_migrations"
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if db.Dialect == Postgres {
			// coalesce: current_schema() is NULL when no schema of the
			// search_path exists, and the lock function ignores NULL keys.
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(?, hashtext(coalesce(current_schema(), '')))`, migrateLockClass).Error; err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		g := gormigrate.New(tx, &opts, steps)
		if to != "" {
			return g.MigrateTo(to)
		}
		return g.Migrate()
	})
	if err != nil {
		return fmt.Errorf("storage: migrate: %w", err)
	}
	return nil
}

func (db *DB) render(stmt string) string {
	var r *strings.Replacer
	if db.Dialect == Postgres {
		r = strings.NewReplacer("{{bytes}}", "BYTEA", "{{time}}", "TIMESTAMPTZ", "{{bool}}", "BOOLEAN", "{{false}}", "FALSE", "{{true}}", "TRUE")
	} else {
		r = strings.NewReplacer("{{bytes}}", "BLOB", "{{time}}", "DATETIME", "{{bool}}", "BOOLEAN", "{{false}}", "0", "{{true}}", "1")
	}
	return r.Replace(stmt)
}
