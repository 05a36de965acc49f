package rrd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestEncodingRoundTripFixedSize(t *testing.T) {
	const perSeries = 16 + 4*53 + 80880*14
	if got := Default.Size(); got != perSeries {
		t.Fatalf("Default.Size() = %d, want %d", got, perSeries)
	}
	s := newSeries(t, Default)
	empty, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		s.Add(t0.Add(time.Duration(i)*7*time.Second), float64(i%17))
	}
	s.Add(t0, 1) // refused, counted
	full, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(empty) != perSeries || len(full) != perSeries {
		t.Fatalf("encodings of %d and %d bytes, want %d whatever the content", len(empty), len(full), perSeries)
	}
	var back Series
	if err := back.UnmarshalBinary(full); err != nil {
		t.Fatal(err)
	}
	again, _ := back.MarshalBinary()
	if !bytes.Equal(full, again) {
		t.Fatal("re-encoding a decoded series differs")
	}
	if back.Dropped() != 1 {
		t.Errorf("Dropped() = %d after decoding, want 1", back.Dropped())
	}
	// The decoded series goes on consolidating where the original left off.
	next := t0.Add(5000 * 7 * time.Second)
	s.Add(next, 3)
	back.Add(next, 3)
	_, want := s.Fetch(next.Add(-time.Hour), next, 1000)
	_, got := back.Fetch(next.Add(-time.Hour), next, 1000)
	if !samePoints(got, want) {
		t.Error("decoded series fetches differently after one more sample")
	}
}

func samePoints(a, b []Point) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.T.Equal(y.T) || x.N != y.N || (x.N > 0 && (x.Avg != y.Avg || x.Min != y.Min || x.Max != y.Max)) {
			return false
		}
	}
	return true
}

func TestUnmarshalRefuses(t *testing.T) {
	s := newSeries(t, small)
	s.Add(t0, 1)
	good, _ := s.MarshalBinary()
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	tests := map[string][]byte{
		"empty":         nil,
		"bad magic":     mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version 2":     mutate(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[4:], 2); return b }),
		"no archives":   mutate(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[6:], 0); return b }),
		"more archives": mutate(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[6:], 3); return b }),
		"truncated":     good[:len(good)-1],
		"trailing byte": append(append([]byte(nil), good...), 0),
		"zero step":     mutate(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[16:], 0); return b }),
		"huge rows":     mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[24:], 1<<31); return b }),
		"started flag":  mutate(func(b []byte) []byte { b[28] = 7; return b }),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			before, _ := s.MarshalBinary()
			err := s.UnmarshalBinary(b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("UnmarshalBinary: %v, want ErrCorrupt", err)
			}
			if after, _ := s.MarshalBinary(); !bytes.Equal(before, after) {
				t.Error("a refused decode changed the series")
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	s := newSeries(f, small)
	empty, _ := s.MarshalBinary()
	f.Add(empty)
	for i := 0; i < 40; i++ {
		s.Add(t0.Add(time.Duration(i)*9*time.Second), float64(i))
	}
	full, _ := s.MarshalBinary()
	f.Add(full)
	f.Add(full[:40])
	f.Add([]byte("MRRD"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Series
		if err := s.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted bytes do not re-encode to themselves (err %v)", err)
		}
		// Whatever it decoded, using it must not panic.
		s.Fetch(t0, t0.Add(time.Hour), 100)
		s.Fetch(time.Unix(0, -1<<62), time.Unix(0, 1<<62), 0)
		s.Add(t0.Add(time.Hour), 1)
	})
}
