package orgs

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/kratos-orgs/kratos-orgs/httpx"
	"github.com/kratos-orgs/kratos-orgs/redisx"
)

// AuditEntry is one change in an organization's audit trail, as every
// script that changes it records it (redisx/record.go).
type AuditEntry struct {
	// ID is the entry's stream id: unique, ordered, and the listing's cursor.
	ID    string         `json:"id"`
	Type  string         `json:"type"` // the event type: invitation.created, membership.deleted...
	At    int64          `json:"-"`
	Time  string         `json:"at"` // RFC 3339
	Actor redisx.Actor   `json:"actor"`
	Data  map[string]any `json:"data"`
}

// streamID is what an audit cursor looks like: a stream entry id.
var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// Audit pages through an organization's audit trail, newest first. It
// reads the stream of a deleted organization too, while it is kept (its
// TTL is audit.max_age): org is an id, not a slug.
func (s *Store) Audit(ctx context.Context, org, cursor string, limit int) (Page[AuditEntry], error) {
	var page Page[AuditEntry]
	if err := CheckCursor(cursor, streamID.MatchString); err != nil {
		return page, err
	}
	if _, ok := redisx.ParseID("org", org); !ok {
		return page, errOrgNotFound(org)
	}
	start := "+"
	if cursor != "" {
		start = "(" + cursor
	}
	pipe := s.rdb.Pipeline()
	rng := pipe.XRevRangeN(ctx, s.ks.OrgAudit(org), start, "-", int64(limit+1))
	total := pipe.XLen(ctx, s.ks.OrgAudit(org))
	exists := pipe.Exists(ctx, s.ks.Org(org))
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return page, storeErr(err)
	}
	if total.Val() == 0 && exists.Val() == 0 {
		return page, errOrgNotFound(org)
	}
	page.Total = total.Val()
	msgs := rng.Val()
	if len(msgs) > limit {
		msgs = msgs[:limit]
		page.NextCursor = msgs[limit-1].ID
	}
	page.Items = make([]AuditEntry, 0, len(msgs))
	for _, m := range msgs {
		page.Items = append(page.Items, parseAudit(m))
	}
	return page, nil
}

func parseAudit(m redis.XMessage) AuditEntry {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	at, _ := strconv.ParseInt(str("at"), 10, 64)
	e := AuditEntry{
		ID: m.ID, Type: str("type"), At: at, Time: redisx.MsTime(str("at")).Format("2006-01-02T15:04:05.000Z07:00"),
		Actor: redisx.Actor{Type: str("actor"), ID: str("actor_id"), Addr: str("addr")},
	}
	if err := json.Unmarshal([]byte(str("data")), &e.Data); err != nil || e.Data == nil {
		e.Data = map[string]any{}
	}
	return e
}

// AuditHandlers serve an organization's audit trail: to operators on the
// admin API, to its owners on the session-authenticated one.
type AuditHandlers struct{ svc *Service }

// NewAuditHandlers returns the handlers.
func NewAuditHandlers(svc *Service) *AuditHandlers { return &AuditHandlers{svc: svc} }

// RegisterAdmin adds GET /organizations/{org}/audit to the admin group.
func (h *AuditHandlers) RegisterAdmin(r gin.IRouter) {
	r.GET("/organizations/:org/audit", httpx.H(h.admin))
}

// RegisterAPI adds GET /organizations/{org}/audit to the session group:
// owners only.
func (h *AuditHandlers) RegisterAPI(r gin.IRouter) {
	r.GET("/organizations/:org/audit", httpx.H(h.owner))
}

func (h *AuditHandlers) admin(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	ref := c.Param("org")
	if _, ok := redisx.ParseID("org", ref); !ok {
		// A slug names a live organization; an id also a deleted one.
		if ref, err = h.svc.store.ResolveID(c.Request.Context(), ref); err != nil {
			return err
		}
	}
	return h.write(c, ref, cursor, limit)
}

func (h *AuditHandlers) owner(c *gin.Context) error {
	cursor, limit, err := httpx.Page(c)
	if err != nil {
		return err
	}
	o, _, err := h.svc.Authorize(c.Request.Context(), c.Param("org"), httpx.CallerOf(c).IdentityID, "owner")
	if err != nil {
		return err
	}
	return h.write(c, o.ID, cursor, limit)
}

func (h *AuditHandlers) write(c *gin.Context, org, cursor string, limit int) error {
	page, err := h.svc.store.Audit(c.Request.Context(), org, cursor, limit)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, page)
	return nil
}
