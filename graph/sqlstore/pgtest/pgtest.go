// Package pgtest runs throwaway PostgreSQL servers for tests.
//
// A server is a real postgres process started from the initdb and postgres
// binaries found on PATH or under /usr/lib/postgresql/*/bin. It listens
// only on 127.0.0.1, on a free port, with a data directory in a new
// temporary directory, and is stopped by its process id. When the test
// process runs as root, initdb and postgres run as the "postgres" user
// (or "nobody" when there is none), because postgres refuses to run as
// root. Tests skip with a message naming the missing binaries when
// PostgreSQL is not installed, unless the environment variable
// MANDATE_TEST_REQUIRE_POSTGRES is 1, as .ci/run sets it; any other
// failure fails the test.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is returned when no initdb and postgres binaries exist.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin; install them with `apt-get install -y postgresql`")

// superuser is the database superuser that initdb creates. Connections
// need no password: the server trusts every connection from 127.0.0.1.
const superuser = "mandate"

// Server is one running PostgreSQL server.
type Server struct {
	binDir string
	root   string // temporary directory: data directory, socket and log
	port   int
	cred   *syscall.Credential

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}

	databases atomic.Int64
}

// FindBinDir returns the directory holding initdb and postgres.
func FindBinDir() (string, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(initdb); err == nil {
			initdb = resolved
		}
		dir := filepath.Dir(initdb)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	// Debian installs the binaries per major version, off PATH.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, dir := range dirs {
		_, errInit := os.Stat(filepath.Join(dir, "initdb"))
		_, errPostgres := os.Stat(filepath.Join(dir, "postgres"))
		if errInit == nil && errPostgres == nil {
			return dir, nil
		}
	}
	return "", ErrNotInstalled
}

// Start runs initdb and starts a server, stopped when the test ends. It
// skips the test when PostgreSQL is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer()
	if errors.Is(err, ErrNotInstalled) {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return s
}

// StartServer runs initdb and starts a server. The caller must call Stop.
func StartServer() (*Server, error) {
	binDir, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{binDir: binDir}
	if os.Geteuid() == 0 {
		if s.cred, err = unprivilegedUser(); err != nil {
			return nil, err
		}
	}
	if s.root, err = os.MkdirTemp("", "mandate-pgtest-"); err != nil {
		return nil, err
	}
	if s.cred != nil {
		if err := os.Chown(s.root, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			s.removeRoot()
			return nil, err
		}
	}
	initdb := s.command(filepath.Join(binDir, "initdb"), "-D", s.dataDir(), "-U", superuser,
		"--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		s.removeRoot()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Another process may take the free port between the check and the
	// server's bind, so a failed start is tried on a new port.
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			s.removeRoot()
			return nil, err
		}
		err = s.start()
		if err == nil {
			return s, nil
		}
		if attempt == 3 {
			s.removeRoot()
			return nil, err
		}
	}
}

// skipOrFail skips the test because PostgreSQL is not installed, or fails
// it when MANDATE_TEST_REQUIRE_POSTGRES=1 requires the PostgreSQL tests.
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("MANDATE_TEST_REQUIRE_POSTGRES") == "1" {
		t.Fatalf("MANDATE_TEST_REQUIRE_POSTGRES=1, but %v", err)
	}
	t.Skipf("skipping PostgreSQL test: %v", err)
}

func unprivilegedUser() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, errUID := strconv.ParseUint(u.Uid, 10, 32)
		gid, errGID := strconv.ParseUint(u.Gid, 10, 32)
		if errUID != nil || errGID != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, but no postgres or nobody user exists to run PostgreSQL as; create one, or run the tests as another user")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.root, "data") }
func (s *Server) logPath() string { return filepath.Join(s.root, "postgres.log") }

// command returns cmd with the server's user, and a parent-death signal so
// that postgres does not outlive a test process that is killed.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	cmd.Dir = s.root
	return cmd
}

// start starts postgres on the data directory and waits until it accepts
// connections.
func (s *Server) start() error {
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := s.command(filepath.Join(s.binDir, "postgres"), "-D", s.dataDir(),
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.root,
		// Without fsync, a power loss may lose commits, which no test
		// needs. A crash of the server process still loses nothing that
		// was committed, because the WAL is written to the operating
		// system before each commit returns.
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URI("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited during start; log:\n%s", s.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("postgres did not accept connections within 30s: %w; log:\n%s", err, s.Log())
		}
	}
}

// URI returns the connection URI of a database on the server.
func (s *Server) URI(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, database)
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// PID returns the process id of the running postmaster, or 0.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// CreateDatabase creates a new, empty database and returns its URI.
func (s *Server) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.databases.Add(1))
	s.exec(t, "postgres", "CREATE DATABASE "+name)
	return s.URI(name)
}

// CreateSchema creates a new, empty schema in the database "postgres" and
// returns a URI whose connections use it as their search_path. Creating a
// schema takes about a millisecond where CREATE DATABASE takes half a
// second, and the tables of different schemas are as separate as those of
// different databases. LISTEN/NOTIFY channels are per database, though, so
// processes on different schemas see each other's notifications.
func (s *Server) CreateSchema(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d", s.databases.Add(1))
	s.exec(t, "postgres", "CREATE SCHEMA "+name)
	return s.URI("postgres") + "&search_path=" + name
}

func (s *Server) exec(t testing.TB, database, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URI(database))
	if err != nil {
		t.Fatalf("connect to PostgreSQL database %s: %v", database, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Log returns the server's log output so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return strings.TrimSpace(string(b))
}

// Crash stops the server with PostgreSQL's immediate shutdown (SIGQUIT to
// the postmaster): no checkpoint, so the next start runs crash recovery
// from the WAL, as after a crash of the server.
func (s *Server) Crash() error { return s.signalAndWait(syscall.SIGQUIT) }

// Restart starts the server again on the same port and data directory
// after Crash or Stop.
func (s *Server) Restart() error { return s.start() }

// Stop shuts the server down (SIGINT to the postmaster, PostgreSQL's fast
// shutdown) and deletes its data directory.
func (s *Server) Stop() error {
	err := s.signalAndWait(syscall.SIGINT)
	s.removeRoot()
	return err
}

func (s *Server) signalAndWait(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal postgres (pid %d): %w", cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("postgres (pid %d) did not stop within 30s of %s; killed it", cmd.Process.Pid, sig)
	}
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
}

func (s *Server) removeRoot() {
	if s.root != "" {
		os.RemoveAll(s.root)
	}
}

// Shared is a server started on first use and shared by the tests of one
// package, which call RunMain from TestMain to stop it.
var shared struct {
	once   sync.Once
	server *Server
	err    error
}

// Schema returns the URI of a new, empty schema (see CreateSchema) on the
// package's shared server, starting the server on first use. It skips the
// test when PostgreSQL is not installed.
func Schema(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.server, shared.err = StartServer() })
	if errors.Is(shared.err, ErrNotInstalled) {
		skipOrFail(t, shared.err)
	}
	if shared.err != nil {
		t.Fatalf("start PostgreSQL: %v", shared.err)
	}
	return shared.server.CreateSchema(t)
}

// RunMain runs the tests of m and then stops the shared server, if a test
// started it. Call it as os.Exit(pgtest.RunMain(m)) from TestMain.
func RunMain(m *testing.M) int {
	code := m.Run()
	if shared.server != nil {
		if err := shared.server.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop the shared PostgreSQL server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
