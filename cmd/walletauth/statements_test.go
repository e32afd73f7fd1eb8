package main

import (
	"sync/atomic"

	"gorm.io/gorm"

	"github.com/walletauth/walletauth/storage"
)

// statementHook lets a test count the SQL statements of the app: its GORM
// callbacks are registered before the app's first query
// (appOptions.beforeWire: GORM does not allow registering them while
// background work queries), and call what set installed, from then on.
type statementHook struct {
	fn atomic.Pointer[func(kind string, db *gorm.DB)]
}

// register adds the callbacks to db: kind is select, row, raw, insert,
// update or delete.
func (h *statementHook) register(db *storage.DB) {
	call := func(kind string) func(*gorm.DB) {
		return func(d *gorm.DB) {
			if f := h.fn.Load(); f != nil {
				(*f)(kind, d)
			}
		}
	}
	cb := db.Callback()
	_ = cb.Query().After("gorm:query").Register("test:statements_select", call("select"))
	_ = cb.Row().After("gorm:row").Register("test:statements_row", call("row"))
	_ = cb.Raw().After("gorm:raw").Register("test:statements_raw", call("raw"))
	_ = cb.Create().After("gorm:create").Register("test:statements_insert", call("insert"))
	_ = cb.Update().After("gorm:update").Register("test:statements_update", call("update"))
	_ = cb.Delete().After("gorm:delete").Register("test:statements_delete", call("delete"))
}

// set makes every statement from now on call f.
func (h *statementHook) set(f func(kind string, db *gorm.DB)) { h.fn.Store(&f) }
