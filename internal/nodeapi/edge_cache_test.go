package nodeapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/moatcloud/moat/internal/errs"
)

// TestEdgeCacheInstallValidate: a malformed install is refused with an
// error naming its field, before the edge looks at any entry.
func TestEdgeCacheInstallValidate(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	ok := func() EdgeCacheInstall {
		return EdgeCacheInstall{KeyID: "0123456789abcdef", Entries: []EdgeCacheEntry{{Hash: hash, Data: []byte{2, 1}}}}
	}
	if in := ok(); in.Validate() != nil {
		t.Fatalf("a well-formed install: %v", in.Validate())
	}
	many := ok()
	for range MaxEdgeCacheEntries {
		many.Entries = append(many.Entries, many.Entries[0])
	}
	for what, tc := range map[string]struct {
		change func(*EdgeCacheInstall)
		field  string
	}{
		"no key ID":         {func(in *EdgeCacheInstall) { in.KeyID = "" }, "key_id"},
		"key ID not hex":    {func(in *EdgeCacheInstall) { in.KeyID = "../../../etc/pwd" }, "key_id"},
		"key ID too long":   {func(in *EdgeCacheInstall) { in.KeyID = strings.Repeat("a", 4096) }, "key_id"},
		"upper-case hash":   {func(in *EdgeCacheInstall) { in.Entries[0].Hash = strings.ToUpper(hash) }, "entries[0].hash"},
		"hash not hex":      {func(in *EdgeCacheInstall) { in.Entries[0].Hash = strings.Repeat("z", 64) }, "entries[0].hash"},
		"short hash":        {func(in *EdgeCacheInstall) { in.Entries[0].Hash = hash[:10] }, "entries[0].hash"},
		"no data":           {func(in *EdgeCacheInstall) { in.Entries[0].Data = nil }, "entries[0].data"},
		"data too big":      {func(in *EdgeCacheInstall) { in.Entries[0].Data = make([]byte, MaxEdgeCacheEntry+1) }, "entries[0].data"},
		"an outbox's seq":   {func(in *EdgeCacheInstall) { in.Entries[0].Seq = 3 }, "entries[0].seq"},
		"challenge & claim": {func(in *EdgeCacheInstall) { in.Entries[0].Challenge, in.Entries[0].Claim = true, true }, "entries[0]"},
		"too many":          {func(in *EdgeCacheInstall) { *in = many }, "entries"},
	} {
		in := ok()
		tc.change(&in)
		err := in.Validate()
		var fe *errs.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("%s: %v, want an invalid %s", what, err, tc.field)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("%s: an error of %d bytes", what, len(err.Error()))
		}
	}
}
