package invites

// SetCrashHook installs a crash hook (see crash.go) for tests in package
// invites_test.
func SetCrashHook(s *Service, hook func(step string) error) { s.crashAt = hook }
