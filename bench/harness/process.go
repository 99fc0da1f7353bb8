package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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

// Process is a server started by the harness.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	waitErr error
	// sigtermOK: dying of the SIGTERM itself is a clean stop (etcd
	// re-raises the signal after its cleanup).
	sigtermOK bool
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin with args in its own process group, its output going to
// logPath. Variables starting with any of dropEnv are removed from the
// environment.
func start(name, bin string, args []string, logPath string, dropEnv ...string) (*Process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range dropEnv {
			if strings.HasPrefix(kv, p) {
				drop = true
			}
		}
		if !drop {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, logFile: lf, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the server's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to grace, then kills the process group.
// It returns the exit error (nil for exit status 0).
func (p *Process) Stop(grace time.Duration) error {
	if exited, err := p.Exited(); exited {
		return fmt.Errorf("%s had already exited: %v", p.Name, err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if ee, ok := p.waitErr.(*exec.ExitError); ok && p.sigtermOK {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
				return nil
			}
		}
		return p.waitErr
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, grace)
	}
}

// LogTail returns the last n lines of the process's log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CPUTime returns the user+system CPU time the process has used so far,
// from /proc (Linux only).
func (p *Process) CPUTime() (time.Duration, bool) {
	return procCPUTime(p.Pid())
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM).
func (p *Process) PeakRSS() (int64, bool) {
	return procStatusBytes(p.Pid(), "VmHWM:")
}

// RSS returns the process's current resident set size in bytes (VmRSS).
func (p *Process) RSS() (int64, bool) {
	return procStatusBytes(p.Pid(), "VmRSS:")
}

// procStatusBytes reads a "Name:   N kB" line of /proc/PID/status.
func procStatusBytes(pid int, field string) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			fs := strings.Fields(v)
			if len(fs) >= 1 {
				kb, err := strconv.ParseInt(fs[0], 10, 64)
				if err == nil {
					return kb << 10, true
				}
			}
		}
	}
	return 0, false
}

// clockTicks is USER_HZ, 100 on every Linux of interest.
const clockTicks = 100

func procCPUTime(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may contain spaces) in parens.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fs := strings.Fields(string(b[i+1:]))
	// fs[0] is field 3 (state); utime is field 14, stime field 15.
	if len(fs) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTicks, true
}

// waitHTTP polls url until check accepts the answer, the process exits, or
// the timeout passes.
func waitHTTP(ctx context.Context, p *Process, url string, timeout time.Duration, check func(*http.Response) bool) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	var last string
	for {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("%s exited before becoming healthy (%v); log %s:\n%s", p.Name, err, p.LogPath, p.LogTail(20))
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			ok := check(resp)
			resp.Body.Close()
			if ok {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %v (last: %s); log %s:\n%s", p.Name, timeout, last, p.LogPath, p.LogTail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// EtcdServer is a single-member etcd started on loopback.
type EtcdServer struct {
	*Process
	Endpoint string
	DataDir  string
}

// StartEtcd starts a fresh single-member etcd with default (durable)
// settings on free loopback ports, its data in dir/data and its log in
// dir/etcd.log, and waits until /health says true.
func StartEtcd(ctx context.Context, bin, dir string) (*EtcdServer, error) {
	cport, err := FreePort()
	if err != nil {
		return nil, err
	}
	pport, err := FreePort()
	if err != nil {
		return nil, err
	}
	curl := fmt.Sprintf("http://127.0.0.1:%d", cport)
	purl := fmt.Sprintf("http://127.0.0.1:%d", pport)
	data := filepath.Join(dir, "data")
	args := []string{
		"--name", "bench",
		"--data-dir", data,
		"--listen-client-urls", curl,
		"--advertise-client-urls", curl,
		"--listen-peer-urls", purl,
		"--initial-advertise-peer-urls", purl,
		"--initial-cluster", "bench=" + purl,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "agentstate-bench",
		"--logger", "zap",
		"--log-outputs", "stderr",
	}
	// ETCD_* variables would override flags or clash with them.
	p, err := start("etcd", bin, args, filepath.Join(dir, "etcd.log"), "ETCD_")
	if err != nil {
		return nil, err
	}
	p.sigtermOK = true
	err = waitHTTP(ctx, p, curl+"/health", 30*time.Second, func(r *http.Response) bool {
		var b [64]byte
		n, _ := r.Body.Read(b[:])
		return r.StatusCode == 200 && bytes.Contains(b[:n], []byte(`"true"`))
	})
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return &EtcdServer{Process: p, Endpoint: curl, DataDir: data}, nil
}

// EtcdBinaryVersion runs `etcd --version` and returns its first line.
func EtcdBinaryVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

// AgentstateServer is an `agentstate serve` started on loopback.
type AgentstateServer struct {
	*Process
	BaseURL string
	DataDir string
}

// StartAgentstate runs `bin serve --listen 127.0.0.1:PORT --data-dir
// dir/data` with the server's defaults, its log in dir/agentstate.log, and
// waits until /healthz answers 200.
func StartAgentstate(ctx context.Context, bin, dir string, extraArgs ...string) (*AgentstateServer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	data := filepath.Join(dir, "data")
	args := append([]string{"serve", "--listen", addr, "--data-dir", data}, extraArgs...)
	// AGENTSTATE_* variables (a Postgres URL, a config file) would change
	// what is measured.
	p, err := start("agentstate", bin, args, filepath.Join(dir, "agentstate.log"), "AGENTSTATE_")
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	err = waitHTTP(ctx, p, base+"/healthz", 60*time.Second, func(r *http.Response) bool { return r.StatusCode == 200 })
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return &AgentstateServer{Process: p, BaseURL: base, DataDir: data}, nil
}

// BuildAgentstate runs `go build -o out ./cmd/agentstate` in repo.
func BuildAgentstate(ctx context.Context, repo, out string) error {
	abs, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(abs, "cmd", "agentstate")); err != nil {
		return fmt.Errorf("no cmd/agentstate under repo %s: %w", abs, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/agentstate")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/agentstate in %s: %w\n%s", abs, err, buf.String())
	}
	return nil
}
