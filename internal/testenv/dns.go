package testenv

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TXTServer is a tiny authoritative DNS server on a local UDP port, for
// the DNS TXT check of claimed domains: it answers TXT queries from a map
// (name → values), NXDOMAIN otherwise, and counts every query it gets.
type TXTServer struct {
	Addr string

	mu      sync.Mutex
	records map[string][]string
	queries map[string]int
	total   int
}

// StartTXTServer starts one, stopped when the test ends.
func StartTXTServer(t testing.TB) *TXTServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &TXTServer{records: map[string][]string{}, queries: map[string]int{}, Addr: pc.LocalAddr().String()}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

// Set publishes TXT values at name.
func (s *TXTServer) Set(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.Fqdn(strings.ToLower(name))] = values
}

// Count is the number of queries received, for name ("" for all).
func (s *TXTServer) Count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		return s.total
	}
	return s.queries[dns.Fqdn(strings.ToLower(name))]
}

func (s *TXTServer) serve(w dns.ResponseWriter, r *dns.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) == 0 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	s.total++
	s.queries[name]++
	values, ok := s.records[name]
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
