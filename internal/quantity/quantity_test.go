package quantity

import "testing"

func TestParseBytes(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "256Mi": 256 << 20, "256MiB": 256 << 20, "256M": 256 << 20, "256m": 256 << 20,
		"1.5G": 3 << 29, "1Gi": 1 << 30, "1GB": 1e9, "10KB": 10000, "4k": 4096, "12B": 12, " 2Gi ": 2 << 30,
	}
	for in, want := range good {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "12XB", "M", "-1M", "1e3", "Inf", "NaN", "0x10", "1..2G", "1 2M", "99999999999T"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1KiB", 1536: "1.5KiB", 256 << 20: "256MiB", 3 << 29: "1.5GiB", 1 << 40: "1TiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseMilliCPU(t *testing.T) {
	good := map[string]int64{"1": 1000, "0.5": 500, "2.25": 2250, "500m": 500, "10m": 10, "0": 0}
	for in, want := range good {
		got, err := ParseMilliCPU(in)
		if err != nil || got != want {
			t.Errorf("ParseMilliCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5m", "m", "1e3", "NaN"} {
		if got, err := ParseMilliCPU(in); err == nil {
			t.Errorf("ParseMilliCPU(%q) = %d, want an error", in, got)
		}
	}
}
