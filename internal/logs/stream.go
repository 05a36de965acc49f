package logs

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/moatcloud/moat/internal/errs"
)

// stream splits one output stream into records: a full record (F) per
// newline-terminated line, partial records (P) of MaxLine bytes for longer
// lines, and a final partial record at Close for output without a newline.
type stream struct {
	w    *Writer
	name string

	mu     sync.Mutex
	pend   []byte // start of the current line, at most MaxLine bytes between writes
	closed bool
}

// Write records every complete line in p and keeps the rest for later.
func (s *stream) Write(p []byte) (int, error) {
	if !validStream(s.name) {
		return 0, fmt.Errorf("log stream %q: %w: not stdout or stderr", s.name, errs.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("log stream %s: %w", s.name, os.ErrClosed)
	}
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		line := p[:i]
		if len(s.pend) > 0 {
			s.pend = append(s.pend, line...)
			line = s.pend
		}
		if err := s.line(line); err != nil {
			return 0, err
		}
		s.pend = s.pend[:0]
		p = p[i+1:]
	}
	s.pend = append(s.pend, p...)
	for len(s.pend) > MaxLine {
		if err := s.w.record(s.name, true, s.pend[:MaxLine]); err != nil {
			return 0, err
		}
		s.pend = s.pend[:copy(s.pend, s.pend[MaxLine:])]
	}
	return n, nil
}

// line records a complete line: MaxLine-sized partial records while more
// than MaxLine bytes remain, then a full record with the rest.
func (s *stream) line(b []byte) error {
	for len(b) > MaxLine {
		if err := s.w.record(s.name, true, b[:MaxLine]); err != nil {
			return err
		}
		b = b[MaxLine:]
	}
	return s.w.record(s.name, false, b)
}

// Close records what is left of an unterminated line as a partial record.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if len(s.pend) == 0 {
		return nil
	}
	err := s.w.record(s.name, true, s.pend)
	s.pend = nil
	return err
}
