package ratelimit

import (
	"context"
	"time"
)

// Budget is the outgoing-mail quota: one global limit and one per
// organization. A mail takes from both or from neither.
type Budget struct {
	Limiter *Limiter
	Global  Limit
	PerOrg  Limit
}

// Spend takes one mail for org ("" for mail about no organization). When a
// budget is spent it takes nothing and says how long to wait and which
// limit refused.
func (b Budget) Spend(ctx context.Context, org string) (wait time.Duration, limit string, err error) {
	if org != "" {
		d, err := b.Limiter.Allow(ctx, b.PerOrg, org)
		if err != nil {
			return 0, "", err
		}
		if !d.Allowed {
			return d.RetryAfter, b.PerOrg.Name, nil
		}
	}
	d, err := b.Limiter.Allow(ctx, b.Global, "global")
	if err != nil || !d.Allowed {
		if org != "" {
			// The mail waits: give the organization its share back.
			_ = b.Limiter.Refund(context.WithoutCancel(ctx), b.PerOrg, org)
		}
		if err != nil {
			return 0, "", err
		}
		return d.RetryAfter, b.Global.Name, nil
	}
	return 0, "", nil
}
