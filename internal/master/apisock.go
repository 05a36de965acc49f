package master

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/moatcloud/moat/internal/access"
	"github.com/moatcloud/moat/internal/master/httpapi"
	"github.com/moatcloud/moat/internal/userauth"
	"github.com/moatcloud/moat/internal/wire"
)

// The api socket is where `moat api`, the forced command of operators'
// SSH logins on the master's host, reaches the master. Only root and the
// api user (whom sshd runs moat api as) may connect, checked with
// SO_PEERCRED on every connection; each starts with a preamble line (see
// userauth) from which the master itself finds the user, and the
// connection is then the master's HTTP API, as that user.

// DefaultAPISocket is where the master listens for moat api.
const DefaultAPISocket = "/run/moat-api/api.sock"

// DefaultAPIUser is the unix user operators log in as.
const DefaultAPIUser = "moat"

// DefaultUserCAFile is the sshd drop-in's TrustedUserCAKeys: the master
// writes the trusted CAs there.
const DefaultUserCAFile = "/etc/moat/user_ca_keys"

// preambleTimeout bounds how long a new connection may take to say who
// it is.
const preambleTimeout = 10 * time.Second

// apiListener accepts connections on the api socket and hands on to the
// HTTP server only sessions whose user the master found; it answers
// sshd's lookups itself.
type apiListener struct {
	ln      net.Listener
	m       *Master
	allowed map[uint32]bool // uids that may connect
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
}

// listenAPI listens on the api socket: a directory everyone may enter, a
// socket root and the api user's group may open, and SO_PEERCRED checked
// besides.
func (m *Master) listenAPI(path, apiUser string) (*apiListener, error) {
	allowed := map[uint32]bool{0: true}
	gid := -1
	if u, err := user.Lookup(apiUser); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		allowed[uint32(uid)] = true
	} else {
		m.log.Warn("no api user: only root can use the api socket (moat init --ssh makes it)", "user", apiUser, "err", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api socket: %w", err)
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		if err := os.Chown(path, 0, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("api socket: %w", err)
		}
		mode = 0o660
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api socket: %w", err)
	}
	l := &apiListener{ln: ln, m: m, allowed: allowed, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l, nil
}

func (l *apiListener) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.Close()
			return
		}
		go l.admit(c)
	}
}

// Accept returns the next session, its preamble read and its user found.
func (l *apiListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *apiListener) Close() error {
	l.once.Do(func() { close(l.done); l.ln.Close() })
	return nil
}

func (l *apiListener) Addr() net.Addr { return l.ln.Addr() }

// admit checks who connected and what for.
func (l *apiListener) admit(c net.Conn) {
	uid, err := peerUID(c)
	if err != nil || !l.allowed[uid] {
		l.m.log.Warn("api socket: connection refused", "uid", uid, "err", err)
		c.Close()
		return
	}
	c.SetDeadline(time.Now().Add(preambleTimeout))
	br := bufio.NewReader(c)
	p, err := userauth.ReadPreamble(br)
	if err != nil {
		l.m.log.Warn("api socket: bad preamble", "uid", uid, "err", err)
		c.Close()
		return
	}
	switch p.Kind {
	case userauth.KindKeys, userauth.KindPrincipals:
		grants, err := l.m.lookup(p)
		answer := userauth.Answer{Grants: grants}
		if err != nil {
			answer.Error = err.Error()
		}
		json.NewEncoder(c).Encode(answer)
		c.Close()
		return
	}
	id, err := l.m.resolveSession(p)
	if err != nil {
		l.m.log.Info("api session refused", "client", p.Client, "claimed", p.User, "err", err)
		userauth.WriteVerdict(c, err)
		c.Close()
		return
	}
	s := &apiSession{Conn: c, r: br, id: id, preamble: p, sessions: &l.m.sessions}
	l.m.sessions.add(s)
	// A revocation between the lookup above and add did not see this
	// session: look again, now that the next one will.
	if again, err := l.m.resolveSession(p); err != nil || again.caller != id.caller {
		if err == nil {
			err = errors.New("the session's user changed while it opened")
		}
		l.m.log.Info("api session refused", "client", p.Client, "claimed", p.User, "err", err)
		userauth.WriteVerdict(c, err)
		s.Close()
		return
	}
	if err := userauth.WriteVerdict(c, nil); err != nil {
		s.Close()
		return
	}
	c.SetDeadline(time.Time{})
	l.m.log.Info("api session", "user", id.caller.User, "credential", id.caller.Credential, "client", p.Client)
	select {
	case l.conns <- s:
	case <-l.done:
		s.Close()
	}
}

