package audit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Table headers and lines in the kernel's format (as in this machine's
// /proc/net); addresses are little-endian words.
const (
	tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     "
	tcp6Head  = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	udpHeader = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            "

	tcpSSH       = "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21345 1 0000000063eb2ff2 100 0 0 10 0                       "
	tcpCups      = "   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22001 1 00000000a488a766 100 0 0 10 0                       "
	tcpNginx     = "   2: 0302010A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 22002 1 00000000ac5a10b5 100 0 0 10 0                       "
	tcpEstab     = "   3: 0302010A:0016 0502010A:D431 01 00000000:00000000 02:000AFC1B 00000000     0        0 30001 4 00000000c4b87b50 20 4 30 10 -1                      "
	tcpTimeWait  = "   4: 0100007F:0277 0100007F:A2C4 06 00000000:00000000 03:00000970 00000000     0        0 0 3 00000000c4b87b50                                      "
	tcp6Any      = "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21347 1 0000000000000000 100 0 0 10 0"
	tcp6Lo       = "   1: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 21400 1 0000000000000000 100 0 0 10 0"
	tcp6Mapped   = "   2: 0000000000000000FFFF00000100000A:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21500 1 0000000000000000 100 0 0 10 0"
	tcp6Global   = "   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21600 1 0000000000000000 100 0 0 10 0"
	tcp6Estab    = "   4: 0000000000000000FFFF00000100000A:1F90 0000000000000000FFFF00000200000A:C350 01 00000000:00000000 00:00000000 00000000     0        0 21700 1 0000000000000000 20 4 30 10 -1"
	udpDHCP      = "  123: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18234 2 0000000000000000 0        "
	udpConnected = "  200: 0302010A:9C41 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 18300 2 0000000000000000 0        "
	udpPortZero  = "  201: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 18301 2 0000000000000000 0        "
	udp6Lo       = "  300: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 18400 2 0000000000000000 0"
)

func table(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

func TestParseNetTable(t *testing.T) {
	tests := []struct {
		name  string
		proto string
		data  []byte
		want  []Socket
	}{
		{"empty", "tcp", nil, nil},
		{"header only", "tcp", table(tcpHeader), nil},
		{"tcp listeners, connections skipped", "tcp", table(tcpHeader, tcpSSH, tcpCups, tcpNginx, tcpEstab, tcpTimeWait), []Socket{
			{Proto: "tcp", Address: "0.0.0.0", Port: 22, Inode: 21345},
			{Proto: "tcp", Address: "127.0.0.1", Port: 631, Inode: 22001, Loopback: true},
			{Proto: "tcp", Address: "10.1.2.3", Port: 80, Inode: 22002},
		}},
		{"tcp6 any, loopback, mapped, global", "tcp6", table(tcp6Head, tcp6Any, tcp6Lo, tcp6Mapped, tcp6Global, tcp6Estab), []Socket{
			{Proto: "tcp6", Address: "::", Port: 22, Inode: 21347},
			{Proto: "tcp6", Address: "::1", Port: 53, Inode: 21400, Loopback: true},
			{Proto: "tcp6", Address: "::ffff:10.0.0.1", Port: 8080, Inode: 21500},
			{Proto: "tcp6", Address: "2001:db8::1", Port: 443, Inode: 21600},
		}},
		{"mapped loopback is loopback", "tcp6", table(tcp6Head,
			"   0: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9 1 0000000000000000 100 0 0 10 0"),
			[]Socket{{Proto: "tcp6", Address: "::ffff:127.0.0.1", Port: 8080, Inode: 9, Loopback: true}}},
		{"udp bound only, port 0 skipped", "udp", table(udpHeader, udpDHCP, udpConnected, udpPortZero), []Socket{
			{Proto: "udp", Address: "0.0.0.0", Port: 68, Inode: 18234},
		}},
		{"udp6 loopback", "udp6", table(tcp6Head, udp6Lo), []Socket{
			{Proto: "udp6", Address: "::1", Port: 53, Inode: 18400, Loopback: true},
		}},
		{"udp state 0A is not a udp listener", "udp", table(udpHeader, strings.Replace(udpDHCP, " 07 ", " 0A ", 1)), nil},
		{"tcp state 07 is not a tcp listener", "tcp", table(tcpHeader, strings.Replace(tcpSSH, " 0A ", " 07 ", 1)), nil},
		{"no trailing newline, CRLF", "tcp", []byte(tcpHeader + "\r\n" + tcpSSH), []Socket{
			{Proto: "tcp", Address: "0.0.0.0", Port: 22, Inode: 21345},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetTable(tt.proto, tt.data)
			if err != nil {
				t.Fatalf("ParseNetTable: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseNetTable (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseNetTableErrors(t *testing.T) {
	tests := []struct {
		name    string
		proto   string
		data    []byte
		wantErr string
	}{
		{"unknown proto", "sctp", table(tcpHeader), `unknown proto "sctp"`},
		{"short line", "tcp", table(tcpHeader, tcpSSH, "   1: 00000000:0016 00000000:0000 0A"), "line 3: want at least 10 fields, got 4"},
		{"bad state", "tcp", table(tcpHeader, strings.Replace(tcpSSH, " 0A ", " ZZ ", 1)), `line 2: state "ZZ"`},
		{"bad address hex", "tcp", table(tcpHeader, strings.Replace(tcpSSH, "00000000:0016", "0000000G:0016", 1)), "line 2: local address"},
		{"v6 address in v4 table", "tcp", table(tcpHeader, tcp6Any), "line 2: local address"},
		{"v4 address in v6 table", "udp6", table(tcp6Head, udpDHCP), "line 2: local address"},
		{"no port", "tcp", table(tcpHeader, strings.Replace(tcpSSH, "00000000:0016", "00000000_0016", 1)), "line 2: local address"},
		{"bad port", "tcp", table(tcpHeader, strings.Replace(tcpSSH, "00000000:0016", "00000000:00G6", 1)), `line 2: local port "00G6"`},
		{"bad inode", "udp", table(udpHeader, strings.Replace(udpDHCP, " 18234 ", " 18x34 ", 1)), `line 2: inode "18x34"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetTable(tt.proto, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseNetTable = %v, %v; want error containing %q", got, err, tt.wantErr)
			}
		})
	}
}
