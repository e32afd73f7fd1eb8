// Package clocktest is the one test clock of walletauth's tests: a fake
// time source to inject where production passes time.Now. It imports only
// the standard library, so any package's tests may use it (wallet's too,
// which import no other project package).
package clocktest

import (
	"sync"
	"time"
)

// Clock is a fake clock safe for concurrent use. It stands still unless
// advanced, or, after SetStep, moves by a step after every reading (for
// tests where each write needs its own instant).
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

// New returns a clock stopped at start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// NewStepping returns a clock at start that moves by step after every
// reading (New, then SetStep).
func NewStepping(start time.Time, step time.Duration) *Clock {
	return &Clock{now: start, step: step}
}

// Now returns the clock's time, then moves it by the step (zero unless set).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// SetStep makes every later reading move the clock by d afterwards; zero
// stops it again.
func (c *Clock) SetStep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.step = d
}
