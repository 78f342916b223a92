package domains

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// txtServer is a tiny authoritative DNS server on a local UDP port: it
// answers TXT queries from a map (name → values) and NXDOMAIN otherwise.
type txtServer struct {
	mu      sync.Mutex
	records map[string][]string
	addr    string
	queries int
}

func startTXTServer(t *testing.T) *txtServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &txtServer{records: map[string][]string{}, addr: pc.LocalAddr().String()}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

func (s *txtServer) set(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.Fqdn(name)] = values
}

func (s *txtServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func (s *txtServer) serve(w dns.ResponseWriter, r *dns.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	q := r.Question[0]
	values, ok := s.records[strings.ToLower(q.Name)]
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeTXT:
		for _, v := range values {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
		}
	}
	_ = w.WriteMsg(m)
}

// TestVerifyByDNS: the TXT check through a configured resolver verifies a
// domain only when a record at _kratos-orgs.<domain> holds the claim's
// token; a wrong token or no record leaves it unverified.
func TestVerifyByDNS(t *testing.T) {
	srv := startTXTServer(t)
	h := newHarness(t, "redis-server", NewResolver(srv.addr, 2*time.Second))
	ctx := context.Background()
	a := h.org("DNS Co")
	claim := func(domain string) Domain {
		d, _, err := h.svc.Claim(ctx, a.ID, ClaimRequest{Domain: domain, Policy: AutoJoin})
		if err != nil {
			t.Fatal(err)
		}
		if d.DNSRecord.Name != RecordPrefix+domain || d.DNSRecord.Type != "TXT" {
			t.Fatalf("dns record: %+v", d.DNSRecord)
		}
		return d
	}
	right, wrong, none := claim("right.example"), claim("wrong.example"), claim("none.example")
	srv.set("_kratos-orgs.right.example", "v=spf1 -all", right.DNSRecord.Value)
	srv.set("_kratos-orgs.wrong.example", wrong.DNSRecord.Value+"x", right.DNSRecord.Value)
	_ = none

	for _, tc := range []struct {
		domain string
		ok     bool
	}{{"right.example", true}, {"wrong.example", false}, {"none.example", false}} {
		d, err := h.svc.Verify(ctx, a.ID, tc.domain)
		if tc.ok {
			if err != nil || !d.Verified || d.VerifiedBy != VerifiedByDNS {
				t.Errorf("%s: %+v %v; want verified by dns", tc.domain, d, err)
			}
		} else if apperr.CodeOf(err) != "domain_unverified" || apperr.KindOf(err) != apperr.Conflict {
			t.Errorf("%s: %v; want domain_unverified", tc.domain, err)
		}
		list, _ := h.svc.List(ctx, a.ID)
		for _, x := range list {
			if x.Domain == tc.domain && x.Verified != tc.ok {
				t.Errorf("%s stored verified=%v", tc.domain, x.Verified)
			}
		}
	}
	if n := srv.count(); n < 3 {
		t.Fatalf("the local resolver answered %d queries: the check did not use it", n)
	}
	// A resolver that does not answer: 503, not "unverified".
	dead := NewService(Options{Store: h.store, Orgs: h.orgs, Identities: h.ids, Resolver: NewResolver("127.0.0.1:1", 300*time.Millisecond), Roles: h.svc.roles})
	if _, err := dead.Verify(ctx, a.ID, "wrong.example"); apperr.KindOf(err) != apperr.Unavailable {
		t.Fatalf("dead resolver: %v; want unavailable", err)
	}
}
