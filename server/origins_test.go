package server

import (
	"slices"
	"testing"

	"github.com/kratos-orgs/kratos-orgs/config"
)

// Cookie-authenticated changes on the org admins' API come only from
// https:// origins, plus http:// ones for loopback hosts (development).
func TestAPIOriginsArePlainHTTPOnlyForLoopback(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: config.Default()}
	s.cfg.Serve.Public.BaseURL = "https://orgs.example.com"
	s.cfg.Invitations.AllowedRedirectHosts = []string{"app.example.com", "localhost:3000", "127.0.0.1:8080"}
	got := s.apiOrigins()
	want := []string{"https://orgs.example.com", "https://app.example.com", "https://localhost:3000", "http://localhost:3000",
		"https://127.0.0.1:8080", "http://127.0.0.1:8080"}
	if !slices.Equal(got, want) {
		t.Fatalf("origins %v, want %v", got, want)
	}
}
