package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// collected keeps what a phase created, for the phases after it.
type collected struct {
	mu     sync.Mutex
	emails []string
	ids    []string
}

func (c *collected) add(email, id string) {
	c.mu.Lock()
	c.emails = append(c.emails, email)
	c.ids = append(c.ids, id)
	c.mu.Unlock()
}

// measure runs the phases in order; each uses distinct addresses, so a
// phase measures the path it names (new, unknown account, known account).
func measure(ctx context.Context, s *stack, o options) ([]row, error) {
	if o.seed > 0 {
		t0 := time.Now()
		if err := s.seed(ctx, o.seed); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "seeded %d identities in %s\n", o.seed, time.Since(t0).Round(time.Millisecond))
	}
	var orgIDs [3]string
	for i := range orgIDs {
		id, err := s.createOrg(ctx, fmt.Sprintf("Bench %d", i))
		if err != nil {
			return nil, err
		}
		orgIDs[i] = id
	}
	c, d := o.concurrency, o.duration
	stamp := time.Now().UnixNano()
	phase := func(name string) { fmt.Fprintf(os.Stderr, "measuring %s...\n", name) }

	phase("Kratos: create")
	var accounts collected
	create := run(ctx, c, d, func(ctx context.Context, n int) error {
		email := fmt.Sprintf("account-%d-%d@bench.example", stamp, n)
		id, err := s.kratosCreate(ctx, email)
		if err == nil {
			accounts.add(email, id)
		}
		return err
	})
	phase("kratos-orgs: invite new addresses")
	var placeholders collected
	inviteNew := run(ctx, c, d, func(ctx context.Context, n int) error {
		email := fmt.Sprintf("new-%d-%d@bench.example", stamp, n)
		err := s.invite(ctx, orgIDs[0], email)
		if err == nil {
			placeholders.add(email, "")
		}
		return err
	})
	// Known: the placeholders of the new addresses, once the outbox has
	// remembered their identities (an account kratos-orgs has seen takes
	// the same path: one read by id). Measured before the look-ups: on
	// SQLite those outlast their clients and keep Kratos busy afterwards.
	fmt.Fprintf(os.Stderr, "waiting for the outbox to remember %d identities...\n", len(placeholders.emails))
	if err := s.waitKnown(ctx, placeholders.emails); err != nil {
		return nil, err
	}
	phase("kratos-orgs: invite addresses it knows")
	inviteKnown := run(ctx, c, d, func(ctx context.Context, n int) error {
		if n >= len(placeholders.emails) {
			return errExhausted
		}
		return s.invite(ctx, orgIDs[2], placeholders.emails[n])
	})
	phase("Kratos: recovery link")
	recovery := run(ctx, c, d, func(ctx context.Context, n int) error {
		return s.kratosRecoveryLink(ctx, accounts.ids[n%len(accounts.ids)])
	})
	phase("Kratos: look-up")
	lookUp := run(ctx, c, d, func(ctx context.Context, n int) error {
		return s.kratosLookUp(ctx, accounts.emails[n%len(accounts.emails)])
	})
	phase("kratos-orgs: invite accounts it has not seen")
	inviteUnknown := run(ctx, c, d, func(ctx context.Context, n int) error {
		if n >= len(accounts.emails) {
			return errExhausted
		}
		return s.invite(ctx, orgIDs[1], accounts.emails[n])
	})
	return []row{
		{What: "invite, new address", Ours: &inviteNew, Kratos: &create, KratosOp: "create (POST /admin/identities)"},
		{What: "invite, account kratos-orgs has not seen", Ours: &inviteUnknown, Kratos: &lookUp, KratosOp: "look-up (GET /admin/identities?credentials_identifier=)",
			Note: "create refused (409), then the look-up"},
		{What: "invite, address kratos-orgs knows", Ours: &inviteKnown, Kratos: &lookUp, KratosOp: "look-up (same as above)",
			Note: "one read by id (GET /admin/identities/{id}); the first row's addresses, now known"},
		{What: "accept", Kratos: &recovery, KratosOp: "recovery link (POST /admin/recovery/link)",
			Note: "kratos-orgs' accept not measured yet (the page's form flow)"},
	}, nil
}
