// Package archtest holds the tests of the house rules that span the
// module: each table has one owning package, the only one whose SQL and
// GORM models name it, and the HTTP frame imports no database driver. It
// has no code of its own.
package archtest
