// Package quantity parses and prints the sizes and CPU amounts operators
// write: "256Mi", "1.5G", "512m" of CPU. Pure functions, no I/O.
package quantity

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	// Bare K, M, G are binary, as in docker's --memory: what operators mean.
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"B", 1}, {"b", 1},
}

// ParseBytes parses a size: a number with an optional unit (B, K, M, G, T
// and their Ki/KiB binary and KB decimal forms).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, mult := s, 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.ContainsAny(num, "eEinfINFxX") {
		return 0, fmt.Errorf("%q is not a size: want a number and a unit such as 256Mi, 1G or 512M", s)
	}
	b := v * mult
	if v < 0 || b > math.MaxInt64 || math.IsNaN(b) {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int64(b), nil
}

// FormatBytes prints a size with a binary unit, e.g. "1.5GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	return strings.TrimSuffix(v, ".0") + string("KMGTP"[exp]) + "iB"
}

// ParseMilliCPU parses CPU as cores ("0.5", "2") or millicores ("500m").
func ParseMilliCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		v, err := strconv.ParseInt(m, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%q is not a CPU amount: want cores (0.5) or millicores (500m)", s)
		}
		return v, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1e6 || strings.ContainsAny(s, "eEinfINFxX") {
		return 0, fmt.Errorf("%q is not a CPU amount: want cores (0.5) or millicores (500m)", s)
	}
	return int64(math.Round(v * 1000)), nil
}
