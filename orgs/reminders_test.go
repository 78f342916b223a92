package orgs

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/apperr"
)

// A plan reads durations or seconds, writes Go durations, round-trips
// through the organization hash's field, and is checked for range,
// duplicates and length.
func TestRemindersJSONAndRules(t *testing.T) {
	t.Parallel()
	var r Reminders
	if err := json.Unmarshal([]byte(`{"after_sent":["48h",3600],"before_expiry":["1h30m"]}`), &r); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	if string(b) != `{"after_sent":["48h","1h"],"before_expiry":["1h30m"]}` {
		t.Fatalf("marshalled %s", b)
	}
	if back := parseReminderPlan(r.Plan()); back == nil || len(back.AfterSent) != 2 || back.AfterSent[1] != time.Hour || back.BeforeExpiry[0] != 90*time.Minute {
		t.Fatalf("plan %s reads back as %+v", r.Plan(), back)
	}
	if p := (Reminders{}).Plan(); p != `{"a":[],"b":[]}` {
		t.Fatalf("an empty plan is %s; scripts need lists, not null", p)
	}
	for _, bad := range []string{`{"after_sent":["soon"]}`, `{"after_sent":[true]}`, `[1]`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	for _, tc := range []struct {
		r  Reminders
		ok bool
	}{
		{Reminders{AfterSent: []time.Duration{time.Minute}, BeforeExpiry: []time.Duration{MaxReminderOffset}}, true},
		{Reminders{}, true},
		{Reminders{AfterSent: []time.Duration{time.Second}}, false},
		{Reminders{BeforeExpiry: []time.Duration{MaxReminderOffset + time.Hour}}, false},
		{Reminders{AfterSent: []time.Duration{time.Hour, time.Hour}}, false},
		{Reminders{AfterSent: []time.Duration{1, 2, 3, 4, 5, 6}}, false},
	} {
		err := CheckReminders(tc.r)
		if (err == nil) != tc.ok || (err != nil && apperr.CodeOf(err) != "invalid_reminders") {
			t.Errorf("%+v: %v (want ok=%v)", tc.r, err, tc.ok)
		}
	}
}
