package invites

import "time"

// SetCrashHook installs a crash hook (see crash.go) for tests in package
// invites_test.
func SetCrashHook(s *Service, hook func(step string) error) { s.crashAt = hook }

// SetClock replaces the service's clock, for tests in package invites_test.
func SetClock(s *Service, now func() time.Time) { s.now = now }
