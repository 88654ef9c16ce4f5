package main

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// proxies are the networks of TRUSTED_PROXIES.
type proxies []netip.Prefix

// parseProxies reads TRUSTED_PROXIES: comma-separated CIDRs, or single
// addresses.
func parseProxies(v string) (proxies, error) {
	var ps proxies
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or an address", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

func (ps proxies) contain(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP returns the address of the client: the peer, or, when the peer
// is a trusted proxy, the right-most address of X-Forwarded-For (the
// values of every such header, in order) that is not a trusted proxy. A
// malformed entry ends the walk: what lies left of it cannot be trusted,
// so the last trusted hop's word is taken, which is the proxy itself.
func (ps proxies) clientIP(peer netip.Addr, forwarded []string) netip.Addr {
	peer = peer.Unmap()
	if len(ps) == 0 || !ps.contain(peer) {
		return peer
	}
	client := peer
	for i := len(forwarded) - 1; i >= 0; i-- {
		hops := strings.Split(forwarded[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, ok := parseHop(hops[j])
			if !ok {
				return client
			}
			client = a
			if !ps.contain(a) {
				return a
			}
		}
	}
	return client
}

// parseHop parses one entry of X-Forwarded-For: an address, possibly with
// a port ("203.0.113.9:4711", "[2001:db8::1]:4711").
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// budget limits how many new sessions each client may start: perMinute,
// refilled evenly, with a burst of as many. IPv6 clients are counted per
// /64, the block one subscriber usually holds. Clients idle for long enough
// to have their whole budget back are forgotten, and at most maxClients
// are remembered: past that, a new client is let through (the store's cap
// on sessions still holds).
type budget struct {
	perMinute int
	mu        sync.Mutex
	clients   map[netip.Addr]*rate.Limiter
	swept     time.Time
}

const maxClients = 100_000

func newBudget(perMinute int) *budget {
	return &budget{perMinute: perMinute, clients: map[netip.Addr]*rate.Limiter{}}
}

// allow takes one new session from a's budget and reports whether there
// was one; when there was not, it also returns how long until there is.
func (b *budget) allow(a netip.Addr, now time.Time) (bool, time.Duration) {
	if b.perMinute <= 0 {
		return true, 0
	}
	if a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.swept) > time.Minute || len(b.clients) >= maxClients {
		b.sweep(now)
	}
	l := b.clients[a]
	if l == nil {
		if len(b.clients) >= maxClients {
			return true, 0
		}
		l = rate.NewLimiter(rate.Limit(float64(b.perMinute)/60), b.perMinute)
		b.clients[a] = l
	}
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets the clients whose budget is whole again.
func (b *budget) sweep(now time.Time) {
	for a, l := range b.clients {
		if l.TokensAt(now) >= float64(b.perMinute) {
			delete(b.clients, a)
		}
	}
	b.swept = now
}
