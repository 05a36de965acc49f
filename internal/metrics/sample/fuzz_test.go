package sample

import "testing"

// The fuzz targets check that no file content makes a parser panic, and
// that what they accept is sane.

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statFixture))
	f.Add([]byte("cpu 1 2 3 4\ncpu0 1 2 3 4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseStat(b)
		if err == nil && (c.Busy > c.Total || c.CPUs < 1) {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func FuzzParseLoadavg(f *testing.F) {
	f.Add([]byte("1.42 2.34 1.35 1/132 1649\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseLoadavg(b)
		if err == nil && !(v >= 0) {
			t.Fatalf("accepted %v", v)
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add([]byte("MemTotal:       1000 kB\nMemAvailable:    600 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		total, avail, err := ParseMeminfo(b)
		if err == nil && (total > 1<<63 || avail > 1<<63) {
			t.Fatalf("accepted %d %d", total, avail)
		}
	})
}

func FuzzParseDiskstats(f *testing.F) {
	f.Add([]byte(diskstatsFixture))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseDiskstats(b, map[string]bool{"vda": true, "sda": true})
	})
}

func FuzzParseNetDev(f *testing.F) {
	f.Add([]byte(netDevFixture))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseNetDev(b, HostInterface)
	})
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("usage_usec 12345\nuser_usec 10000\n"))
	f.Add([]byte("max\n"))
	f.Add([]byte("67108864\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseKeyed(b, "usage_usec")
		if v, err := ParseValue(b); err == nil && v >= unlimited {
			t.Fatalf("accepted %d as a limit", v)
		}
	})
}
