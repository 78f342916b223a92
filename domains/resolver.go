package domains

import (
	"context"
	"errors"
	"net"
	"time"
)

// NewResolver returns the resolver of the DNS TXT check: the system's when
// server is empty, else one that asks server (host:port) over UDP, and TCP
// for truncated answers. timeout bounds each query (0: 5s).
func NewResolver(server string, timeout time.Duration) *net.Resolver {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if server == "" {
		return &net.Resolver{}
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			return d.DialContext(ctx, network, server)
		},
	}
}

// isNotFound tells "no such record" (the check fails) from a resolver that
// did not answer (try again).
func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
