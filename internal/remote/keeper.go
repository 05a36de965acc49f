package remote

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A new session on the shared SSH connection costs three round trips
// before the master answers: the channel's open, its exec (sshd opens a
// session's window only once the command runs, so the request cannot
// travel with it), and the request. The keeper is a background process,
// one per master, that holds one session ready: opened, its command
// running, one request (GET /v1/ping) already served, so that the master
// waits for the next without a deadline. A command takes it over the
// keeper's socket in the control directory (the session's pipes, passed
// as file descriptors: nothing relays) and its first request costs one
// round trip. The keeper then opens the next one; it exits after Persist
// without a taker, when sessions cannot be opened, or when asked.

// executable is the moat binary a keeper runs (the test binary is none).
var executable = os.Executable

// KeeperArgs are the moat arguments that run a keeper (the CLI's hidden
// command), followed by KeeperFlags.
var KeeperArgs = []string{"context", "keeper"}

// NoKeeperEnv, set to 0, makes commands use no keeper.
const NoKeeperEnv = "MOAT_SSH_KEEPER"

// Keeper requests: take the ready session, or exit.
const (
	keeperTake = 'g'
	keeperExit = 'x'
)

// keeperFailures is how many sessions in a row may fail to open before
// the keeper gives up (a revoked key, a refused host key, a master down).
const keeperFailures = 3

// KeeperPrefix starts the names of keepers' sockets in the control
// directory.
const KeeperPrefix = "keeper-"

// keeperSocket is the keeper's socket for this master as reached with
// this ssh command.
func (m *Master) keeperSocket() string {
	return filepath.Join(m.ControlDir, KeeperPrefix+m.reachKey())
}

// reachKey names the master as the operator reaches it: the destination
// as given (a Host alias is its own), the port and the ssh command (its
// -i, -F, options). Shared connections and keepers are keyed by it, so
// two contexts reaching the same host as the same login with different
// keys never ride each other's connection (ssh's own %C would join them).
func (m *Master) reachKey() string {
	key := strings.Join(append(append([]string{}, m.SSH...), m.Access.Dest, strconv.Itoa(m.Access.Port)), "\x00")
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:10])
}

// fromKeeper takes the keeper's ready session, if there is a keeper and
// it has one.
func (m *Master) fromKeeper() (*conn, error) {
	if !m.useKeeper() {
		return nil, errors.New("no keeper")
	}
	c, err := net.DialTimeout("unix", m.keeperSocket(), time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	uc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := uc.Write([]byte{keeperTake}); err != nil {
		return nil, err
	}
	fds, err := recvFDs(uc, 3)
	if err != nil {
		return nil, fmt.Errorf("keeper: %w", err)
	}
	for _, fd := range fds {
		// Pollable, so that deadlines work.
		syscall.SetNonblock(fd, true)
	}
	w, r, e := os.NewFile(uintptr(fds[0]), "ssh-stdin"), os.NewFile(uintptr(fds[1]), "ssh-stdout"), os.NewFile(uintptr(fds[2]), "ssh-stderr")
	return handed(m, r, w, e), nil
}

// recvFDs reads one byte carrying n file descriptors.
func recvFDs(uc *net.UnixConn, n int) ([]int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(n*4))
	_, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no session to hand over (%v)", err)
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil {
		return nil, err
	}
	if len(fds) != n {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, fmt.Errorf("%d file descriptors, want %d", len(fds), n)
	}
	return fds, nil
}

// useKeeper: commands use a keeper unless told not to, or unless the ssh
// command turns connection sharing off (a keeper is sharing too: it
// outlives the command).
func (m *Master) useKeeper() bool {
	return os.Getenv(NoKeeperEnv) != "0" && m.sharing()
}

// startKeeper starts a keeper for this master in the background (it
// exits at once if another keeps this master).
func (m *Master) startKeeper() {
	if !m.useKeeper() {
		return
	}
	exe, err := executable()
	if err != nil {
		return
	}
	args := append(append([]string{}, KeeperArgs...), m.KeeperFlags()...)
	cmd := exec.Command(exe, args...)
	// Its own session: a Ctrl-C meant for this command does not reach it;
	// and no hold on the directory the command ran in.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	if err := cmd.Start(); err == nil {
		cmd.Process.Release()
	}
}

// sharing reports whether the ssh command leaves moat's connection
// sharing on: options given on the command line (MOAT_SSH_COMMAND's)
// come before moat's and win; ~/.ssh/config's do not.
func (m *Master) sharing() bool {
	for i := 1; i < len(m.SSH); i++ {
		a := m.SSH[i]
		var opt string
		switch {
		case a == "-o" && i+1 < len(m.SSH):
			opt = m.SSH[i+1]
		case strings.HasPrefix(a, "-o"):
			opt = a[2:]
		case a == "-S" && i+1 < len(m.SSH):
			opt = "controlpath=" + m.SSH[i+1]
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, _ = strings.Cut(opt, " ")
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.ToLower(strings.TrimSpace(v))
		if (k == "controlpath" && v == "none") || (k == "controlmaster" && v == "no") {
			return false
		}
	}
	return true
}

// KeeperFlags are the keeper command's flags for this master.
func (m *Master) KeeperFlags() []string {
	return append([]string{"--dest", m.Access.Dest, "--port", strconv.Itoa(m.Access.Port), "--control-dir", m.ControlDir, "--"}, m.SSH...)
}

// StopKeeper asks the keeper listening on socket to exit, and waits (up
// to 10 s) until its held session is gone.
func StopKeeper(socket string) error {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{keeperExit}); err != nil {
		return err
	}
	// The keeper closes the connection once its session is gone.
	_, err = io.Copy(io.Discard, c)
	return err
}

