package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// versus.go: -versus BINARY, two builds of tote measured side by side.
//
// On each store both builds run at once, each on its own port with its own
// pool of sessions: on file each has its own DATA_DIR, on redis each its own
// private redis-server, so that neither reads the other's sessions nor
// shares its Redis's single thread, and INFO commandstats counts one
// build's commands. Each cell warms both up, then runs -d rounds of three
// one-second wrk runs, tote's, the other build's and the hello world's, in
// an order that rotates from round to round, so that the machine's drift
// and bursts of other load hit all three alike and none is always first.

// versusRow is one line of the comparison table: a route on a store,
// measured on both builds in the same interleaved rounds.
type versusRow struct {
	store, route string
	tote, versus result
	hello        result     // the baseline's runs in the same rounds
	roundTrips   [2]float64 // Redis commands per request, tote's and versus's; < 0: not measured
}

// versusStore runs both builds on one store and measures each route, then
// contention on each. It returns the table's rows and the lines printed
// after the table.
func (b *bench) versusStore(ctx context.Context, store string) ([]versusRow, []string, error) {
	var ts []*target
	defer func() {
		for _, t := range ts {
			t.stop()
		}
	}()
	for _, s := range []struct{ tag, bin string }{{"", b.tote}, {"-versus", b.versus}} {
		t, err := b.startTarget(store, s.tag, s.bin)
		if err != nil {
			return nil, nil, err
		}
		ts = append(ts, t)
	}

	var rows []versusRow
	for _, route := range b.o.routes {
		// Each profile covers the cell: both warm-ups and all the rounds.
		seconds := len(ts)*b.o.warmup + (len(ts)+1)*b.o.seconds
		var profiles []func() error
		var before []counters
		for _, t := range ts {
			profiles = append(profiles, b.startProfile(ctx, t, store+t.tag+"-"+route, seconds))
			c, err := b.counters(t.client, t.redisAddr)
			if err != nil {
				return nil, nil, err
			}
			before = append(before, c)
		}
		res, hello, err := b.versusCell(ctx, route, ts)
		if err != nil {
			return nil, nil, err
		}
		r := versusRow{store: store, route: routeNames[route], tote: res[0], versus: res[1], hello: hello, roundTrips: [2]float64{-1, -1}}
		if ts[0].redisAddr != "" {
			time.Sleep(200 * time.Millisecond) // the requests in flight when wrk stopped
			for i, t := range ts {
				if r.roundTrips[i], err = b.perRequest(t, before[i]); err != nil {
					return nil, nil, err
				}
			}
		}
		for _, wait := range profiles {
			if err := wait(); err != nil {
				return nil, nil, err
			}
		}
		fmt.Fprintf(b.out, "# %s %s: tote %.0f, versus %.0f requests/s (%.2f); the hello world's %.0f\n",
			store, r.route, r.tote.rps(), r.versus.rps(), r.ratio(), hello.rps())
		rows = append(rows, r)
	}

	var lines []string
	for i, t := range ts {
		name := []string{"tote", "versus"}[i]
		if t.redisAddr != "" {
			line, err := b.newVisitor(t, "redis round trips, "+name)
			if err != nil {
				return nil, nil, err
			}
			lines = append(lines, line)
		}
		if b.o.contention {
			line, err := b.contention(ctx, store+t.tag, t.base, t.client)
			if err != nil {
				return nil, nil, err
			}
			lines = append(lines, line)
		}
	}
	for _, t := range ts {
		if err := t.check(); err != nil {
			return nil, nil, err
		}
	}
	return rows, lines, nil
}

// versusCell measures one route on each target after a warm-up of each:
// -d rounds, each one one-second run of every target and one of the hello
// world, in the order of rotation. It returns each target's runs and the
// baseline's.
func (b *bench) versusCell(ctx context.Context, route string, ts []*target) ([]result, result, error) {
	res := make([]result, len(ts))
	var hello result
	if b.o.warmup > 0 {
		for _, t := range ts {
			if _, err := b.runWrk(ctx, t.base+"/", route, t.idFile, b.o.warmup); err != nil {
				return nil, hello, err
			}
		}
	}
	for k := range b.o.seconds {
		for _, i := range rotation(k, len(ts)+1) {
			if i == len(ts) {
				r, err := b.runWrk(ctx, b.helloURL, "hello", b.helloIDs, 1)
				if err != nil {
					return nil, hello, err
				}
				hello.add(r)
				continue
			}
			r, err := b.runWrk(ctx, ts[i].base+"/", route, ts[i].idFile, 1)
			if err != nil {
				return nil, hello, err
			}
			res[i].add(r)
		}
	}
	return res, hello, nil
}

