package orgs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// Reminders are the offsets of an invitation's automatic reminders
// (README "Automatic reminders"): so long after the invitation was
// created, and so long before it expires. The configuration
// (invitations.reminders) gives everyone's; an organization may have its
// own (its reminders field), empty lists turning them off for it.
type Reminders struct {
	AfterSent    []time.Duration
	BeforeExpiry []time.Duration
}

// Limits on reminder offsets.
const (
	MaxReminderOffsets = 5
	MinReminderOffset  = time.Minute
	MaxReminderOffset  = 365 * 24 * time.Hour
)

// OrgReminders is the organization hash's field holding its own reminder
// plan (ReminderPlan's JSON); absent means the configured one.
const OrgReminders = "reminders"

// remindersJSON is the API's spelling: durations as Go writes them
// ("48h").
type remindersJSON struct {
	AfterSent    []string `json:"after_sent"`
	BeforeExpiry []string `json:"before_expiry"`
}

// MarshalJSON writes {"after_sent":["48h"],"before_expiry":["24h"]}.
func (r Reminders) MarshalJSON() ([]byte, error) {
	return json.Marshal(remindersJSON{AfterSent: durationStrings(r.AfterSent), BeforeExpiry: durationStrings(r.BeforeExpiry)})
}

// UnmarshalJSON reads durations as strings ("48h") or seconds.
func (r *Reminders) UnmarshalJSON(b []byte) error {
	var raw struct {
		AfterSent    []json.RawMessage `json:"after_sent"`
		BeforeExpiry []json.RawMessage `json:"before_expiry"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return errors.New(`reminders must be an object like {"after_sent": ["48h"], "before_expiry": ["24h"]}`)
	}
	var err error
	if r.AfterSent, err = parseOffsets(raw.AfterSent); err != nil {
		return err
	}
	r.BeforeExpiry, err = parseOffsets(raw.BeforeExpiry)
	return err
}

func parseOffsets(raw []json.RawMessage) ([]time.Duration, error) {
	out := make([]time.Duration, 0, len(raw))
	for _, m := range raw {
		var secs float64
		if err := json.Unmarshal(m, &secs); err == nil {
			out = append(out, time.Duration(secs*float64(time.Second)))
			continue
		}
		var s string
		if err := json.Unmarshal(m, &s); err != nil {
			return nil, errors.New(`a reminder offset is a duration like "48h" or a number of seconds`)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf(`%q is not a duration like "48h"`, s)
		}
		out = append(out, d)
	}
	return out, nil
}

func durationStrings(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = ShortDuration(d)
	}
	return out
}

// ShortDuration writes 48h rather than 48h0m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// CheckReminders validates a reminder plan: few offsets per list,
// distinct, between a minute and a year.
func CheckReminders(r Reminders) error {
	for _, l := range []struct {
		field   string
		offsets []time.Duration
	}{{"reminders.after_sent", r.AfterSent}, {"reminders.before_expiry", r.BeforeExpiry}} {
		if len(l.offsets) > MaxReminderOffsets {
			return apperr.Invalidf("invalid_reminders", "%s has %d offsets; at most %d", l.field, len(l.offsets), MaxReminderOffsets).
				WithDetails("field", l.field)
		}
		for i, d := range l.offsets {
			if d < MinReminderOffset || d > MaxReminderOffset {
				return apperr.Invalidf("invalid_reminders", "%s: each offset must be between 1m and 8760h, got %s", l.field, d).
					WithDetails("field", l.field)
			}
			if slices.Contains(l.offsets[:i], d) {
				return apperr.Invalidf("invalid_reminders", "%s lists %s twice", l.field, ShortDuration(d)).WithDetails("field", l.field)
			}
		}
	}
	return nil
}

// Plan is the plan as the invitation scripts read it (JSON, offsets in
// ms): the organization hash's reminders field, and the configured plan
// in a script's arguments. Lists are never null, so Lua reads them as
// tables.
func (r Reminders) Plan() string {
	b, _ := json.Marshal(r.ScriptPlan())
	return string(b)
}

// ScriptPlan is the plan in ms, as a script's argument.
func (r Reminders) ScriptPlan() ReminderPlan {
	return ReminderPlan{AfterSent: millis(r.AfterSent), BeforeExpiry: millis(r.BeforeExpiry)}
}

// ReminderPlan is Reminders in ms, as scripts read them.
type ReminderPlan struct {
	AfterSent    []int64 `json:"a"`
	BeforeExpiry []int64 `json:"b"`
}

func millis(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Milliseconds()
	}
	return out
}

// parseReminderPlan reads the organization hash's reminders field; nil
// when absent or unreadable.
func parseReminderPlan(s string) *Reminders {
	if s == "" {
		return nil
	}
	var p ReminderPlan
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil
	}
	r := &Reminders{AfterSent: make([]time.Duration, len(p.AfterSent)), BeforeExpiry: make([]time.Duration, len(p.BeforeExpiry))}
	for i, ms := range p.AfterSent {
		r.AfterSent[i] = time.Duration(ms) * time.Millisecond
	}
	for i, ms := range p.BeforeExpiry {
		r.BeforeExpiry[i] = time.Duration(ms) * time.Millisecond
	}
	return r
}

// NullableReminders is a request's reminders: an object sets the
// organization's own plan, null removes it (the configured one applies),
// absent (Set false) leaves it.
type NullableReminders struct {
	Set   bool
	Value *Reminders
}

// UnmarshalJSON records that the field was present.
func (n *NullableReminders) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var r Reminders
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	n.Value = &r
	return nil
}

// reminderUpdate turns a request's reminders into the update script's
// argument: "" unchanged, "none" removes, else the plan.
func reminderUpdate(n NullableReminders) (string, error) {
	if !n.Set {
		return "", nil
	}
	if n.Value == nil {
		return "none", nil
	}
	if err := CheckReminders(*n.Value); err != nil {
		return "", err
	}
	return n.Value.Plan(), nil
}
