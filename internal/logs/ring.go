package logs

// ring keeps the last n entries pushed to it.
type ring struct {
	buf  []Entry
	n    int
	next int // where the next push goes once buf is full
}

func newRing(n int) *ring { return &ring{n: n} }

func (r *ring) push(e Entry) error {
	switch {
	case r.n == 0:
	case len(r.buf) < r.n:
		r.buf = append(r.buf, e)
	default:
		r.buf[r.next] = e
		r.next = (r.next + 1) % r.n
	}
	return nil
}

// emit passes the kept entries to fn, oldest first.
func (r *ring) emit(fn func(Entry) error) error {
	for i := range r.buf {
		if err := fn(r.buf[(r.next+i)%len(r.buf)]); err != nil {
			return err
		}
	}
	return nil
}
