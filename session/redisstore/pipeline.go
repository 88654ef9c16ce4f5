package redisstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Limits of the pipelines.
const (
	maxPipelines = 4   // pipelines in flight at once
	maxBatch     = 128 // commands in one pipeline

	// queueTimeout bounds how long a command waits for a pipeline, as
	// go-redis's PoolTimeout bounds the wait for a connection: on a hung
	// Redis every pipeline waits out its read timeouts, and a command
	// queued behind them would then wait out its own as well.
	queueTimeout = readTimeout
)

// errQueueTimeout is the error of a command that found every pipeline busy
// for queueTimeout.
var errQueueTimeout = errors.New("redis: no pipeline free within " + queueTimeout.String())

// pipeline sends the commands of concurrent calls to Redis together (it is
// kept for speed: docs/performance.md, row "pipeline"): each
// call's command still makes its round trip, but many travel in one write
// and come back in one read. On a loaded tote most of the CPU that a Redis
// command costs, on both sides, is the system calls of the round trip (and
// go-redis's check of the connection each time it takes one from its
// pool), not the command; sending the commands of 64 requests in a handful
// of pipelines costs a fraction of that. A lone call is a pipeline of one
// command, sent at once: nobody waits for company.
//
// Up to maxPipelines pipelines run at once, each on its own connection. A
// call that finds them all running queues; when a pipeline finishes, the
// first call in the queue runs the next one with every command queued
// meanwhile (up to maxBatch), so no caller runs pipelines for others for
// longer than its own. The client's timeouts and retries apply to each
// pipeline as they do to a command.
type pipeline struct {
	conn goredis.UniversalClient
	// timeout bounds a pipeline as the client's timeouts and retries bound
	// a plain command (go-redis retries a pipeline that timed out for about
	// twice as long as a command); 0: no bound of ours.
	timeout time.Duration

	mu      sync.Mutex
	queue   []*queued
	running int // pipelines running
}

// queued is one call's command, waiting for its pipeline. It receives one
// message on lead: false when its command has run (see cmd.Err()), true
// when it has been taken off the queue to run the next pipeline.
type queued struct {
	cmd  goredis.Cmder
	lead chan bool
}

// do runs cmd in a pipeline and returns when it has run; its outcome is in
// cmd. A caller whose ctx ends while its command waits for a pipeline gets
// ctx's error, and its command is not sent; once sent, the command runs to
// the end of its pipeline, bounded by the client's timeouts.
func (p *pipeline) do(ctx context.Context, cmd goredis.Cmder) {
	if err := ctx.Err(); err != nil {
		cmd.SetErr(err)
		return
	}
	q := &queued{cmd: cmd, lead: make(chan bool, 1)}
	p.mu.Lock()
	if p.running < maxPipelines {
		p.running++
	} else {
		p.queue = append(p.queue, q)
		p.mu.Unlock()
		if !p.wait(ctx, q) {
			return
		}
		p.mu.Lock()
	}
	// q leads a pipeline of its own command and those queued, and is in
	// the queue no more: nothing else will be sent to q.lead.
	n := min(len(p.queue), maxBatch-1)
	batch := make([]*queued, 0, n+1)
	batch = append(append(batch, q), p.queue[:n]...)
	p.queue = append([]*queued(nil), p.queue[n:]...)
	p.mu.Unlock()

	p.exec(batch)
	for _, o := range batch[1:] {
		o.lead <- false
	}

	p.mu.Lock()
	if len(p.queue) > 0 {
		// The first call queued runs the next pipeline in this one's place.
		next := p.queue[0]
		p.queue = p.queue[1:]
		next.lead <- true
	} else {
		p.running--
	}
	p.mu.Unlock()
}

// wait waits for q's turn: it reports whether q is to lead the next
// pipeline, or false if its command has run or has given up waiting (ctx
// ended, or queueTimeout passed).
func (p *pipeline) wait(ctx context.Context, q *queued) bool {
	t := time.NewTimer(queueTimeout)
	defer t.Stop()
	var gaveUp error
	select {
	case lead := <-q.lead:
		return lead
	case <-t.C:
		gaveUp = errQueueTimeout
	case <-ctx.Done():
		gaveUp = ctx.Err()
	}
	p.mu.Lock()
	if i := slices.Index(p.queue, q); i >= 0 {
		p.queue = slices.Delete(p.queue, i, i+1)
		p.mu.Unlock()
		q.cmd.SetErr(gaveUp)
		return false
	}
	p.mu.Unlock()
	return <-q.lead // taken off the queue just now: its message is on the way
}

// exec sends the batch's commands in one pipeline. The outcome of each is
// in its Cmder; a failure of the connection fails them all.
func (p *pipeline) exec(batch []*queued) {
	// The callers' contexts cannot all govern one pipeline: the client's
	// read and write timeouts, and p.timeout, bound it instead.
	ctx := context.Background()
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	pipe := p.conn.Pipeline()
	for _, q := range batch {
		_ = pipe.Process(ctx, q.cmd)
	}
	_, _ = pipe.Exec(ctx)
}
