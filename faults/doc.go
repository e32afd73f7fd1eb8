// Package faults holds fault-injection tests of the walletauth binary: each
// test starts throwaway PostgreSQL and Redis servers (never the shared ones
// on 5432/6379) and the real walletauth process against them, then stops or
// freezes a backend, or SIGTERMs the service, under load, and checks the
// contract's "Many instances and outages" promises.
//
// The tests carry the build tag faults and run with `make test-faults`:
//
//	go test -race -count=1 -timeout 10m -tags faults -run 'Fault' ./faults/...
//
// They need PostgreSQL's server binaries (initdb, postgres: found on PATH,
// under /usr/lib/postgresql/*/bin, or in WALLETAUTH_FAULTS_PG_BIN) and
// redis-server. Run as root, PostgreSQL runs as the postgres OS user. With
// CI=true missing binaries fail the tests; otherwise they skip.
package faults
