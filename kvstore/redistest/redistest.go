// Package redistest starts a throwaway redis-server for tests: no
// persistence, a free loopback port, killed when the test ends.
package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Server is a redis-server a test started.
type Server struct {
	cmd *exec.Cmd
	// Addr is host:port on loopback.
	Addr string
}

// Start starts redis-server and waits until it accepts connections; it
// skips the test when the binary is absent.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed (apt-get install redis-server): the Redis tests need it")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	t.Cleanup(s.Kill)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the server's redis:// address.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Kill stops the server with SIGKILL (no shutdown handshake) and waits
// for it; a second Kill does nothing.
func (s *Server) Kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}
