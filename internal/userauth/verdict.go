package userauth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Answer is the master's answer to a keys or principals lookup: the
// users the key or certificate may log in as (at most one user).
type Answer struct {
	Grants []Grant `json:"grants"`
	Error  string  `json:"error,omitempty"`
}

// WriteVerdict is the master's one-line answer to a session's preamble:
// "ok", or why not. Only after "ok" is the connection the API.
func WriteVerdict(w io.Writer, refusal error) error {
	line := "ok\n"
	if refusal != nil {
		msg := strings.Map(func(r rune) rune {
			if r < ' ' || r == 0x7f {
				return ' '
			}
			return r
		}, refusal.Error())
		if len(msg) > 512 {
			msg = msg[:512]
		}
		line = "refused: " + msg + "\n"
	}
	_, err := io.WriteString(w, line)
	return err
}

// ReadVerdict reads the master's verdict: nil for "ok", the refusal as an
// error otherwise.
func ReadVerdict(r *bufio.Reader) error {
	line, err := r.ReadString('\n')
	if err != nil {
		if line == "" && errors.Is(err, io.EOF) {
			return errors.New("the master closed the connection without an answer")
		}
		return fmt.Errorf("read the master's answer: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	if line == "ok" {
		return nil
	}
	if msg, ok := strings.CutPrefix(line, "refused: "); ok {
		return fmt.Errorf("refused by the master: %s", msg)
	}
	return fmt.Errorf("unexpected answer from the master: %q", truncate(line))
}