// ready is a session held for the next command.
type ready struct {
	cmd     *exec.Cmd
	w, r, e *os.File // our ends of ssh's stdin, stdout, stderr
	dead    chan struct{}
}

func (s *ready) close() {
	s.w.Close()
	s.r.Close()
	s.e.Close()
	s.cmd.Process.Kill()
	<-s.dead
}

func (s *ready) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

// openReady opens a session and has the master serve one request on it;
// stop ends an attempt in progress.
func (m *Master) openReady(stop <-chan struct{}) (*ready, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.Command(m.SSH[0], append(m.args(), m.Access.Dest, Command)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, err
	}
	s := &ready{cmd: cmd, w: inW, r: outR, e: errR, dead: make(chan struct{})}
	go func() { cmd.Wait(); close(s.dead) }()
	pinged := make(chan struct{})
	go func() {
		select {
		case <-stop:
			cmd.Process.Kill()
		case <-pinged:
		}
	}()
	err = s.ping()
	close(pinged)
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// ping sends one request on the session and reads its answer, leaving
// nothing unread.
func (s *ready) ping() error {
	s.r.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer s.r.SetReadDeadline(time.Time{})
	if _, err := io.WriteString(s.w, "GET /v1/ping HTTP/1.1\r\nHost: master\r\n\r\n"); err != nil {
		return err
	}
	br := bufio.NewReader(s.r)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK || resp.Close:
		return fmt.Errorf("ping: %s", resp.Status)
	case br.Buffered() > 0:
		return errors.New("ping: more than one answer")
	}
	return nil
}

// RunKeeper holds a ready session for the master's commands until
// Persist passes without one taken, sessions stop opening, or a command
// asks it to exit. Another keeper of the same master makes it return at
// once.
func (m *Master) RunKeeper() error {
	path := m.keeperSocket()
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // another keeper holds it
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer ln.Close()

	sessions := make(chan *ready)
	stop := make(chan struct{})
	gaveUp := make(chan struct{})
	var stopped bool
	stopOpener := func() {
		if !stopped {
			stopped = true
			close(stop)
			<-gaveUp
		}
	}
	go func() {
		defer close(gaveUp)
		for failures := 0; failures < keeperFailures; {
			s, err := m.openReady(stop)
			if err != nil {
				failures++
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(failures) * 500 * time.Millisecond):
				}
				continue
			}
			opened := time.Now()
			select {
			case sessions <- s:
				failures = 0
			case <-s.dead:
				// The master or the connection ended it: a session that
				// does not last counts as one that did not open.
				s.close()
				if time.Since(opened) > 5*time.Second {
					failures = 0
					continue
				}
				failures++
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(failures) * 500 * time.Millisecond):
				}
			case <-stop:
				s.close()
				return
			}
		}
	}()
	defer stopOpener()
	// Accepting stops when the opener gives up.
	go func() { <-gaveUp; ln.SetDeadline(time.Now()) }()
	for {
		ln.SetDeadline(time.Now().Add(Persist))
		c, err := ln.AcceptUnix()
		if err != nil {
			return nil // idle, or the opener gave up
		}
		if m.serve(c, sessions) {
			// Asked to exit: the asker hears the close once the held
			// session is gone.
			stopOpener()
			c.Close()
			return nil
		}
		c.Close()
	}
}

// serve answers one command; it reports whether the keeper is to exit.
func (m *Master) serve(c *net.UnixConn, sessions chan *ready) (exit bool) {
	if !sameUser(c) {
		return false
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	req := make([]byte, 1)
	if _, err := io.ReadFull(c, req); err != nil {
		return false
	}
	switch req[0] {
	case keeperExit:
		return true
	case keeperTake:
		select {
		case s := <-sessions:
			if !s.alive() {
				s.close()
				return false
			}
			rights := syscall.UnixRights(int(s.w.Fd()), int(s.r.Fd()), int(s.e.Fd()))
			c.WriteMsgUnix([]byte{1}, rights, nil)
			// The command has the pipes now; ssh ends with the session.
			s.w.Close()
			s.r.Close()
			s.e.Close()
		default: // none ready: the command opens its own
		}
	}
	return false
}

// sameUser: only this user's commands take sessions (the directory is
// 0700 already).
func sameUser(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	return err == nil && cred != nil && int(cred.Uid) == os.Getuid()
}
