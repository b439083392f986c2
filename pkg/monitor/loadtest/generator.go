package loadtest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrorKind classifies a failed request.
type ErrorKind int

// The kinds of failure counted apart. A response with a status outside
// 2xx is not an error kind: it is counted in Errors.Non2xx.
const (
	ErrTimeout ErrorKind = iota // the request took longer than Options.Timeout
	ErrRefused                  // the connection was refused
	ErrReset                    // the server closed or reset the connection
	ErrOther                    // anything else (DNS, TLS, ...)
	numErrorKinds
)

var errorKindNames = [numErrorKinds]string{"timeout", "connection refused", "connection reset", "other"}

func (k ErrorKind) String() string { return errorKindNames[k] }

// maxStatus bounds the status codes counted one by one; others are
// counted under 0.
const maxStatus = 600

// run is the state of one load test shared by its goroutines.
type run struct {
	o            *Options
	hist         *Histogram
	measureStart time.Time
	engine       Engine
	threads      int // of the epoll engine

	status     [maxStatus]atomic.Uint64
	errs       [numErrorKinds]atomic.Uint64
	errSample  [numErrorKinds]atomic.Pointer[string]
	non2xx     atomic.Uint64
	completed  atomic.Uint64
	failed     atomic.Uint64
	bytes      atomic.Uint64
	unfinished atomic.Uint64
	issued     atomic.Int64
	lastDone   atomic.Int64 // ns after measureStart of the latest completion
}

// Run sends load as o describes and returns what it measured. It returns
// an error wrapping errdefs.ErrInvalidArgument for bad options. When ctx
// is cancelled it stops at once and returns the partial result with
// ctx's error. Failed requests are not an error of Run's: they are
// counted in the result.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &run{o: &o, hist: NewHistogram()}
	if _, err := newClient(&o); err != nil {
		return nil, invalid("bad request: %v", err)
	}

	// The epoll engine, when it is picked, is set up before the clock
	// starts (it resolves the host).
	r.engine = EngineGoroutines
	var ep *epollLoad
	if o.Engine == EngineEpoll || o.Engine == EngineAuto && epollSupported && o.Rate == 0 {
		var err error
		ep, err = newEpollLoad(ctx, r)
		switch {
		case err == nil:
			r.engine, r.threads = EngineEpoll, len(ep.threads)
			defer ep.close()
		case o.Engine == EngineEpoll:
			return nil, err
		}
	}

	start := time.Now()
	r.measureStart = start.Add(o.Warmup)
	var end time.Time
	if o.Duration > 0 {
		end = r.measureStart.Add(o.Duration)
	}
	// Sending stops at end (or on ctx). hard also cancels the requests
	// in flight: on ctx, or once those still running after the end have
	// had their timeout.
	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()
	if !end.IsZero() {
		t := time.AfterFunc(time.Until(end)+o.Timeout+time.Second, cancelHard)
		defer t.Stop()
	}

	aux := make(chan struct{})
	var auxWG sync.WaitGroup
	var res Result
	if o.Stats != nil {
		auxWG.Go(func() { res.Container = r.sample(ctx, aux) })
	}
	if o.Progress != nil {
		auxWG.Go(func() { r.progress(aux) })
	}

	var wg sync.WaitGroup
	switch {
	case o.Rate > 0:
		r.openLoop(ctx, hard, &wg, start, end)
	case ep != nil:
		ep.run(hard, end)
	default:
		for range o.Concurrency {
			wg.Go(func() { r.closedLoop(hard, end) })
		}
	}
	wg.Wait()
	close(aux)
	auxWG.Wait()

	r.fill(&res, time.Since(r.measureStart))
	return &res, ctx.Err()
}

// closedLoop sends requests back to back until end or until the wanted
// number of requests has been sent.
func (r *run) closedLoop(ctx context.Context, end time.Time) {
	cl, _ := newClient(r.o)
	defer cl.close()
	for ctx.Err() == nil {
		now := time.Now()
		if !end.IsZero() && !now.Before(end) {
			return
		}
		if r.o.Requests > 0 && !now.Before(r.measureStart) && r.issued.Add(1) > r.o.Requests {
			return
		}
		r.do(ctx, cl, now)
	}
}

// openLoop schedules requests at the fixed rate from start to end and
// hands each to an idle worker, starting workers (up to
// o.Concurrency) when none is idle. A request waiting for a worker keeps
// its scheduled time, so the wait counts in its latency.
func (r *run) openLoop(ctx, hard context.Context, wg *sync.WaitGroup, start, end time.Time) {
	jobs := make(chan time.Time)
	defer close(jobs)
	workers := 0
	spawn := func() {
		workers++
		wg.Go(func() {
			cl, _ := newClient(r.o)
			defer cl.close()
			for t := range jobs {
				r.do(hard, cl, t)
			}
		})
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	interval := float64(time.Second) / r.o.Rate
	for i := int64(0); ; i++ {
		t := start.Add(time.Duration(float64(i) * interval))
		if !end.IsZero() && !t.Before(end) {
			return
		}
		if r.o.Requests > 0 && !t.Before(r.measureStart) && r.issued.Add(1) > r.o.Requests {
			return
		}
		if d := time.Until(t); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case jobs <- t:
			continue
		default:
		}
		if workers < r.o.Concurrency {
			spawn()
		}
		select {
		case jobs <- t:
		case <-hard.Done():
			// Every worker is stuck past the end: the requests still
			// due were never sent.
			if !end.IsZero() && t.Before(end) && !t.Before(r.measureStart) {
				r.unfinished.Add(uint64(float64(end.Sub(t))/interval) + 1)
			}
			return
		}
	}
}

// do sends one request scheduled at sched and records its outcome.
func (r *run) do(ctx context.Context, cl *client, sched time.Time) {
	code, n, err := cl.do(ctx)
	done := time.Now()
	if sched.Before(r.measureStart) {
		return
	}
	if err != nil && ctx.Err() != nil {
		// Cut off by the end of the run, not failed.
		r.unfinished.Add(1)
		return
	}
	r.hist.Record(done.Sub(sched))
	r.completed.Add(1)
	r.bytes.Add(uint64(n))
	ok := err == nil
	if code != 0 {
		if code < 200 || code > 299 {
			r.non2xx.Add(1)
			ok = false
		}
		if code < 0 || code >= maxStatus {
			code = 0
		}
		r.status[code].Add(1)
	}
	if err != nil {
		k := classify(err)
		r.errs[k].Add(1)
		if r.errSample[k].Load() == nil {
			msg := err.Error()
			r.errSample[k].CompareAndSwap(nil, &msg)
		}
	}
	if !ok {
		r.failed.Add(1)
	}
	at := int64(done.Sub(r.measureStart))
	for cur := r.lastDone.Load(); at > cur && !r.lastDone.CompareAndSwap(cur, at); cur = r.lastDone.Load() {
	}
}

// classify sorts a request error into its kind.
func classify(err error) ErrorKind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrReset
	}
	return ErrOther
}

// progress calls o.Progress every o.ProgressEvery until stop closes.
func (r *run) progress(stop <-chan struct{}) {
	t := time.NewTicker(r.o.ProgressEvery)
	defer t.Stop()
	var prevN uint64
	prevT := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			n := r.completed.Load()
			rps := 0.0
			if dt := now.Sub(prevT).Seconds(); dt > 0 {
				rps = float64(n-prevN) / dt
			}
			prevN, prevT = n, now
			r.o.Progress(Progress{Elapsed: now.Sub(r.measureStart), Completed: n, Errors: r.failed.Load(), RPS: rps})
		}
	}
}
