package auth

// SetBeforeSessionInsert runs f before each session INSERT of s (tests).
func SetBeforeSessionInsert(s *Sessions, f func(rows int)) { s.writer.beforeExec = f }
