package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// redisLogger is go-redis's logger (redis.SetLogger's internal.Logging)
// over slog: its printf-style lines (pool, sentinel and cluster events,
// connection faults) become warnings of the service's own log, so the log
// stays one JSON object per line instead of go-redis's default
// "redis: 2026/01/02 15:04:05 pool.go:123: …" on stderr.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	l.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

// useRedisLogger routes go-redis's log lines into log. This is the one
// process-wide setting walletauth makes: go-redis v9 has no per-client
// logger (its Options have none; pools and background goroutines read the
// package's internal.Logger, mostly with context.Background(), so no
// context can carry one either). It is set by serve rather than main
// because only serve knows the log's format, level and output (buffered
// and shared with the access log, so lines never interleave); a process
// runs one serve. The logger is read atomically by go-redis.
func useRedisLogger(log *slog.Logger) {
	redis.SetLogger(redisLogger{log: log})
}
