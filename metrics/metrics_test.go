package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Request runs on every HTTP request: after the first one of a kind it
// must not allocate, and every one must be counted.
func TestRequestIsCountedWithoutAllocating(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled here
	defer rdb.Close()
	m := New(rdb, redisx.Keyspace{Prefix: "t:"})
	m.Request("admin", "/admin/x", "POST", 201, time.Millisecond)
	if n := testing.AllocsPerRun(100, func() {
		m.Request("admin", "/admin/x", "POST", 201, time.Millisecond)
	}); n != 0 {
		t.Fatalf("Request allocates %.0f times", n)
	}
	m.Request("admin", "/admin/x", "POST", 409, time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`kratos_orgs_http_request_duration_seconds_count{listener="admin",method="POST",route="/admin/x",status="201"} 102`,
		`kratos_orgs_http_request_duration_seconds_count{listener="admin",method="POST",route="/admin/x",status="409"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("missing %s", want)
		}
	}
}
