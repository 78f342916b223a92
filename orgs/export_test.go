package orgs

// SetCrashHook installs a crash hook (see crash.go) for tests in package
// orgs_test.
func SetCrashHook(s *Store, hook func(step string) error) { s.crashAt = hook }