// rotation returns the order of round k among n runners: 0, 1 ... n-1
// rotated left by k (for n = 3: 0 1 2, 1 2 0, 2 0 1, 0 1 2 ...), so that
// over n rounds each runner is once first, once last, and once after each
// of the others.
func rotation(k, n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = (k + i) % n
	}
	return order
}

// rps is the run's rate.
func (w wrkRun) rps() float64 {
	return float64(w.requests) / max(w.duration, time.Microsecond).Seconds()
}

// ratio is tote's rate over the other build's.
func (r versusRow) ratio() float64 { return r.tote.rps() / r.versus.rps() }

// roundRatios returns the lowest, the median and the highest of the
// rounds' ratios of tote's rate to the other build's: the spread that the
// one figure of ratio hides, and a figure that a burst of other load in one
// round does not move.
func (r versusRow) roundRatios() (lo, med, hi float64) {
	var rs []float64
	for i := range min(len(r.tote.runs), len(r.versus.runs)) {
		rs = append(rs, r.tote.runs[i].rps()/r.versus.runs[i].rps())
	}
	if len(rs) == 0 {
		return 0, 0, 0
	}
	slices.Sort(rs)
	med = rs[len(rs)/2]
	if len(rs)%2 == 0 {
		med = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return rs[0], med, rs[len(rs)-1]
}

// printVersus prints the comparison table: first the baseline over all its
// runs, then a row per store and route.
func printVersus(w io.Writer, rows []versusRow, toteBin, versusBin string) {
	var hello result
	width := len("store")
	for _, r := range rows {
		hello.add(r.hello)
		width = max(width, len(r.store))
	}
	fmt.Fprintf(w, "tote:   %s\nversus: %s\n", toteBin, versusBin)
	fmt.Fprintf(w, "hello world: %.0f requests/s, p99 %s, errors %d\n\n", hello.rps(), ms(hello.percentile(99)), hello.statusErrors+hello.socketErrors)
	fmt.Fprintf(w, "%-*s %-22s %8s %8s %6s %14s %6s %6s %8s %9s %9s %11s %9s\n", width, "store", "route",
		"tote/s", "versus/s", "t/v", "rounds t/v", "t/h", "v/h", "hello/s", "tote p99", "vers p99", "redis/req", "errors")
	for _, r := range rows {
		rt := "-"
		if r.roundTrips[0] >= 0 {
			rt = fmt.Sprintf("%.2f/%.2f", r.roundTrips[0], r.roundTrips[1])
		}
		lo, med, hi := r.roundRatios()
		fmt.Fprintf(w, "%-*s %-22s %8.0f %8.0f %6.2f %14s %6.2f %6.2f %8.0f %9s %9s %11s %9s\n", width, r.store, r.route,
			r.tote.rps(), r.versus.rps(), r.ratio(), fmt.Sprintf("%.2f/%.2f/%.2f", lo, med, hi),
			r.tote.rps()/r.hello.rps(), r.versus.rps()/r.hello.rps(), r.hello.rps(),
			ms(r.tote.percentile(99)), ms(r.versus.percentile(99)), rt,
			fmt.Sprintf("%d/%d", r.tote.statusErrors+r.tote.socketErrors, r.versus.statusErrors+r.versus.socketErrors))
	}
	fmt.Fprintln(w, "t/v: tote's req/s over versus's, in the same rounds; rounds t/v: the lowest, median and highest of the rounds' t/v.")
	fmt.Fprintln(w, "t/h, v/h: each build's req/s over the hello world's, in its runs of the same rounds (hello/s).")
	fmt.Fprintln(w, "redis/req: commands each build sent to its own redis-server per request it served (less the GET and SET run inside the CAS script).")
	fmt.Fprintln(w, "errors: responses of 400 or more, and socket errors, tote's/versus's.")
}

// runVersus is run's second half with -versus: each store's cells on both
// builds, then the comparison table.
func (b *bench) runVersus(ctx context.Context, start time.Time) error {
	var rows []versusRow
	var lines []string
	for _, store := range b.o.stores {
		r, l, err := b.versusStore(ctx, store)
		if err != nil {
			return fmt.Errorf("%s store: %w", store, err)
		}
		rows = append(rows, r...)
		lines = append(lines, l...)
	}
	fmt.Fprintln(b.out)
	printVersus(b.out, rows, b.tote, b.versus)
	if len(lines) > 0 {
		fmt.Fprintln(b.out)
		for _, l := range lines {
			fmt.Fprintln(b.out, l)
		}
	}
	fmt.Fprintf(b.out, "\n# %s in all\n", time.Since(start).Round(time.Second))
	return nil
}