func peerUID(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, errors.New("not a unix connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// identity is who a session is, as the master found it.
type identity struct {
	caller  access.Caller // User and Credential
	expires time.Time     // a certificate's end; zero for keys
}

// lookup answers sshd's questions: whose is this key, whom may this
// certificate be.
func (m *Master) lookup(p userauth.Preamble) ([]userauth.Grant, error) {
	key, err := userauth.ParseKey(p.Key)
	if err != nil {
		return nil, err
	}
	m.ids.mu.RLock()
	defer m.ids.mu.RUnlock()
	if p.Kind == userauth.KindKeys {
		if _, ok := key.(*ssh.Certificate); ok {
			return nil, nil // certificates go through their CA and principals
		}
		if u := m.ids.byKey[ssh.FingerprintSHA256(key)]; u != "" {
			return []userauth.Grant{{User: u}}, nil
		}
		return nil, nil
	}
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return nil, nil
	}
	if err := userauth.CheckCert(cert, m.trustedCA, time.Now()); err != nil {
		return nil, err
	}
	return userauth.Grants(cert.ValidPrincipals, func(p string) string { return m.ids.byPrincipal[p] })
}

// trustedCA says whether a CA is trusted; ids.mu held.
func (m *Master) trustedCA(ca ssh.PublicKey) bool {
	_, ok := m.ids.cas[ssh.FingerprintSHA256(ca)]
	return ok
}

// resolveSession finds a session's user from its preamble: the key or
// certificate sshd says it authenticated with, never what the client says.
func (m *Master) resolveSession(p userauth.Preamble) (identity, error) {
	key, err := userauth.AuthKey(p.Auth)
	if err != nil {
		return identity{}, err
	}
	m.ids.mu.RLock()
	defer m.ids.mu.RUnlock()
	var id identity
	if cert, ok := key.(*ssh.Certificate); ok {
		if err := userauth.CheckCert(cert, m.trustedCA, time.Now()); err != nil {
			return identity{}, err
		}
		grants, err := userauth.Grants(cert.ValidPrincipals, func(p string) string { return m.ids.byPrincipal[p] })
		if err != nil {
			return identity{}, err
		}
		if len(grants) == 0 {
			return identity{}, fmt.Errorf("certificate %q: no principal names a user", cert.KeyId)
		}
		id = identity{caller: access.Caller{User: grants[0].User, Credential: userauth.Credential(cert)}, expires: userauth.Expires(cert)}
	} else {
		fp := ssh.FingerprintSHA256(key)
		u := m.ids.byKey[fp]
		if u == "" {
			return identity{}, fmt.Errorf("key %s belongs to no user", fp)
		}
		id = identity{caller: access.Caller{User: u, Credential: fp}}
	}
	if p.User != "" && p.User != id.caller.User {
		return identity{}, fmt.Errorf("the forced command says user %s, the key is %s's", p.User, id.caller.User)
	}
	return id, nil
}

// apiSession is one operator's connection, through moat api.
type apiSession struct {
	net.Conn
	r        *bufio.Reader // holds what followed the preamble
	id       identity
	preamble userauth.Preamble
	sessions *sessions
	timer    *time.Timer // ends it when its certificate expires
	once     sync.Once
}

func (s *apiSession) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *apiSession) Close() error {
	s.once.Do(func() {
		s.sessions.remove(s)
		if s.timer != nil {
			s.timer.Stop()
		}
	})
	return s.Conn.Close()
}

// CloseWrite passes a half-close on (an upgraded dial's end of input).
func (s *apiSession) CloseWrite() error {
	if cw, ok := s.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// sessions are the open api sessions, so that removing a user (a key, a
// CA) ends theirs.
type sessions struct {
	mu  sync.Mutex
	all map[*apiSession]struct{}
	log *slog.Logger
}

func (ss *sessions) add(s *apiSession) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.all == nil {
		ss.all = map[*apiSession]struct{}{}
	}
	ss.all[s] = struct{}{}
	if !s.id.expires.IsZero() {
		s.timer = time.AfterFunc(time.Until(s.id.expires), func() {
			if ss.log != nil {
				ss.log.Info("api session ended: certificate expired", "user", s.id.caller.User, "credential", s.id.caller.Credential)
			}
			s.Close()
		})
	}
}

func (ss *sessions) remove(s *apiSession) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.all, s)
}

// recheck ends every session whose preamble no longer resolves to the
// user it was opened as.
func (ss *sessions) recheck(resolve func(userauth.Preamble) (identity, error)) {
	ss.mu.Lock()
	var gone []*apiSession
	for s := range ss.all {
		id, err := resolve(s.preamble)
		if err != nil || id.caller.User != s.id.caller.User {
			gone = append(gone, s)
		}
	}
	ss.mu.Unlock()
	for _, s := range gone {
		if ss.log != nil {
			ss.log.Info("api session ended: revoked", "user", s.id.caller.User, "credential", s.id.caller.Credential)
		}
		s.Close()
	}
}

// count is the number of open sessions (tests, stats).
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.all)
}

// sessionCaller is the connection's caller, for the HTTP layer.
func sessionCaller(c net.Conn) (access.Caller, bool) {
	s, ok := c.(*apiSession)
	if !ok {
		return access.Caller{}, false
	}
	return s.id.caller, true
}

// apiEndpoint is the api socket, served with the same routes as the local
// one, each request's caller its session's user; none (false) on a host
// without the api user, which moat init --ssh makes.
func (m *Master) apiEndpoint() (wire.Endpoint, bool, error) {
	apiUser := m.cfg.APIUser
	if apiUser == "" {
		apiUser = DefaultAPIUser
	}
	if _, err := user.Lookup(apiUser); err != nil {
		m.log.Info("no api socket: no api user on this host (moat init --ssh makes it)", "user", apiUser)
		return wire.Endpoint{}, false, nil
	}
	m.sessions.log = m.log
	ln, err := m.listenAPI(m.cfg.APISocket, apiUser)
	if err != nil {
		return wire.Endpoint{}, false, err
	}
	return wire.Endpoint{
		Socket: m.cfg.APISocket, Listener: ln, Handler: httpapi.RemoteHandler(m, m.log),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if caller, ok := sessionCaller(c); ok {
				return httpapi.WithSession(ctx, caller)
			}
			return ctx
		},
	}, true, nil
}
