package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientIP(t *testing.T) {
	ps, err := parseProxies("10.0.0.0/8, 192.0.2.1,2001:db8:1::/48")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		peer      string
		forwarded []string
		want      string
	}{
		{"a direct client's header is ignored", "198.51.100.4", []string{"203.0.113.9"}, "198.51.100.4"},
		{"a proxy without the header", "10.1.2.3", nil, "10.1.2.3"},
		{"one proxy", "10.1.2.3", []string{"203.0.113.9"}, "203.0.113.9"},
		{"the right-most untrusted hop", "10.1.2.3", []string{"203.0.113.66, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"a forged left-most hop is not taken", "10.1.2.3", []string{"1.1.1.1, 203.0.113.9"}, "203.0.113.9"},
		{"several headers read in order", "10.1.2.3", []string{"203.0.113.66", "203.0.113.9, 192.0.2.1"}, "203.0.113.9"},
		{"a single trusted address", "192.0.2.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"with a port", "10.1.2.3", []string{"203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6 with a port", "10.1.2.3", []string{"[2001:db8::7]:4711"}, "2001:db8::7"},
		{"IPv4 mapped in IPv6 peer", "::ffff:10.1.2.3", []string{"203.0.113.9"}, "203.0.113.9"},
		{"IPv6 proxy", "2001:db8:1::5", []string{"203.0.113.9"}, "203.0.113.9"},
		{"a malformed hop ends the walk at the last trusted one", "10.1.2.3", []string{"203.0.113.9, junk, 10.9.9.9"}, "10.9.9.9"},
		{"a malformed right-most hop leaves the proxy", "10.1.2.3", []string{"junk"}, "10.1.2.3"},
		{"an empty header leaves the proxy", "10.1.2.3", []string{""}, "10.1.2.3"},
		{"every hop trusted: the left-most", "10.1.2.3", []string{"10.7.7.7, 10.8.8.8"}, "10.7.7.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ps.clientIP(netip.MustParseAddr(tt.peer), tt.forwarded)
			if got != netip.MustParseAddr(tt.want) {
				t.Errorf("clientIP(%s, %q) = %v, want %s", tt.peer, tt.forwarded, got, tt.want)
			}
		})
	}
}

func TestParseProxiesErrors(t *testing.T) {
	for _, v := range []string{"10.0.0.0/33", "proxy.example", "10.0.0.0/8,,nope"} {
		if _, err := parseProxies(v); err == nil {
			t.Errorf("parseProxies(%q) accepted it", v)
		}
	}
	if ps, err := parseProxies(" , "); err != nil || len(ps) != 0 {
		t.Errorf("parseProxies of blanks = %v, %v; want none", ps, err)
	}
}

// TestBudget: a client gets perMinute new sessions at once, then one
// every 60/perMinute seconds; IPv6 clients share a budget per /64.
func TestBudget(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := newBudget(3)
	a := netip.MustParseAddr("203.0.113.9")
	for i := range 3 {
		if ok, _ := b.allow(a, now); !ok {
			t.Fatalf("session %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := b.allow(a, now)
	if ok || wait != 20*time.Second {
		t.Fatalf("a fourth session: allowed %v, wait %v; want refused, 20s", ok, wait)
	}
	if ok, _ := b.allow(netip.MustParseAddr("203.0.113.10"), now); !ok {
		t.Error("another client was refused")
	}
	if ok, _ := b.allow(a, now.Add(20*time.Second)); !ok {
		t.Error("refused 20 s later, when one session is back")
	}

	v6 := newBudget(1)
	if ok, _ := v6.allow(netip.MustParseAddr("2001:db8::1"), now); !ok {
		t.Fatal("the first IPv6 session refused")
	}
	if ok, _ := v6.allow(netip.MustParseAddr("2001:db8::ffff:2"), now); ok {
		t.Error("a second address of the same /64 had a budget of its own")
	}
	if ok, _ := v6.allow(netip.MustParseAddr("2001:db8:0:1::1"), now); !ok {
		t.Error("another /64 was refused")
	}

	if ok, _ := newBudget(0).allow(a, now); !ok {
		t.Error("NEW_SESSIONS_PER_IP=0 refused a session")
	}
}

// FuzzClientIP: whatever X-Forwarded-For says, the client address is the
// peer, a hop the header names, and never a forged hop left of an
// untrusted one; and it never panics.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "1.1.1.1, 203.0.113.9, 10.0.0.2", "[2001:db8::7]:4711", "junk, 10.0.0.2", "", ",,,", "::ffff:10.0.0.2", "203.0.113.9:99999", "fe80::1%eth0"} {
		f.Add("10.0.0.1", s)
		f.Add("198.51.100.4", s)
	}
	ps, err := parseProxies("10.0.0.0/8,2001:db8:1::/48")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peerText, header string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			return
		}
		peer = peer.Unmap()
		got := ps.clientIP(peer, []string{header})
		if !ps.contain(peer) {
			if got != peer {
				t.Fatalf("an untrusted peer %v was taken to be %v", peer, got)
			}
			return
		}
		if got == peer {
			return
		}
		// got is a hop of the header, and every hop right of it is a
		// trusted proxy.
		hops := strings.Split(header, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHop(hops[i])
			if !ok {
				t.Fatalf("%v taken from left of a malformed hop in %q", got, header)
			}
			if a == got {
				return
			}
			if !ps.contain(a) {
				t.Fatalf("%v taken from left of the untrusted hop %v in %q", got, a, header)
			}
		}
		t.Fatalf("%v is neither the peer %v nor a hop of %q", got, peer, header)
	})
}
