package main

import (
	"context"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one measured phase did.
type result struct {
	OK, Failed int
	Elapsed    time.Duration
	latencies  []time.Duration // of the successful requests
	firstErr   error
	drained    time.Duration // how long the outbox took after the phase to run the jobs it queued
}

// Rate is successful operations per second.
func (r result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Quantile is the q-quantile (nearest rank) of the successful requests' latencies.
func (r result) Quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), r.latencies...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1 // nearest rank
	return s[max(i, 0)]
}

// errExhausted ends a phase early: it ran out of distinct inputs.
var errExhausted = errExhaustedT{}

type errExhaustedT struct{}

func (errExhaustedT) Error() string { return "inputs exhausted" }

// run calls op from c workers for d (or until an op returns errExhausted).
// op gets a sequence number unique in the phase. Requests in flight at the
// end are waited for (up to hardLimit) and counted: on a slow Kratos a
// request can take longer than the whole phase.
func run(ctx context.Context, c int, d time.Duration, op func(ctx context.Context, n int) error) result {
	ctx, cancel := context.WithTimeout(ctx, d+hardLimit)
	defer cancel()
	var (
		seq       atomic.Int64
		exhausted atomic.Bool
		mu        sync.Mutex
		res       result
		wg        sync.WaitGroup
		start     = time.Now()
		stop      = start.Add(d)
	)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && !exhausted.Load() && ctx.Err() == nil {
				n := int(seq.Add(1)) - 1
				t0 := time.Now()
				err := op(ctx, n)
				lat := time.Since(t0)
				if err == errExhausted {
					exhausted.Store(true)
					return
				}
				mu.Lock()
				if err == nil {
					res.OK++
					res.latencies = append(res.latencies, lat)
				} else {
					res.Failed++
					if res.firstErr == nil {
						res.firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

// hardLimit bounds how long a phase waits for its last requests.
const hardLimit = 2 * time.Minute
