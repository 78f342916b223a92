package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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
func measure(ctx context.Context, s *stack, o options) (*measurements, error) {
	if o.seed > 0 {
		t0 := time.Now()
		if err := s.seed(ctx, o.seed); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "seeded %d identities in %s\n", o.seed, time.Since(t0).Round(time.Millisecond))
	}
	var orgIDs [4]string
	for i := range orgIDs {
		id, err := s.createOrg(ctx, fmt.Sprintf("Bench %d", i))
		if err != nil {
			return nil, err
		}
		orgIDs[i] = id
	}
	c, d := o.concurrency, o.duration
	stamp := time.Now().UnixNano()
	var m measurements
	var accounts, placeholders collected
	m.create, m.createCost = s.measured(ctx, "Kratos: create", c, d, func(ctx context.Context, n int) error {
		email := fmt.Sprintf("account-%d-%d@bench.example", stamp, n)
		id, err := s.kratosCreate(ctx, email)
		if err == nil {
			accounts.add(email, id)
		}
		return err
	})
	m.createAsOrgs, m.createAsOrgsCost = s.measured(ctx, "Kratos: create with kratos-orgs' body", c, d, func(ctx context.Context, n int) error {
		return s.kratosCreateAsOrgs(ctx, fmt.Sprintf("inactive-%d-%d@bench.example", stamp, n), orgIDs[0])
	})
	if o.bulkRows > 0 {
		m.bulk = s.measureBulk(ctx, o, orgIDs[3], stamp)
	}
	m.inviteNew, m.inviteNewCost = s.measured(ctx, "kratos-orgs: invite new addresses", c, d, func(ctx context.Context, n int) error {
		email := fmt.Sprintf("new-%d-%d@bench.example", stamp, n)
		err := s.invite(ctx, orgIDs[0], email)
		if err == nil {
			placeholders.add(email, "")
		}
		return err
	})
	// Known: the placeholders of the new addresses, once the outbox has
	// remembered their identities (an account kratos-orgs has seen takes
	// the same path). Measured before the look-ups: on SQLite those outlast
	// their clients and keep Kratos busy afterwards.
	fmt.Fprintf(os.Stderr, "waiting for the outbox to remember %d identities...\n", len(placeholders.emails))
	if err := s.waitKnown(ctx, placeholders.emails); err != nil {
		return nil, err
	}
	m.inviteKnown, m.inviteKnownCost = s.measured(ctx, "kratos-orgs: invite addresses it knows", c, d, func(ctx context.Context, n int) error {
		if n >= len(placeholders.emails) {
			return errExhausted
		}
		return s.invite(ctx, orgIDs[2], placeholders.emails[n])
	})
	m.recovery, m.recoveryCost = s.measured(ctx, "Kratos: recovery link", c, d, func(ctx context.Context, n int) error {
		return s.kratosRecoveryLink(ctx, accounts.ids[n%len(accounts.ids)])
	})
	// Accept: the new addresses' invitations of the first kratos-orgs
	// phase, with the links their mails carried.
	m.accept, m.acceptCost = s.measured(ctx, "kratos-orgs: accept (new person)", c, d, func(ctx context.Context, n int) error {
		if n >= len(placeholders.emails) {
			return errExhausted
		}
		link := s.mailbox.link(orgIDs[0], placeholders.emails[n])
		if link == "" {
			return errNoLink
		}
		return s.accept(ctx, link)
	})
	m.lookUp, m.lookUpCost = s.measured(ctx, "Kratos: look-up", c, d, func(ctx context.Context, n int) error {
		return s.kratosLookUp(ctx, accounts.emails[n%len(accounts.emails)])
	})
	var used atomic.Int64
	m.inviteUnknown, m.inviteUnknownCost = s.measured(ctx, "kratos-orgs: invite accounts it has not seen", c, d, func(ctx context.Context, n int) error {
		if n >= len(accounts.emails) {
			return errExhausted
		}
		used.Store(max(used.Load(), int64(n+1)))
		return s.invite(ctx, orgIDs[1], accounts.emails[n])
	})
	// Learned: the reconciler's pass over Kratos remembers every account's
	// address; the accounts the phase above did not reach are invited.
	if err := s.learn(ctx); err != nil {
		return nil, err
	}
	rest := accounts.emails[min(int(used.Load()), len(accounts.emails)):]
	m.inviteLearned, m.inviteLearnedCost = s.measured(ctx, "kratos-orgs: invite accounts the reconciler learned", c, d, func(ctx context.Context, n int) error {
		if n >= len(rest) {
			return errExhausted
		}
		return s.invite(ctx, orgIDs[1], rest[n])
	})
	return &m, nil
}

// learn runs one reconciler pass, as serve does every reconcile.interval.
func (s *stack) learn(ctx context.Context) error {
	t0 := time.Now()
	rep, err := s.orgs.Reconciler.Pass(ctx, true)
	if err != nil {
		return fmt.Errorf("reconciler pass: %w", err)
	}
	fmt.Fprintf(os.Stderr, "reconciler pass in %s (%d fixes)\n", time.Since(t0).Round(time.Millisecond), rep.Total())
	return nil
}

// measurements are the phases' results and costs.
type measurements struct {
	create, inviteNew, inviteKnown, recovery, accept, lookUp, inviteUnknown, inviteLearned result
	createAsOrgs                                                                           result
	createCost, inviteNewCost, inviteKnownCost, recoveryCost, acceptCost, lookUpCost       *cost
	inviteUnknownCost, inviteLearnedCost, createAsOrgsCost                                 *cost
	bulk                                                                                   []bulkRun // Kratos' batch creates, then kratos-orgs' bulk invitation
}

func (m *measurements) rows() []row {
	return []row{
		{What: "invite, new address", Ours: &m.inviteNew, Kratos: &m.create, KratosOp: "create (POST /admin/identities)",
			OursCost: m.inviteNewCost, KratosCost: m.createCost},
		{What: "(Kratos alone) create with kratos-orgs' body", Kratos: &m.createAsOrgs,
			KratosOp: "create, state inactive + metadata_admin marker", KratosCost: m.createAsOrgsCost,
			Note: "what Kratos spends on the first row's call without kratos-orgs beside it"},
		{What: "invite, account kratos-orgs has not seen", Ours: &m.inviteUnknown, Kratos: &m.lookUp, KratosOp: "look-up (GET /admin/identities?credentials_identifier=)",
			Note: "create refused (409), then the look-up", OursCost: m.inviteUnknownCost, KratosCost: m.lookUpCost},
		{What: "invite, account the reconciler learned", Ours: &m.inviteLearned, Kratos: &m.lookUp, KratosOp: "look-up (same as above)",
			Note: "accounts made in Kratos, remembered by one reconciler pass", OursCost: m.inviteLearnedCost, KratosCost: m.lookUpCost},
		{What: "invite, address kratos-orgs knows", Ours: &m.inviteKnown, Kratos: &m.lookUp, KratosOp: "look-up (same as above)",
			Note: "the first row's addresses, now known", OursCost: m.inviteKnownCost, KratosCost: m.lookUpCost},
		{What: "accept (new person: page, then form)", Ours: &m.accept, Kratos: &m.recovery, KratosOp: "recovery link (POST /admin/recovery/link)",
			Note: "the first row's invitations, links from their mails", OursCost: m.acceptCost, KratosCost: m.recoveryCost},
	}
}
