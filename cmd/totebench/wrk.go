package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// script is the wrk script of every cell. Its arguments are the mode (post,
// cart, page, hello or contention), a file of session ids, one a line, and
// the number of wrk threads. Each thread takes every n-th id of the file
// and walks its share round robin, so two threads never send the same
// session; in contention mode every thread sends the one session of the
// file. The requests are built once, in init: request only picks one.
//
// Only the contention mode defines response, because wrk parses headers and
// hands bodies to Lua only when it does, which would cost the client CPU
// that the server then lacks.
const script = `
local threads = {}
grid = {GRID}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  local nthreads = tonumber(args[3])
  reqs, resets = {}, {}
  local k = 0
  for id in io.lines(args[2]) do
    if mode == "contention" or k % nthreads == tid then
      local h = {["Cookie"] = "session_id=" .. id}
      if mode == "post" then
        h["Content-Type"] = "application/json"
        table.insert(reqs, wrk.format("POST", "/api/cart/items", h, '{"product_id":"totebench-deep","quantity":1}'))
        table.insert(resets, wrk.format("PUT", "/api/cart/items/totebench-deep", h, '{"quantity":1}'))
      elseif mode == "cart" then
        table.insert(reqs, wrk.format("GET", "/api/cart", h))
      else
        h["Accept"] = "text/html"
        table.insert(reqs, wrk.format("GET", "/", h))
      end
    end
    k = k + 1
  end
  n, i, picks = #reqs, 0, {}
  for k = 1, n do picks[k] = 0 end
  if mode == "contention" then
    ok, conflicts, other = 0, 0, 0
    response = function(status, headers, body)
      if status == 200 then
        ok = ok + 1
      elseif status == 409 then
        conflicts = conflicts + 1
      else
        other = other + 1
      end
    end
  end
end

function request()
  i = i % n + 1
  picks[i] = picks[i] + 1
  -- A session's first two requests of a run, and every 45th after them,
  -- set its line back to 1; the others add 1, so the line stays below 99.
  -- Two, because wrk calls request once before the run to check the
  -- script, and that request is never sent.
  if mode == "post" and (picks[i] <= 2 or picks[i] % 45 == 1) then
    return resets[i]
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local ok, conflicts, other = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + (t:get("ok") or 0)
    conflicts = conflicts + (t:get("conflicts") or 0)
    other = other + (t:get("other") or 0)
  end
  local e = summary.errors
  local q = {}
  for _, p in ipairs(grid) do
    table.insert(q, string.format("%.0f", latency:percentile(p)))
  end
  io.write(string.format("TOTEBENCH requests=%d duration_us=%d status_errors=%d socket_errors=%d ok=%d conflicts=%d other=%d quantiles_us=%s\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout, ok, conflicts, other,
    table.concat(q, ",")))
end
`

// grid is the percentiles of latency that each wrk run reports; runs are
// merged by their quantiles at these points (see merge).
var grid = func() []float64 {
	var g []float64
	for p := 1.0; p <= 98; p++ {
		g = append(g, p)
	}
	return append(g, 98.5, 99, 99.25, 99.5, 99.75, 99.9, 100)
}()

// scriptText is script with the grid filled in.
func scriptText() string {
	parts := make([]string, len(grid))
	for i, p := range grid {
		parts[i] = strconv.FormatFloat(p, 'f', -1, 64)
	}
	return strings.Replace(script, "{GRID}", "{"+strings.Join(parts, ", ")+"}", 1)
}

// result is what one or more wrk runs measured.
type result struct {
	requests     int64
	duration     time.Duration
	statusErrors int64    // responses with a status of 400 or more
	socketErrors int64    // connect, read, write errors and timeouts
	ok           int64    // contention mode: 200s
	conflicts    int64    // contention mode: 409s
	other        int64    // contention mode: anything else
	runs         []wrkRun // the runs merged into this result
}

// wrkRun is one wrk run's latency distribution: its quantiles at grid.
type wrkRun struct {
	requests  int64
	duration  time.Duration
	quantiles []time.Duration
}

func (r result) rps() float64 { return float64(r.requests) / r.duration.Seconds() }

// add merges another run's result into r.
func (r *result) add(o result) {
	r.requests += o.requests
	r.duration += o.duration
	r.statusErrors += o.statusErrors
	r.socketErrors += o.socketErrors
	r.ok += o.ok
	r.conflicts += o.conflicts
	r.other += o.other
	r.runs = append(r.runs, o.runs...)
}

// percentile returns the p-th percentile of latency over all runs of r:
// each run's distribution is taken as masses at its quantiles (the mass
// between two grid points, times the run's requests, at the upper one), and
// the masses of all runs are pooled. Within one run this is wrk's own
// percentile at the grid's points.
func (r result) percentile(p float64) time.Duration {
	type mass struct {
		v time.Duration
		w float64
	}
	var ms []mass
	total := 0.0
	for _, one := range r.runs {
		prev := 0.0
		for i, q := range one.quantiles {
			w := float64(one.requests) * (grid[i] - prev) / 100
			prev = grid[i]
			ms = append(ms, mass{q, w})
			total += w
		}
	}
	if total == 0 {
		return 0
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].v < ms[j].v })
	target, cum := total*p/100, 0.0
	for _, m := range ms {
		cum += m.w
		if cum >= target-1e-9*total {
			return m.v
		}
	}
	return ms[len(ms)-1].v
}

// runWrk runs wrk against url for seconds in mode, with the session ids in
// idFile, and returns what its done function reported.
func (b *bench) runWrk(ctx context.Context, url, mode, idFile string, seconds int) (result, error) {
	args := []string{
		"-t" + strconv.Itoa(b.o.threads), "-c" + strconv.Itoa(b.o.connections), "-d" + strconv.Itoa(seconds) + "s",
		"--timeout", "5s", "-s", b.scriptFile, url, "--", mode, idFile, strconv.Itoa(b.o.threads),
	}
	cmd := exec.CommandContext(ctx, b.wrk, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("wrk %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "TOTEBENCH ")
		if !ok {
			continue
		}
		var r result
		var q []time.Duration
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			if k == "quantiles_us" {
				for _, s := range strings.Split(v, ",") {
					n, err := strconv.ParseFloat(s, 64)
					if err != nil {
						return result{}, fmt.Errorf("wrk: bad quantile %q", s)
					}
					q = append(q, time.Duration(n)*time.Microsecond)
				}
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return result{}, fmt.Errorf("wrk: bad field %q", f)
			}
			switch k {
			case "requests":
				r.requests = n
			case "duration_us":
				r.duration = time.Duration(n) * time.Microsecond
			case "status_errors":
				r.statusErrors = n
			case "socket_errors":
				r.socketErrors = n
			case "ok":
				r.ok = n
			case "conflicts":
				r.conflicts = n
			case "other":
				r.other = n
			}
		}
		if r.duration <= 0 || len(q) != len(grid) {
			return result{}, fmt.Errorf("wrk reported no duration or no quantiles:\n%s", stdout.String())
		}
		r.runs = []wrkRun{{requests: r.requests, duration: r.duration, quantiles: q}}
		return r, nil
	}
	return result{}, fmt.Errorf("wrk printed no result:\n%s%s", stdout.String(), stderr.String())
}
