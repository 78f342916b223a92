package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/config"
	"github.com/kratos-orgs/kratos-orgs/events"
	"github.com/kratos-orgs/kratos-orgs/invites"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// Keyspace is the key layout of a configuration: its prefix, and the audit
// and event streams every script appends to.
func Keyspace(cfg config.Config) redisx.Keyspace {
	return redisx.Keyspace{Prefix: cfg.Redis.KeyPrefix, Record: redisx.RecordOptions{
		AuditMaxEntries: cfg.Audit.MaxEntries, AuditMaxAge: cfg.Audit.MaxAge,
		Events: len(cfg.Events.Endpoints) > 0, EventMaxEntries: cfg.Events.MaxEntries,
	}}
}

// newEvents builds the dispatcher when endpoints are configured.
func (s *Server) newEvents(log *slog.Logger, now func() time.Time) error {
	var err error
	s.Events, err = NewDispatcher(s.cfg, s.rdb, s.Metrics, log.With("component", "events"), now)
	return err
}

// NewDispatcher builds the event dispatcher from the configuration; nil
// when no endpoint is configured.
func NewDispatcher(cfg config.Config, rdb redis.UniversalClient, obs events.Observer, log *slog.Logger, now func() time.Time) (*events.Dispatcher, error) {
	if len(cfg.Events.Endpoints) == 0 {
		return nil, nil
	}
	var eps []events.Endpoint
	for _, e := range cfg.Events.Endpoints {
		ep, err := events.NewEndpoint(e.ID(), e.URL, e.Secrets, e.Events)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	c := cfg.Events
	return events.NewDispatcher(rdb, Keyspace(cfg), events.Options{
		Endpoints: eps, RetryFor: c.RetryFor, BaseBackoff: c.BaseBackoff, MaxBackoff: c.MaxBackoff,
		PollInterval: c.PollInterval, Timeout: c.Timeout, Lease: c.Lease, Observer: obs, Logger: log, Now: now,
	}), nil
}

// Config is the configuration the server was built with.
func (s *Server) Config() config.Config { return s.cfg }

// deliveryEvents turns the provider's reports that matter to the product
// (a bounce, a complaint) into invitation.bounced and invitation.complained
// events, recorded in the organization's audit trail like every change.
type deliveryEvents struct {
	s   *Server
	log *slog.Logger
}

func (d deliveryEvents) DeliveryRecorded(ctx context.Context, inv invites.Invitation, o invites.Outcome) {
	var typ string
	switch o.Status {
	case invites.DeliveryBounced:
		typ = "invitation.bounced"
	case invites.DeliveryComplained:
		typ = "invitation.complained"
	default:
		return
	}
	err := d.s.Recorder.Record(redisx.WithActor(ctx, redisx.Actor{Type: "webhook", ID: "resend", Addr: redisx.ActorOf(ctx).Addr}), inv.OrganizationID, typ, map[string]any{
		"invitation_id": inv.ID, "organization_id": inv.OrganizationID, "email": inv.Email, "role": inv.Role,
		"reason": o.Reason, "at": o.At.UnixMilli(),
	})
	if err != nil {
		d.log.Warn("delivery event not recorded", "invitation", inv.ID, "type", typ, "err", err)
	}
}
