package invites

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kratos-orgs/kratos-orgs/mail"
	"github.com/kratos-orgs/kratos-orgs/mail/resendtest"
	"github.com/kratos-orgs/kratos-orgs/outbox"
)

// The delivery reason of a given-up mail job follows what its error says
// about retrying, whatever wrapped it on the way to the outbox.
func TestFailureReason(t *testing.T) {
	sendErr := func(f resendtest.Failure) error {
		fake := resendtest.New(t, "re_test_key")
		fake.FailNext(1, f)
		s, err := mail.NewResendSender(mail.ResendConfig{APIKey: "re_test_key", BaseURL: fake.URL(), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Send(context.Background(), mail.Message{From: "a@acme.test", To: []string{"b@example.com"}, Subject: "s", Text: "t"})
		if err == nil {
			t.Fatal("the send did not fail")
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"past the retry window", outbox.Permanent(errRetryWindow), ReasonExpiredRetryWindow},
		{"provider refused for good", sendErr(resendtest.DailyQuota()), ReasonRejected},
		{"provider refused, wrapped", fmt.Errorf("mail job: %w", sendErr(resendtest.DailyQuota())), ReasonRejected},
		{"provider still failing", sendErr(resendtest.ServerError()), ReasonMaxAttempts},
		{"rate limited to the end", sendErr(resendtest.RateLimited("30")), ReasonMaxAttempts},
		{"refused by something else", outbox.Permanent(errors.New("template: no such set")), ReasonError},
		{"plain error, attempts ran out", errors.New("redis: i/o timeout"), ReasonMaxAttempts},
	} {
		if got := failureReason(tc.err); got != tc.want {
			t.Errorf("%s: failureReason(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}
