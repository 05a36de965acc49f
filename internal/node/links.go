package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/moatcloud/moat/internal/errs"
	"github.com/moatcloud/moat/internal/nodeapi"
	"github.com/moatcloud/moat/internal/sshkey"
)

// links is the node's side of links (nodeapi/link.go): the table the
// master last sent, the listeners it opens inside source containers, the
// connections they carry to target replicas, and the link keys of the
// grants in root's authorized_keys.
//
// Table changes take effect for new connections at once; connections
// already held go on (a replica leaving a link's endpoints drains), except
// when their link leaves the table: that is a revocation, and they are cut.
type links struct {
	log            *slog.Logger
	tablePath      string // nodeapi.Layout.Links
	authorizedKeys string
	// subscribe and list are the daemon's container events and containers.
	subscribe func() (<-chan nodeapi.Event, func())
	list      func() []nodeapi.Container
	kick      chan struct{} // the table changed: reconcile the listeners
	setMu     sync.Mutex    // one table change at a time, keys and file in step

	mu        sync.Mutex
	table     nodeapi.LinkTable
	byID      map[string]nodeapi.Link
	view      map[string]nodeapi.Container // as the daemon's events last said
	listeners map[listenerKey]*listener
	counts    map[string]int // connections held or being opened, per endpoint
	remotes   map[string]*linkRemote
	held      map[string]map[net.Conn]struct{} // clients' connections, per link
}

func newLinks(log *slog.Logger, tablePath, authorizedKeys string, subscribe func() (<-chan nodeapi.Event, func()), list func() []nodeapi.Container) *links {
	return &links{
		log: log.With("part", "links"), tablePath: tablePath, authorizedKeys: authorizedKeys,
		subscribe: subscribe, list: list, kick: make(chan struct{}, 1),
		byID: map[string]nodeapi.Link{}, view: map[string]nodeapi.Container{},
		listeners: map[listenerKey]*listener{}, counts: map[string]int{},
		remotes: map[string]*linkRemote{}, held: map[string]map[net.Conn]struct{}{},
	}
}

// start takes up the table saved before a restart, puts its grants back
// in authorized_keys (a line lost meanwhile is restored) and serves its
// links until ctx ends.
func (m *links) start(ctx context.Context) {
	// With no table saved, authorized_keys is not even read: a node the
	// master never sent links to is left as it is.
	if t, err := loadLinkTable(m.tablePath); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.log.Error("link table unreadable", "path", m.tablePath, "err", err)
		}
	} else {
		if err := syncAuthorized(m.authorizedKeys, t.Grants); err != nil {
			m.log.Error("link keys not restored", "err", err)
		}
		m.setTable(t)
	}
	go m.run(ctx)
}

// loadLinkTable reads the saved table.
func loadLinkTable(path string) (nodeapi.LinkTable, error) {
	var t nodeapi.LinkTable
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err == nil {
		err = t.Validate()
	}
	return t, err
}

// set replaces the table: link keys first (a grant that cannot be written
// changes nothing else), then the saved copy, then what is served.
func (m *links) set(t nodeapi.LinkTable) error {
	m.setMu.Lock()
	defer m.setMu.Unlock()
	if err := syncAuthorized(m.authorizedKeys, t.Grants); err != nil {
		return fmt.Errorf("link keys: %w", err)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	tmp := m.tablePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save link table: %w", err)
	}
	if err := os.Rename(tmp, m.tablePath); err != nil {
		return fmt.Errorf("save link table: %w", err)
	}
	m.setTable(t)
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return nil
}

// setTable serves t: new connections see it at once; the connections of
// links that are gone are cut, and their SSH connections closed.
func (m *links) setTable(t nodeapi.LinkTable) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.table = t
	byID := map[string]nodeapi.Link{}
	for _, l := range t.Links {
		byID[l.ID] = l
	}
	for id := range m.byID {
		if _, ok := byID[id]; !ok {
			for c := range m.held[id] {
				c.Close()
			}
			delete(m.held, id)
		}
	}
	m.byID = byID
	m.updateRemotes()
}

// status is what GET /v1/links answers: private keys left out, the
// listeners that are open.
func (m *links) status() nodeapi.LinkStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := nodeapi.LinkStatus{Table: nodeapi.LinkTable{Grants: m.table.Grants, Ingress: m.table.Ingress}}
	for _, l := range m.table.Links {
		l.Key = ""
		st.Table.Links = append(st.Table.Links, l)
	}
	for _, l := range m.listeners {
		if l.ln == nil {
			continue
		}
		st.Listeners = append(st.Listeners, nodeapi.LinkListener{
			Link: l.key.link, Container: l.key.container, Local: l.local,
			Open: int(l.open.Load()), Accepted: l.accepted.Load(), Failed: l.failed.Load(),
		})
	}
	slices.SortFunc(st.Listeners, func(a, b nodeapi.LinkListener) int {
		return strings.Compare(a.Link+"\x00"+a.Container, b.Link+"\x00"+b.Container)
	})
	return st
}

// hold records a client's connection on a link, so that it can be cut if
// the link goes; false if the link is already gone.
func (m *links) hold(link string, c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[link]; !ok {
		return false
	}
	if m.held[link] == nil {
		m.held[link] = map[net.Conn]struct{}{}
	}
	m.held[link][c] = struct{}{}
	return true
}

func (m *links) unhold(link string, c net.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.held[link], c)
}

func (d *Daemon) handleSetLinks(w http.ResponseWriter, r *http.Request) error {
	var t nodeapi.LinkTable
	if err := nodeapi.Decode(r.Body, &t); err != nil {
		return err
	}
	if err := t.Validate(); err != nil {
		return err
	}
	if err := checkGrantKeys(t.Grants); err != nil {
		return err
	}
	if err := d.links.set(t); err != nil {
		return err
	}
	d.applyIngress()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkGrantKeys refuses a grant whose key is not exactly one public key
// in authorized_keys form (no options, no comment): the line the node
// writes must pin that key, and nothing else, to the link role.
func checkGrantKeys(gs []nodeapi.LinkGrant) error {
	for i, g := range gs {
		k, err := sshkey.ParsePublicKey(g.Key)
		if err != nil || sshkey.AuthorizedKey(k) != g.Key {
			return errs.Invalid(fmt.Sprintf("grants[%d].key", i), "want one public key, TYPE BASE64, without options")
		}
	}
	return nil
}

func (d *Daemon) handleLinks(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, d.links.status())
}
