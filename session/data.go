package session

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"tote/cart"
)

// Data is what one session holds: the Django tutorial's num_visits, the
// cart, a one-time flash message, the session's CSRF token and, for a
// logged-in visitor, the account it belongs to (whose cart is then the
// account's, not the session's).
type Data struct {
	Visits     int64     // num_visits: HTML page views
	Cart       cart.Cart // a guest's cart: product id -> quantity, in first-added order
	Flash      Flash     // shown once, on the next page
	CSRF       string    // the token every form of this session must carry
	User       string    // the logged-in username; "" for a guest
	Generation uint64    // the account's generation at login: a later one ends the session
	Transient  bool      // logged in without "remember me": the cookie ends with the browser
	Replays    Replays   // answers to requests made with an Idempotency-Key

	// Expires is when the session ends unless it is saved again; the
	// Manager sets it when it stores the session.
	Expires time.Time
}

// Flash is a one-time message for the next page.
type Flash struct {
	Message string
	Error   bool // the message reports a refused change
}

// Limits of the encoding: a stored session is never larger than MaxSize.
const (
	MaxSize      = 64 << 10
	maxText      = 1024 // flash message and CSRF token
	maxIDLength  = 64   // a product id, a username
	maxVisits    = 1 << 62
	maxUnix      = 1 << 40 // seconds: far beyond any real time
	formatV1     = 1       // visits, CSRF, flash, cart
	formatV2     = 2       // expiry, then V1's fields, the user, the replays
	expiresAt    = 1       // where the expiry starts in a V2 encoding
	headerLength = expiresAt + 8
)

// ErrCorrupt is returned by Decode for a payload that is not a session.
var ErrCorrupt = errors.New("session: corrupt data")

// ErrTooLarge is returned by Append for data that would encode to more than
// MaxSize bytes.
var ErrTooLarge = errors.New("session: data too large")

// IsZero reports whether d holds nothing worth storing.
func (d *Data) IsZero() bool {
	return d.Visits == 0 && d.CSRF == "" && d.Bare()
}

// Bare reports whether d holds nothing but visits and a CSRF token: no
// cart, no login, no pending flash, no kept answers. A bare session lives
// the shorter EmptyTTL and may be evicted when an embedded store is full.
func (d *Data) Bare() bool {
	return d.Cart.Len() == 0 && d.User == "" && d.Flash == (Flash{}) && len(d.Replays) == 0
}

// Append appends the binary encoding of d to b. It stores a flash message
// longer than 1 KiB cut short; a CSRF token longer than that is
// ErrTooLarge. The format is a version byte, the expiry (8 bytes, unix
// nanoseconds), then uvarint visits, the CSRF token, the flash (a flag byte
// and the message), the user, uvarint generation, a flag byte (transient),
// the cart lines (count, then id and quantity of each) and the replays,
// strings as uvarint length and bytes. It allocates nothing when b has
// room.
func (d *Data) Append(b []byte) ([]byte, error) {
	if len(d.CSRF) > maxText || len(d.User) > maxIDLength {
		return b, ErrTooLarge
	}
	start := len(b)
	b = append(b, formatV2)
	var expires int64
	if !d.Expires.IsZero() {
		expires = d.Expires.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(expires))
	b = binary.AppendUvarint(b, uint64(min(max(d.Visits, 0), maxVisits)))
	b = appendString(b, d.CSRF)
	b = append(b, flag(d.Flash.Error))
	b = appendString(b, clipText(d.Flash.Message))
	b = appendString(b, d.User)
	b = binary.AppendUvarint(b, d.Generation)
	b = append(b, flag(d.Transient))
	lines := d.Cart.Lines()
	b = binary.AppendUvarint(b, uint64(len(lines)))
	for _, l := range lines {
		b = appendString(b, l.ProductID)
		b = append(b, byte(l.Quantity))
	}
	b = binary.AppendUvarint(b, uint64(len(d.Replays)))
	for _, r := range d.Replays {
		b = append(b, r.Key[:]...)
		b = append(b, r.Request[:]...)
		b = binary.AppendUvarint(b, uint64(min(max(r.At.Unix(), 0), maxUnix)))
		b = binary.AppendUvarint(b, uint64(r.Status))
		b = appendString(b, string(r.Body))
	}
	if len(b)-start > MaxSize {
		return b[:start], ErrTooLarge
	}
	return b, nil
}

