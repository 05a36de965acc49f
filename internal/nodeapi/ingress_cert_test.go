package nodeapi

import (
	"strings"
	"testing"
)

func TestIngressCertValidate(t *testing.T) {
	id := LinkID(EdgeSource, "web", 8080)
	table := func(r IngressRoute) LinkTable {
		r.Host, r.App, r.Port, r.Link = "web.test", "web", 8080, id
		return LinkTable{Links: []Link{{ID: id, Source: EdgeSource, Target: "web", Port: 8080}}, Ingress: []IngressRoute{r}}
	}
	ok := table(IngressRoute{Cert: &IngressCert{Secret: "tls", Version: 1, Envelope: []byte("AGE")}})
	if err := ok.Validate(); err != nil {
		t.Fatalf("a route with a certificate: %v", err)
	}
	for _, tc := range []struct {
		r    IngressRoute
		want string
	}{
		{IngressRoute{ACME: true, Cert: &IngressCert{Secret: "tls", Envelope: []byte("AGE")}}, "ingress[0].cert: a route's certificate comes from ACME or from a secret"},
		{IngressRoute{Cert: &IngressCert{Secret: "../tls", Envelope: []byte("AGE")}}, "ingress[0].cert.secret"},
		{IngressRoute{Cert: &IngressCert{Secret: "tls"}}, "ingress[0].cert.envelope: 0 bytes"},
		{IngressRoute{Cert: &IngressCert{Secret: "tls", Envelope: make([]byte, MaxEnvelopeBytes+1)}}, "ingress[0].cert.envelope"},
	} {
		tb := table(tc.r)
		if err := tb.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.r.Cert, err, tc.want)
		}
	}
}