func flag(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// clipText makes a flash message storable: valid UTF-8, at most maxText
// bytes, cut at a character boundary.
func clipText(s string) string {
	if utf8.ValidString(s) && len(s) <= maxText {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxText {
		cut := maxText - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Decode parses an encoding made by Append, or by the first format, which
// had neither expiry nor user. Any payload that Append could not have made,
// including one that is truncated, oversized or carries trailing bytes, is
// ErrCorrupt; Decode never panics.
//
// The strings it returns are substrings of one copy of p (so none of them
// aliases p).
func Decode(p []byte) (Data, error) {
	var d Data
	if len(p) == 0 || len(p) > MaxSize || p[0] != formatV1 && p[0] != formatV2 {
		return Data{}, ErrCorrupt
	}
	v2 := p[0] == formatV2
	body := p[1:]
	if v2 {
		if len(p) < headerLength {
			return Data{}, ErrCorrupt
		}
		if ns := int64(binary.BigEndian.Uint64(p[expiresAt:headerLength])); ns != 0 {
			d.Expires = time.Unix(0, ns)
		}
		body = p[headerLength:]
	}
	r := reader{p: body, s: string(body)}
	visits := r.uvarint()
	d.CSRF = r.string(maxText)
	flash := r.byte()
	d.Flash.Message = r.string(maxText)
	d.Flash.Error = flash == 1
	var flags byte
	if v2 {
		d.User = r.string(maxIDLength)
		d.Generation = r.uvarint()
		flags = r.byte()
		d.Transient = flags == 1
	}
	n := r.uvarint()
	if r.err || flash > 1 || flags > 1 || visits > maxVisits || n > cart.MaxLines {
		return Data{}, ErrCorrupt
	}
	d.Visits = int64(visits)
	if n > 0 {
		lines := make([]cart.Line, n)
		for i := range lines {
			lines[i].ProductID = r.string(maxIDLength)
			lines[i].Quantity = int(r.byte())
		}
		if r.err {
			return Data{}, ErrCorrupt
		}
		c, err := cart.FromLines(lines)
		if err != nil {
			return Data{}, ErrCorrupt
		}
		d.Cart = c
	}
	if v2 {
		n := r.uvarint()
		if n > MaxReplays {
			return Data{}, ErrCorrupt
		}
		for range n {
			var rp Replay
			copy(rp.Key[:], r.bytes(len(rp.Key)))
			copy(rp.Request[:], r.bytes(len(rp.Request)))
			at, status := r.uvarint(), r.uvarint()
			rp.Body = []byte(r.string(MaxSize))
			if at > maxUnix || status > 999 {
				return Data{}, ErrCorrupt
			}
			rp.At, rp.Status = time.Unix(int64(at), 0), int(status)
			d.Replays = append(d.Replays, rp)
		}
	}
	if r.err || len(r.p) != 0 || !utf8.ValidString(d.Flash.Message) {
		return Data{}, ErrCorrupt
	}
	return d, nil
}

// reader reads the encoding; after the first failure it returns zero values
// and err stays set. s is a copy of p, which strings are cut from.
type reader struct {
	p   []byte
	s   string
	err bool
}

func (r *reader) uvarint() uint64 {
	if r.err {
		return 0
	}
	v, n := binary.Uvarint(r.p)
	if n <= 0 || n > 1 && r.p[n-1] == 0 { // malformed, or not the shortest form
		r.err = true
		return 0
	}
	r.skip(n)
	return v
}

// skip advances past n bytes.
func (r *reader) skip(n int) {
	r.p = r.p[n:]
	r.s = r.s[n:]
}

func (r *reader) byte() byte {
	if r.err || len(r.p) == 0 {
		r.err = true
		return 0
	}
	c := r.p[0]
	r.skip(1)
	return c
}

// bytes returns the next n bytes, or nil after a failure.
func (r *reader) bytes(n int) []byte {
	if r.err || len(r.p) < n {
		r.err = true
		return nil
	}
	b := r.p[:n]
	r.skip(n)
	return b
}

func (r *reader) string(limit int) string {
	n := r.uvarint()
	if r.err || n > uint64(limit) || n > uint64(len(r.p)) {
		r.err = true
		return ""
	}
	s := r.s[:n]
	r.skip(int(n))
	return s
}
